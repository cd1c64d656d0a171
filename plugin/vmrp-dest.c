/*
 * vmrp-dest.c: destination repositories; the local backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "vmrp-dest.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-names.h"
#include "vmrp-repo.h"

/* 256 KiB: the file system takes writes of 4 MiB 2 to 4 times slower here (cold
 * caches, ext4: 1 GiB in 2.0-3.1 s against 0.6-0.9 s; bench-copy.sh) */
#define COPY_CHUNK (256 * 1024)
/* the write-back of what was written is started every 8 MiB, so that the disk
 * writes while the copy goes on and the fsync at the end has little left */
#define COPY_FLUSH_EVERY (8 * 1024 * 1024)

static char *
localPath(vmrpDest *dest, const char *rel)
{
    return g_build_filename(dest->root, rel, NULL);
}

static bool
localMakeDir(vmrpDest *dest, const char *rel, GError **error)
{
    g_autofree char *path = localPath(dest, rel);
    return vmrpFileMakeDir(path, 0700, true, error);
}

static bool
localWriteFile(vmrpDest *dest, const char *rel, const char *data, size_t len, GError **error)
{
    g_autofree char *path = localPath(dest, rel);
    return vmrpFileWriteAtomic(path, data, len, 0600, error);
}

static bool
ioError(GError **error, const char *what, const char *path)
{
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s %s: %s", what, path, g_strerror(errno));
    return false;
}

/* Only the data extents of @src (SEEK_DATA/SEEK_HOLE) are read and written;
 * the file gets its size with ftruncate, so the rest stays holes. */
static bool
localCopyFile(vmrpDest *dest, const char *src, const char *rel, vmrpDestProgressFunc progress,
              void *opaque, GCancellable *cancel, GError **error)
{
    g_autofree char *path = localPath(dest, rel);
    g_autofree char *buf = g_malloc(COPY_CHUNK);
    int in = -1, out = -1;
    struct stat sb;
    off_t pos = 0;
    off_t flushed = 0;
    uint64_t done = 0;
    bool ok = false;

    if ((in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return ioError(error, "cannot read", src);
    if (fstat(in, &sb) < 0) {
        ioError(error, "cannot read", src);
        goto cleanup;
    }
    if ((out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        ioError(error, "cannot create", path);
        goto cleanup;
    }
    if (ftruncate(out, sb.st_size) < 0) {
        ioError(error, "cannot write", path);
        goto cleanup;
    }
    while (pos < sb.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        off_t hole;

        if (data < 0 && errno == ENXIO)
            break;              /* only a hole is left */
        if (data < 0 || (hole = lseek(in, data, SEEK_HOLE)) < 0) {
            ioError(error, "cannot read", src);
            goto cleanup;
        }
        for (pos = data; pos < hole;) {
            ssize_t n = pread(in, buf, MIN((off_t)COPY_CHUNK, hole - pos), pos);
            ssize_t w = 0;

            if (g_cancellable_set_error_if_cancelled(cancel, error))
                goto cleanup;
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (n == 0)
                    errno = EIO;
                ioError(error, "cannot read", src);
                goto cleanup;
            }
            while (w < n) {
                ssize_t r = pwrite(out, buf + w, n - w, pos + w);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0) {
                    ioError(error, "cannot write", path);
                    goto cleanup;
                }
                w += r;
            }
            pos += n;
            done += n;
            if (pos - flushed >= COPY_FLUSH_EVERY) {
                /* a hint: the fsync below is what makes it durable */
                sync_file_range(out, flushed, pos - flushed, SYNC_FILE_RANGE_WRITE);
                flushed = pos;
            }
            if (progress)
                progress(done, pos, opaque);
        }
    }
    if (progress)
        progress(done, sb.st_size, opaque);     /* whole, before the fsync */
    if (fsync(out) < 0) {
        ioError(error, "cannot write", path);
        goto cleanup;
    }
    ok = true;

 cleanup:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) < 0 && ok)
        ok = ioError(error, "cannot write", path);
    return ok;
}

static char *
localReadFile(vmrpDest *dest, const char *rel, size_t max, GError **error)
{
    g_autofree char *path = localPath(dest, rel);

    if (access(path, F_OK) < 0 && errno == ENOENT)
        return NULL;
    return vmrpFileRead(path, max, NULL, error);
}

