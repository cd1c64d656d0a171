/*
 * vmrp-firmware.c: the UEFI variable store and the vTPM state of a point
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmrp-firmware.h"
#include "vmrp-error.h"
#include "vmrp-file.h"

#define SWTPM_DIR "/var/lib/libvirt/swtpm"
#define NVRAM_DIR "/var/lib/libvirt/qemu/nvram"
#define QEMU_CONF "/etc/libvirt/qemu.conf"
#define COPY_BUF (64 * 1024)
#define FILE_MAX ((goffset)64 * 1024 * 1024)   /* NVRAM and TPM state are small */

char *
vmrpFirmwareSwtpmDir(const char *uuid)
{
    return g_build_filename(SWTPM_DIR, uuid, NULL);
}

char *
vmrpFirmwareNvramPath(const char *name)
{
    g_autofree char *file = g_strdup_printf("%s_VARS.fd", name);
    return g_build_filename(NVRAM_DIR, file, NULL);
}

/* Copies @src to the new file @dst (O_EXCL), owned by @uid:@gid (-1: root's),
 * and says its size and sha256. */
static bool
copyFile(const char *src, const char *dst, mode_t mode, uid_t uid, gid_t gid,
         uint64_t *ret_size, char **ret_sha256, GError **error)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree char *buf = g_malloc(COPY_BUF);
    int in = -1, out = -1;
    uint64_t size = 0;
    struct stat sb;
    const char *what = src;
    bool ok = false;
    ssize_t n;

    if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)) < 0 ||
        fstat(in, &sb) < 0)
        goto io;
    if (!S_ISREG(sb.st_mode) || sb.st_size > FILE_MAX) {
        errno = EINVAL;
        goto io;
    }
    what = dst;
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)) < 0)
        goto io;
    for (;;) {
        what = src;
        if ((n = read(in, buf, COPY_BUF)) < 0) {
            if (errno == EINTR)
                continue;
            goto io;
        }
        if (n == 0)
            break;
        what = dst;
        if (write(out, buf, n) != n)
            goto io;
        g_checksum_update(sum, (const guchar *)buf, n);
        size += n;
    }
    what = dst;
    if ((uid != (uid_t)-1 && fchown(out, uid, gid) < 0) || fchmod(out, mode) < 0 ||
        fsync(out) < 0)
        goto io;
    *ret_size = size;
    *ret_sha256 = g_strdup(g_checksum_get_string(sum));
    ok = true;
    goto done;

 io:
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot copy %s: %s: %s", src, what,
                errno == EINVAL ? "not a regular file of a sane size" : g_strerror(errno));
 done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok;
}

static bool
saveOne(vmrpPoint *point, const char *point_dir, const char *kind, const char *rel,
        const char *src, GError **error)
{
    g_autofree char *dst = g_build_filename(point_dir, rel, NULL);
    vmrpPointFile *file = vmrpPointAddFile(point, kind, rel);

    file->source = g_strdup(src);
    return copyFile(src, dst, 0600, (uid_t)-1, (gid_t)-1, &file->size, &file->sha256, error);
}

/* Copies the tree @src to @point_dir/@rel, recursively. */
static bool
saveTree(vmrpPoint *point, const char *point_dir, const char *rel, const char *src,
         int depth, GError **error)
{
    g_autofree char *dst = g_build_filename(point_dir, rel, NULL);
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GError) local = NULL;
    const char *name;

    if (depth > 8) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "%s is nested too deep", src);
        return false;
    }
    if (!vmrpFileMakeDir(dst, 0700, false, error))
        return false;
    if (!(dir = g_dir_open(src, 0, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot read %s: %s", src,
                    local->message);
        return false;
    }
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *child = g_build_filename(src, name, NULL);
        g_autofree char *child_rel = g_build_filename(rel, name, NULL);
        struct stat sb;

        /* swtpm's lock file and anything hidden: not state */
        if (name[0] == '.' || lstat(child, &sb) < 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            if (!saveTree(point, point_dir, child_rel, child, depth + 1, error))
                return false;
        } else if (S_ISREG(sb.st_mode)) {
            if (!saveOne(point, point_dir, "tpm", child_rel, child, error))
                return false;
        }
    }
    return true;
}

