/*
 * vmrp-state.c: vmrp's private run-time folders
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "vmrp-state.h"
#include "vmrp-error.h"
#include "vmrp-file.h"

const char *
vmrpStateDir(void)
{
    const char *dir = g_getenv("VMRP_STATE_DIR");
    return dir && *dir ? dir : VMRP_STATE_DIR;
}

/* The user QEMU runs as: Debian's libvirt-qemu, other distributions' qemu,
 * or root when neither exists. */
static bool
qemuUser(uid_t *uid, gid_t *gid)
{
    static const char *const names[] = { "libvirt-qemu", "qemu" };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(names); i++) {
        struct passwd *pw = getpwnam(names[i]);
        if (pw) {
            *uid = pw->pw_uid;
            *gid = pw->pw_gid;
            return true;
        }
    }
    return false;
}

/* QEMU must pass through every folder above the state folder. */
static bool
checkReachable(const char *path, uid_t uid, GError **error)
{
    g_autofree char *cur = g_strdup(path);

    while (!g_str_equal(cur, "/") && !g_str_equal(cur, ".")) {
        struct stat sb;
        char *parent;

        if (stat(cur, &sb) == 0 && !(sb.st_mode & S_IXOTH) &&
            !(sb.st_uid == uid && (sb.st_mode & S_IXUSR))) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO,
                        "QEMU cannot reach the state folder %s: %s is not searchable "
                        "by others (chmod o+x, or set VMRP_STATE_DIR)", path, cur);
            return false;
        }
        parent = g_path_get_dirname(cur);
        g_free(cur);
        cur = parent;
    }
    return true;
}

char *
vmrpStateMakeJobDir(const char *name, GError **error)
{
    g_autofree char *dir = g_build_filename(vmrpStateDir(), name, NULL);
    uid_t uid = 0;
    gid_t gid = 0;
    bool have_user = qemuUser(&uid, &gid);

    if (!vmrpFileMakeDirWithParents(vmrpStateDir(), 0755, 0711, error) ||
        (have_user && !checkReachable(vmrpStateDir(), uid, error)) ||
        !vmrpFileMakeDir(dir, 0700, false, error))
        return NULL;
    if (have_user && chown(dir, uid, gid) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot chown %s: %s",
                    dir, g_strerror(errno));
        rmdir(dir);
        return NULL;
    }
    return g_steal_pointer(&dir);
}

bool
vmrpStateGiveToQemu(const char *path, GError **error)
{
    uid_t uid = 0;
    gid_t gid = 0;

    if (qemuUser(&uid, &gid) && chown(path, uid, gid) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot chown %s: %s",
                    path, g_strerror(errno));
        return false;
    }
    return true;
}

char *
vmrpStateMakeRootJobDir(const char *name, const char *keep, bool *ret_kept, GError **error)
{
    g_autofree char *dir = g_build_filename(vmrpStateDir(), name, NULL);
    bool kept = false;

    if (!vmrpFileMakeDirWithParents(vmrpStateDir(), 0755, 0711, error))
        return NULL;
    if (g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_autofree char *marker = keep ? g_build_filename(dir, keep, NULL) : NULL;

        kept = marker && g_file_test(marker, G_FILE_TEST_EXISTS);
        if (!vmrpFileRemoveTree(dir, error))
            return NULL;
    }
    if (!vmrpFileMakeDir(dir, 0700, false, error))
        return NULL;
    if (ret_kept)
        *ret_kept = kept;
    return g_steal_pointer(&dir);
}
