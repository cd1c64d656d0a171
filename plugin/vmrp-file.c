/*
 * vmrp-file.c: durable file operations for the repository
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmrp-file.h"
#include "vmrp-error.h"

static bool
setErrno(GError **error, int err, const char *what, const char *path)
{
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s %s: %s", what, path, g_strerror(err));
    return false;
}

bool
vmrpFileSync(const char *path, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int err;

    if (fd < 0)
        return setErrno(error, errno, "cannot open", path);
    if (fsync(fd) < 0) {
        err = errno;
        close(fd);
        return setErrno(error, err, "cannot sync", path);
    }
    close(fd);
    return true;
}

static bool
fileWrite(const char *path, const char *data, size_t len, mode_t mode, bool sync,
          GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, base);
    size_t done = 0;
    int fd;
    int err;

    if ((fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, mode)) < 0)
        return setErrno(error, errno, "cannot create", tmp);

    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        done += n;
    }
    if (fchmod(fd, mode) < 0 || (sync && fsync(fd) < 0))
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    return !sync || vmrpFileSync(dir, error);

 fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return setErrno(error, err, "cannot write", path);
}

bool
vmrpFileWriteAtomic(const char *path, const char *data, size_t len,
                    mode_t mode, GError **error)
{
    return fileWrite(path, data, len, mode, true, error);
}

bool
vmrpFileWriteReplace(const char *path, const char *data, size_t len,
                     mode_t mode, GError **error)
{
    return fileWrite(path, data, len, mode, false, error);
}

bool
vmrpFileMakeDir(const char *path, mode_t mode, bool may_exist, GError **error)
{
    struct stat sb;

    if (mkdir(path, mode) == 0)
        return chmod(path, mode) == 0 ? true : setErrno(error, errno, "cannot chmod", path);
    if (errno != EEXIST || !may_exist)
        return setErrno(error, errno, "cannot create folder", path);
    if (lstat(path, &sb) < 0)
        return setErrno(error, errno, "cannot stat", path);
    if (!S_ISDIR(sb.st_mode))
        return setErrno(error, ENOTDIR, "cannot use", path);
    if ((sb.st_mode & 07777) != mode && chmod(path, mode) < 0)
        return setErrno(error, errno, "cannot chmod", path);
    return true;
}

bool
vmrpFileMakeDirWithParents(const char *path, mode_t parent_mode, mode_t mode, GError **error)
{
    g_autofree char *parent = g_path_get_dirname(path);

    if (g_file_test(path, G_FILE_TEST_EXISTS))
        return vmrpFileMakeDir(path, mode, true, error);
    if (!g_str_equal(parent, path) && !g_file_test(parent, G_FILE_TEST_EXISTS) &&
        !vmrpFileMakeDirWithParents(parent, parent_mode, parent_mode, error))
        return false;
    return vmrpFileMakeDir(path, mode, true, error);
}

static int
removeOne(const char *path, const struct stat *sb G_GNUC_UNUSED,
          int typeflag, struct FTW *ftw G_GNUC_UNUSED)
{
    if (typeflag == FTW_DP)
        return rmdir(path) < 0 ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

bool
vmrpFileRemoveTree(const char *path, GError **error)
{
    struct stat sb;

    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? true : setErrno(error, errno, "cannot stat", path);
    if (nftw(path, removeOne, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
        return setErrno(error, errno, "cannot remove", path);
    return true;
}

char *
vmrpFileRead(const char *path, size_t max, size_t *ret_len, GError **error)
{
    g_autofree char *data = NULL;
    struct stat sb;
    size_t len = 0;

    if (stat(path, &sb) < 0) {
        setErrno(error, errno, "cannot read", path);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size > max) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "cannot read %s: not a regular file of at most %zu bytes", path, max);
        return NULL;
    }
    if (!g_file_get_contents(path, &data, &len, NULL)) {
        setErrno(error, errno ? errno : EIO, "cannot read", path);
        return NULL;
    }
    if (ret_len)
        *ret_len = len;
    return g_steal_pointer(&data);
}