bool
vmrpFirmwareSave(vmrpPoint *point, const char *point_dir, const char *nvram,
                 const char *tpm_dir, GError **error)
{
    if (nvram) {
        g_autofree char *dir = g_build_filename(point_dir, "nvram", NULL);

        if (!vmrpFileMakeDir(dir, 0700, false, error) ||
            !saveOne(point, point_dir, "nvram", "nvram/VARS.fd", nvram, error))
            return false;
    }
    if (tpm_dir && g_file_test(tpm_dir, G_FILE_TEST_IS_DIR) &&
        !saveTree(point, point_dir, "tpm", tpm_dir, 0, error))
        return false;
    return true;
}

static bool
restoreOne(const vmrpPointFile *file, const char *point_dir, const char *dst, mode_t mode,
           uid_t uid, gid_t gid, GError **error)
{
    g_autofree char *src = g_build_filename(point_dir, file->path, NULL);
    g_autofree char *sha256 = NULL;
    uint64_t size = 0;

    if (!copyFile(src, dst, mode, uid, gid, &size, &sha256, error))
        return false;
    if (size != file->size || g_strcmp0(sha256, file->sha256) != 0) {
        unlink(dst);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "the point's copy of %s is damaged: its size or sha256 is not the one "
                    "recorded", file->path);
        return false;
    }
    return true;
}

bool
vmrpFirmwareRestoreNvram(const vmrpPoint *point, const char *point_dir, const char *dest,
                         GError **error)
{
    size_t i;

    for (i = 0; i < point->files->len; i++) {
        const vmrpPointFile *file = g_ptr_array_index(point->files, i);

        if (g_str_equal(file->kind, "nvram"))
            return restoreOne(file, point_dir, dest, 0600, (uid_t)-1, (gid_t)-1, error);
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                "restore point %s holds no UEFI variables", point->id);
    return false;
}

/* swtpm_user / swtpm_group of qemu.conf, "tss" when unset (libvirt's default) */
static char *
confValue(const char *conf, const char *key, const char *fallback)
{
    g_auto(GStrv) lines = g_strsplit(conf ? conf : "", "\n", -1);
    size_t i;

    for (i = 0; lines[i]; i++) {
        char *line = g_strstrip(lines[i]);
        size_t len = strlen(key);
        char *val;

        if (strncmp(line, key, len) != 0)
            continue;
        val = g_strstrip(line + len);
        if (*val != '=')
            continue;
        val = g_strstrip(val + 1);
        if (val[0] == '"' && strlen(val) > 2 && val[strlen(val) - 1] == '"')
            return g_strndup(val + 1, strlen(val) - 2);
    }
    return g_strdup(fallback);
}

static void
swtpmOwner(uid_t *ret_uid, gid_t *ret_gid)
{
    g_autofree char *conf = vmrpFileRead(QEMU_CONF, 1024 * 1024, NULL, NULL);
    g_autofree char *user = confValue(conf, "swtpm_user", "tss");
    g_autofree char *group = confValue(conf, "swtpm_group", "tss");
    struct passwd *pw = getpwnam(user);
    struct group *gr = getgrnam(group);

    *ret_uid = pw ? pw->pw_uid : 0;
    *ret_gid = gr ? gr->gr_gid : 0;
}

