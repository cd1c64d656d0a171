/*
 * vmrp-acl.c: one user's entry in a file's POSIX access ACL
 *
 * The attribute's format is the kernel's (include/uapi/linux/posix_acl_xattr.h):
 * a little-endian version 2 header and entries {tag, perm, id}, sorted by tag
 * then id, always holding USER_OBJ, GROUP_OBJ and OTHER, and MASK once there
 * is a named entry.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "vmrp-acl.h"
#include "vmrp-error.h"

#define ACL_XATTR "system.posix_acl_access"
#define ACL_VERSION 2
#define ACL_MAX_ENTRIES 1024
#define ACL_UNDEFINED_ID 0xffffffffu

enum {
    TAG_USER_OBJ = 0x01,
    TAG_USER = 0x02,
    TAG_GROUP_OBJ = 0x04,
    TAG_GROUP = 0x08,
    TAG_MASK = 0x10,
    TAG_OTHER = 0x20,
};

typedef struct {
    uint16_t tag;
    uint16_t perm;
    uint32_t id;
} aclEntry;

static gint
aclEntryCompare(gconstpointer a, gconstpointer b)
{
    const aclEntry *ea = a;
    const aclEntry *eb = b;

    if (ea->tag != eb->tag)
        return ea->tag < eb->tag ? -1 : 1;
    return ea->id < eb->id ? -1 : ea->id > eb->id;
}

/* The ACL of @path, or the one its mode stands for. */
static GArray *
aclRead(const char *path, const struct stat *sb, GError **error)
{
    GArray *acl = g_array_new(FALSE, TRUE, sizeof(aclEntry));
    uint8_t buf[4 + ACL_MAX_ENTRIES * 8];
    ssize_t len = getxattr(path, ACL_XATTR, buf, sizeof(buf));
    ssize_t off;

    if (len < 0 && errno != ENODATA) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot read the ACL of %s: %s",
                    path, g_strerror(errno));
        g_array_unref(acl);
        return NULL;
    }
    if (len < 0) {
        aclEntry base[] = {
            { TAG_USER_OBJ, (sb->st_mode >> 6) & 7, ACL_UNDEFINED_ID },
            { TAG_GROUP_OBJ, (sb->st_mode >> 3) & 7, ACL_UNDEFINED_ID },
            { TAG_OTHER, sb->st_mode & 7, ACL_UNDEFINED_ID },
        };
        g_array_append_vals(acl, base, G_N_ELEMENTS(base));
        return acl;
    }
    if (len < 4 || (len - 4) % 8 != 0 || GUINT32_FROM_LE(*(uint32_t *)buf) != ACL_VERSION) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s has an ACL of an unknown format",
                    path);
        g_array_unref(acl);
        return NULL;
    }
    for (off = 4; off < len; off += 8) {
        aclEntry e;
        uint16_t v16;
        uint32_t v32;

        memcpy(&v16, buf + off, 2);
        e.tag = GUINT16_FROM_LE(v16);
        memcpy(&v16, buf + off + 2, 2);
        e.perm = GUINT16_FROM_LE(v16);
        memcpy(&v32, buf + off + 4, 4);
        e.id = GUINT32_FROM_LE(v32);
        g_array_append_val(acl, e);
    }
    return acl;
}

static bool
aclWrite(const char *path, GArray *acl, GError **error)
{
    g_autofree uint8_t *buf = g_malloc(4 + acl->len * 8);
    uint32_t v32 = GUINT32_TO_LE(ACL_VERSION);
    guint i;

    g_array_sort(acl, aclEntryCompare);
    memcpy(buf, &v32, 4);
    for (i = 0; i < acl->len; i++) {
        aclEntry *e = &g_array_index(acl, aclEntry, i);
        uint16_t tag = GUINT16_TO_LE(e->tag);
        uint16_t perm = GUINT16_TO_LE(e->perm);
        uint32_t id = GUINT32_TO_LE(e->id);

        memcpy(buf + 4 + i * 8, &tag, 2);
        memcpy(buf + 4 + i * 8 + 2, &perm, 2);
        memcpy(buf + 4 + i * 8 + 4, &id, 4);
    }
    if (setxattr(path, ACL_XATTR, buf, 4 + acl->len * 8, 0) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot set the ACL of %s: %s%s",
                    path, g_strerror(errno),
                    errno == EOPNOTSUPP ? " (the file system has no POSIX ACLs)" : "");
        return false;
    }
    return true;
}