static GPtrArray *
localList(vmrpDest *dest, const char *rel, GError **error)
{
    g_autofree char *path = localPath(dest, rel);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) dir = NULL;
    const char *ent;

    if (!(dir = g_dir_open(path, 0, &local))) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return NULL;
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s", local->message);
        return NULL;
    }
    while ((ent = g_dir_read_name(dir)))
        g_ptr_array_add(names, g_strdup(ent));
    return g_steal_pointer(&names);
}

static bool
localRename(vmrpDest *dest, const char *from, const char *to, GError **error)
{
    g_autofree char *a = localPath(dest, from);
    g_autofree char *b = localPath(dest, to);

    if (rename(a, b) < 0)
        return ioError(error, "cannot rename", a);
    return true;
}

static bool
localRemoveTree(vmrpDest *dest, const char *rel, GError **error)
{
    g_autofree char *path = localPath(dest, rel);
    return vmrpFileRemoveTree(path, error);
}

static bool
localSyncDir(vmrpDest *dest, const char *rel, GError **error)
{
    g_autofree char *path = localPath(dest, rel);
    return vmrpFileSync(path, error);
}

static int
localLock(vmrpDest *dest, const char *rel, GError **error)
{
    g_autofree char *path = localPath(dest, rel);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        ioError(error, "cannot open lock", path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                    "%s is busy: another vmrp works on it", dest->spec);
        close(fd);
        return -1;
    }
    /* a vmrp on another host holds it over SFTP (vmrp-dest-ssh.c) */
    {
        g_autofree char *dir = g_path_get_dirname(path);
        g_autofree char *sftp = g_build_filename(dir, VMRP_DEST_SFTP_LOCK, NULL);

        if (access(sftp, F_OK) == 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                        "%s is busy: a vmrp works on it over ssh (%s)", dest->spec, sftp);
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void
localUnlock(vmrpDest *dest, int handle)
{
    if (handle >= 0)
        close(handle);
}

static char *
localLocalPath(vmrpDest *dest, const char *rel)
{
    return localPath(dest, rel);
}

static const vmrpDestOps localOps = {
    .scheme = "file",
    .make_dir = localMakeDir,
    .write_file = localWriteFile,
    .copy_file = localCopyFile,
    .read_file = localReadFile,
    .list = localList,
    .rename = localRename,
    .remove_tree = localRemoveTree,
    .sync_dir = localSyncDir,
    .lock = localLock,
    .unlock = localUnlock,
    .local_path = localLocalPath,
};

vmrpDest *
vmrpDestOpen(const char *spec, GError **error)
{
    g_autoptr(vmrpDest) dest = g_new0(vmrpDest, 1);

    if (!spec || !*spec) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "no destination given");
        return NULL;
    }
    if (vmrpDestIsRemote(spec))
        return vmrpDestSshOpen(spec, error);
    if (strstr(spec, "://")) {
        g_autofree char *shown = g_strescape(spec, NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "destination '%s': a local folder or ssh://[user@]host[:port]/path",
                    shown);
        return NULL;
    }
    dest->spec = g_strdup(spec);
    dest->root = g_canonicalize_filename(spec, NULL);
    dest->ops = &localOps;
    if (!vmrpFileMakeDirWithParents(dest->root, 0755, 0700, error))
        return NULL;
    return g_steal_pointer(&dest);
}

void
vmrpDestFree(vmrpDest *dest)
{
    if (!dest)
        return;
    if (dest->ops && dest->ops->close)
        dest->ops->close(dest);
    g_free(dest->spec);
    g_free(dest->root);
    g_free(dest);
}

bool
vmrpDestIsRemote(const char *spec)
{
    return spec && g_ascii_strncasecmp(spec, "ssh://", 6) == 0;
}

bool
vmrpDestMakeEmptyDir(vmrpDest *dest, const char *rel, GPtrArray *folders, GError **error)
{
    guint i;

    if (!dest->ops->remove_tree(dest, rel, error) || !dest->ops->make_dir(dest, rel, error))
        return false;
    for (i = 0; i < folders->len; i++) {
        g_autofree char *sub = g_build_filename(rel, g_ptr_array_index(folders, i), NULL);
        if (!dest->ops->make_dir(dest, sub, error))
            return false;
    }
    return true;
}