bool
vmrpFirmwareRestoreTpm(const vmrpPoint *point, const char *point_dir, const char *dest_dir,
                       GError **error)
{
    g_autofree char *top = NULL;
    uid_t uid;
    gid_t gid;
    size_t i;

    top = g_path_get_dirname(dest_dir);
    swtpmOwner(&uid, &gid);
    /* a new folder: never into a state that is there; root's 0711 with the
     * swtpm user's folders and files inside, as libvirt makes it */
    if ((!g_file_test(top, G_FILE_TEST_IS_DIR) &&
         !vmrpFileMakeDirWithParents(top, 0711, 0711, error)) ||
        !vmrpFileMakeDir(dest_dir, 0711, false, error))
        return false;
    for (i = 0; i < point->files->len; i++) {
        const vmrpPointFile *file = g_ptr_array_index(point->files, i);
        g_autofree char *dst = NULL;
        g_autofree char *parent = NULL;
        size_t j;

        if (!g_str_equal(file->kind, "tpm"))
            continue;
        dst = g_build_filename(dest_dir, file->path + strlen("tpm/"), NULL);
        parent = g_path_get_dirname(dst);
        /* the folders between, as swtpm has them: the swtpm user's, 0700 */
        if (!g_str_equal(parent, dest_dir)) {
            g_auto(GStrv) parts = g_strsplit(file->path + strlen("tpm/"), "/", -1);
            g_autofree char *sub = g_strdup(dest_dir);

            for (j = 0; parts[j] && parts[j + 1]; j++) {
                char *next = g_build_filename(sub, parts[j], NULL);

                g_free(sub);
                sub = next;
                if (!vmrpFileMakeDir(sub, 0700, true, error))
                    return false;
                if (chown(sub, uid, gid) < 0) {
                    g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO,
                                "cannot give %s to the swtpm user: %s", sub, g_strerror(errno));
                    return false;
                }
            }
        }
        if (!restoreOne(file, point_dir, dst, 0600, uid, gid, error))
            return false;
    }
    return true;
}

bool
vmrpFirmwareRestorePlan(vmrpFirmwareRestore *fw, const vmrpPoint *point,
                        vmrpDomainXml *domxml, const char *live_xml, bool in_place,
                        const char *new_name, GError **error)
{
    g_autofree char *nvram = vmrpDomainXmlGetNvram(domxml);
    bool has_nvram = vmrpPointHasFiles(point, "nvram");

    fw->tpm = vmrpPointHasFiles(point, "tpm") && vmrpDomainXmlHasSwtpm(domxml);
    if (!nvram)
        return true;
    if (!in_place) {
        /* never the original's file: libvirt's path for the new name; without a
         * copy in the point, libvirt makes it from the template at start */
        g_autofree char *path = vmrpFirmwareNvramPath(new_name);

        if (!vmrpDomainXmlSetNvram(domxml, path, error))
            return false;
        if (has_nvram)
            fw->nvram_dest = g_steal_pointer(&path);
        return true;
    }
    if (!has_nvram)
        return true;
    if (live_xml) {
        g_autoptr(vmrpDomainXml) live = vmrpDomainXmlParse(live_xml, error);

        if (!live)
            return false;
        fw->nvram_dest = vmrpDomainXmlGetNvram(live);
    } else if (g_str_has_prefix(nvram, NVRAM_DIR "/") && !strstr(nvram, "/..") &&
               !strchr(nvram + strlen(NVRAM_DIR "/"), '/')) {
        fw->nvram_dest = g_strdup(nvram);
    }
    if (!fw->nvram_dest) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "cannot restore the UEFI variables of point %s in place: the domain has "
                    "no NVRAM file of its own in %s; restore beside it with --name",
                    point->id, NVRAM_DIR);
        return false;
    }
    /* known before anything changes: the restore's journal names it */
    fw->nvram_aside = g_strdup_printf("%s.vmrp-old-%s", fw->nvram_dest, point->id);
    /* the XML defined names the file written */
    return vmrpDomainXmlSetNvram(domxml, fw->nvram_dest, error);
}

/* Renames @path aside to @aside; a missing @path is nothing to set aside. */
static bool
setAside(const char *path, const char *aside, bool *ret_done, GError **error)
{
    struct stat sb;

    if (lstat(path, &sb) < 0) {
        if (errno == ENOENT)
            return true;
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot read %s: %s", path,
                    g_strerror(errno));
        return false;
    }
    if (rename(path, aside) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot set %s aside: %s", path,
                    g_strerror(errno));
        return false;
    }
    *ret_done = true;
    return true;
}