static aclEntry *
aclFind(GArray *acl, uint16_t tag, uint32_t id)
{
    guint i;

    for (i = 0; i < acl->len; i++) {
        aclEntry *e = &g_array_index(acl, aclEntry, i);
        if (e->tag == tag && (id == ACL_UNDEFINED_ID || e->id == id))
            return e;
    }
    return NULL;
}

/* The mask that lets every group-class entry through. */
static uint16_t
aclGroupClass(GArray *acl, bool *ret_named)
{
    uint16_t mask = 0;
    guint i;

    *ret_named = false;
    for (i = 0; i < acl->len; i++) {
        aclEntry *e = &g_array_index(acl, aclEntry, i);
        if (e->tag == TAG_USER || e->tag == TAG_GROUP || e->tag == TAG_GROUP_OBJ)
            mask |= e->perm;
        if (e->tag == TAG_USER || e->tag == TAG_GROUP)
            *ret_named = true;
    }
    return mask;
}

bool
vmrpAclGrantUser(const char *path, uid_t uid, unsigned int perm, GError **error)
{
    g_autoptr(GArray) acl = NULL;
    aclEntry *e;
    aclEntry *mask;
    bool named;
    struct stat sb;

    if (stat(path, &sb) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot read %s: %s",
                    path, g_strerror(errno));
        return false;
    }
    if (!(acl = aclRead(path, &sb, error)))
        return false;
    if ((e = aclFind(acl, TAG_USER, uid))) {
        e->perm = perm & 7;
    } else {
        aclEntry ne = { TAG_USER, perm & 7, uid };
        g_array_append_val(acl, ne);
    }
    if (!(mask = aclFind(acl, TAG_MASK, ACL_UNDEFINED_ID))) {
        aclEntry ne = { TAG_MASK, 0, ACL_UNDEFINED_ID };
        g_array_append_val(acl, ne);
        mask = &g_array_index(acl, aclEntry, acl->len - 1);
    }
    mask->perm = aclGroupClass(acl, &named);
    return aclWrite(path, acl, error);
}

bool
vmrpAclRevokeUser(const char *path, uid_t uid, GError **error)
{
    g_autoptr(GArray) acl = NULL;
    aclEntry *group;
    aclEntry *mask;
    bool named;
    struct stat sb;
    guint i;

    if (stat(path, &sb) < 0) {
        if (errno == ENOENT)
            return true;
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot read %s: %s",
                    path, g_strerror(errno));
        return false;
    }
    if (!(acl = aclRead(path, &sb, error)))
        return false;
    for (i = 0; i < acl->len; i++) {
        aclEntry *e = &g_array_index(acl, aclEntry, i);
        if (e->tag == TAG_USER && e->id == uid)
            break;
    }
    if (i == acl->len)
        return true;
    g_array_remove_index(acl, i);
    mask = aclFind(acl, TAG_MASK, ACL_UNDEFINED_ID);
    group = aclFind(acl, TAG_GROUP_OBJ, ACL_UNDEFINED_ID);
    if (mask)
        mask->perm = aclGroupClass(acl, &named);
    else
        aclGroupClass(acl, &named);
    if (named)
        return aclWrite(path, acl, error);

    /* only the mode's entries are left: no ACL, the group bits its own */
    if (removexattr(path, ACL_XATTR) < 0 && errno != ENODATA) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot remove the ACL of %s: %s",
                    path, g_strerror(errno));
        return false;
    }
    if (group &&
        chmod(path, (sb.st_mode & ~(mode_t)070 & 07777) | ((mode_t)(group->perm & 7) << 3)) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot restore the mode of %s: %s",
                    path, g_strerror(errno));
        return false;
    }
    return true;
}

unsigned int
vmrpAclGetUser(const char *path, uid_t uid)
{
    g_autoptr(GArray) acl = NULL;
    aclEntry *e;
    struct stat sb;

    if (stat(path, &sb) < 0 || !(acl = aclRead(path, &sb, NULL)))
        return 0;
    e = aclFind(acl, TAG_USER, uid);
    return e ? e->perm : 0;
}