bool
vmrpDestCommitPoint(vmrpDest *dest, vmrpPoint *copy, const char *tmp_rel, const char *final_rel,
                    GError **error)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *rel = g_build_filename(tmp_rel, "point.json", NULL);
    g_autofree char *points_rel = g_path_get_dirname(final_rel);
    g_autofree char *text = NULL;

    g_free(copy->verified);
    g_free(copy->verify_state);
    g_clear_pointer(&copy->verify_reason, g_free);
    copy->verified = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    copy->verify_state = g_strdup("OK");
    text = vmrpPointToJSON(copy);
    return dest->ops->write_file(dest, rel, text, strlen(text), error) &&
           dest->ops->rename(dest, tmp_rel, final_rel, error) &&
           dest->ops->sync_dir(dest, points_rel, error);
}

bool
vmrpDestPrepare(vmrpDest *dest, const char *src_id, const char *uuid, const char *name,
                GError **error)
{
    g_autofree char *text = NULL;
    g_autofree char *dst_id = NULL;
    g_autoptr(GPtrArray) top = NULL;
    g_autofree char *coll = g_build_filename("collections", uuid, NULL);
    g_autofree char *points = g_build_filename(coll, "points", NULL);
    g_autofree char *coll_json = g_build_filename(coll, "collection.json", NULL);
    g_autofree char *coll_text = NULL;

    if (!(text = dest->ops->read_file(dest, "repository.json", 1024 * 1024, error))) {
        if (error && *error)
            return false;
        /* a new repository: only in an empty folder */
        top = dest->ops->list(dest, "", error);
        if (error && *error)
            return false;
        if (top && top->len > 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "%s is not a vmrp repository (no repository.json) and not empty",
                        dest->spec);
            return false;
        }
        text = vmrpRepoNewManifestText();
        if (!dest->ops->make_dir(dest, "collections", error) ||
            !dest->ops->make_dir(dest, "jobs", error) ||
            !dest->ops->write_file(dest, "repository.json", text, strlen(text), error))
            return false;
    } else {
        if (!(dst_id = vmrpRepoIdFromText(text, error))) {
            g_prefix_error(error, "%s: ", dest->spec);
            return false;
        }
        if (g_str_equal(src_id, dst_id)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "the destination %s is the source repository (the same id %s)",
                        dest->spec, src_id);
            return false;
        }
    }
    if (!dest->ops->make_dir(dest, coll, error) || !dest->ops->make_dir(dest, points, error))
        return false;
    if (!(coll_text = dest->ops->read_file(dest, coll_json, 1024 * 1024, error))) {
        if (error && *error)
            return false;
        /* no policy: retention at the destination is its own (policy-set --repo) */
        coll_text = vmrpRepoNewCollectionText(name, uuid, true);
        if (!dest->ops->write_file(dest, coll_json, coll_text, strlen(coll_text), error))
            return false;
    } else if (!vmrpRepoCollectionTextIsCopy(coll_text)) {
        /* the domain's own collection there: its checkpoints are not ours */
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s holds a collection of domain %s of its own (not a copy): nothing "
                    "copied", dest->spec, name);
        return false;
    }
    return true;
}

bool
vmrpDestScanPoints(vmrpDest *dest, const char *points_rel, GHashTable *ret_ids, GError **error)
{
    g_autoptr(GPtrArray) names = NULL;
    guint i;

    if (!(names = dest->ops->list(dest, points_rel, error)))
        return !(error && *error);
    for (i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *rel = g_build_filename(points_rel, name, NULL);

        if (g_str_has_prefix(name, VMRP_DEST_CREATING) &&
            vmrpNameCheckPoint(name + strlen(VMRP_DEST_CREATING), NULL)) {
            if (!dest->ops->remove_tree(dest, rel, error))
                return false;
        } else if (vmrpNameCheckPoint(name, NULL)) {
            g_hash_table_add(ret_ids, g_strdup(name));
        }
    }
    return true;
}