bool
vmrpFirmwareRestoreWriteNvram(vmrpFirmwareRestore *fw, const vmrpPoint *point,
                              const char *point_dir, GError **error)
{
    if (!fw->nvram_dest)
        return true;
    if (!fw->nvram_aside)
        fw->nvram_aside = g_strdup_printf("%s.vmrp-old-%s", fw->nvram_dest, point->id);
    if (!setAside(fw->nvram_dest, fw->nvram_aside, &fw->nvram_set_aside, error))
        return false;
    if (g_file_test(fw->nvram_dest, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "cannot restore the UEFI variables: %s exists already", fw->nvram_dest);
        return false;
    }
    fw->nvram_created = true;
    return vmrpFirmwareRestoreNvram(point, point_dir, fw->nvram_dest, error);
}

void
vmrpFirmwareRestoreNameTpm(vmrpFirmwareRestore *fw, const vmrpPoint *point, const char *uuid)
{
    if (!fw->tpm)
        return;
    g_free(fw->tpm_dest);
    g_free(fw->tpm_aside);
    fw->tpm_dest = vmrpFirmwareSwtpmDir(uuid);
    fw->tpm_aside = g_strdup_printf("%s.vmrp-old-%s", fw->tpm_dest, point->id);
}

bool
vmrpFirmwareRestoreWriteTpm(vmrpFirmwareRestore *fw, const vmrpPoint *point,
                            const char *point_dir, GError **error)
{
    if (!fw->tpm)
        return true;
    if (!setAside(fw->tpm_dest, fw->tpm_aside, &fw->tpm_set_aside, error))
        return false;
    if (g_file_test(fw->tpm_dest, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "cannot restore the vTPM state: %s exists already", fw->tpm_dest);
        return false;
    }
    fw->tpm_created = true;
    return vmrpFirmwareRestoreTpm(point, point_dir, fw->tpm_dest, error);
}

void
vmrpFirmwareRestoreRollback(vmrpFirmwareRestore *fw)
{
    if (fw->nvram_created && unlink(fw->nvram_dest) < 0 && errno != ENOENT)
        g_warning("cannot remove %s: %s", fw->nvram_dest, g_strerror(errno));
    if (fw->nvram_set_aside && rename(fw->nvram_aside, fw->nvram_dest) < 0)
        g_warning("cannot put %s back: %s", fw->nvram_dest, g_strerror(errno));
    if (fw->tpm_created && !vmrpFileRemoveTree(fw->tpm_dest, NULL))
        g_warning("cannot remove %s", fw->tpm_dest);
    if (fw->tpm_set_aside && rename(fw->tpm_aside, fw->tpm_dest) < 0)
        g_warning("cannot put %s back: %s", fw->tpm_dest, g_strerror(errno));
    fw->nvram_created = fw->nvram_set_aside = fw->tpm_created = fw->tpm_set_aside = false;
}

void
vmrpFirmwareRestoreDone(vmrpFirmwareRestore *fw)
{
    if (fw->nvram_set_aside && unlink(fw->nvram_aside) < 0)
        g_warning("cannot remove %s: %s", fw->nvram_aside, g_strerror(errno));
    if (fw->tpm_set_aside && !vmrpFileRemoveTree(fw->tpm_aside, NULL))
        g_warning("cannot remove %s", fw->tpm_aside);
    fw->nvram_created = fw->nvram_set_aside = fw->tpm_created = fw->tpm_set_aside = false;
}

void
vmrpFirmwareRestoreClear(vmrpFirmwareRestore *fw)
{
    g_free(fw->nvram_dest);
    g_free(fw->nvram_aside);
    g_free(fw->tpm_dest);
    g_free(fw->tpm_aside);
}
