/*
 * vmrp-files-restore.c: file-restore: a file or folder of a point copied out
 * of the appliance into a host folder, with modes, owners and times
 *
 * The names come from a guest file system, which may be hostile: every one
 * is checked (no '/', '.' or '..'), and every host file is made relative to
 * its parent's descriptor, exclusively and without following links, so that
 * nothing is written outside the output folder.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <guestfs.h>

#include "vmrp-error.h"
#include "vmrp-files.h"

#define FILES_MAX_DEPTH 512

typedef struct _filesNode filesNode;
struct _filesNode {
    vmrpFileEntry *entry;   /* entry->name: the host name */
    char *gpath;            /* the path in the guest file system */
    GPtrArray *children;    /* of filesNode, for a folder */
};

typedef struct {
    vmrpFiles *files;
    const vmrpFilesRestoreOptions *opts;
    vmrpFilesRestoreResult *res;
    uint64_t total;
    uint64_t done;          /* bytes of the files completed */
    bool root;              /* running as root: owners are restored */
} filesRestore;

static void
filesNodeFree(filesNode *node)
{
    if (!node)
        return;
    vmrpFileEntryFree(node->entry);
    g_free(node->gpath);
    if (node->children)
        g_ptr_array_free(node->children, TRUE);
    g_free(node);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(filesNode, filesNodeFree)

void
vmrpFilesRestoreResultClear(vmrpFilesRestoreResult *res)
{
    g_clear_pointer(&res->dest, g_free);
}

static bool
filesNameOK(const char *name)
{
    return *name && !strchr(name, '/') && !g_str_equal(name, ".") && !g_str_equal(name, "..");
}

/* Reads the guest's tree below @node (a folder) into its children. */
static bool
filesScan(filesRestore *r, filesNode *node, int depth, GError **error)
{
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)vmrpFileEntryFree);
    g_auto(GStrv) names = NULL;
    g_autofree char *escaped = g_strescape(node->gpath, NULL);
    guint i;

    if (depth > FILES_MAX_DEPTH) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "folders nested deeper than %d levels at %s", FILES_MAX_DEPTH, escaped);
        return false;
    }
    if (!(names = vmrpFilesReadDir(r->files, node->gpath, error)))
        return false;
    if (!vmrpFilesStat(r->files, node->gpath, names, entries, error))
        return false;
    node->children = g_ptr_array_new_with_free_func((GDestroyNotify)filesNodeFree);
    for (i = 0; i < entries->len; i++) {
        vmrpFileEntry *e = g_ptr_array_index(entries, i);
        filesNode *child;

        if (!filesNameOK(e->name)) {
            g_autofree char *bad = g_strescape(e->name, NULL);

            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "refusing the name '%s' in %s from the guest's file system", bad,
                        escaped);
            return false;
        }
        child = g_new0(filesNode, 1);
        child->entry = e;
        entries->pdata[i] = NULL;                /* now the child's */
        child->gpath = g_str_equal(node->gpath, "/") ?
            g_strconcat("/", child->entry->name, NULL) :
            g_strconcat(node->gpath, "/", child->entry->name, NULL);
        g_ptr_array_add(node->children, child);
        if (child->entry->type == VMRP_FILE_REGULAR)
            r->total += child->entry->size;
        else if (child->entry->type == VMRP_FILE_DIRECTORY &&
                 !filesScan(r, child, depth + 1, error))
            return false;
    }
    return true;
}

static void
filesProgressEvent(guestfs_h *g, void *opaque, uint64_t event, int handle, int flags,
                   const char *buf, size_t len, const uint64_t *array, size_t array_len)
{
    filesRestore *r = opaque;

    (void)g; (void)event; (void)handle; (void)flags; (void)buf; (void)len;
    /* array: proc_nr, serial, position, total */
    if (array_len >= 4 && r->opts && r->opts->progress)
        r->opts->progress(r->opts->opaque, r->done + array[2], r->total);
}

static bool
filesSetMeta(filesRestore *r, int dirfd, const char *name, int fd, const vmrpFileEntry *e,
             GError **error)
{
    struct timespec times[2] = {
        { .tv_sec = e->atime, .tv_nsec = e->atime_ns },
        { .tv_sec = e->mtime, .tv_nsec = e->mtime_ns },
    };
    g_autofree char *escaped = g_strescape(name, NULL);
    int rc;

    if (r->root) {
        rc = fd >= 0 ? fchown(fd, e->uid, e->gid) :
            fchownat(dirfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW);
        if (rc < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot set the owner of %s: %s",
                        escaped, g_strerror(errno));
            return false;
        }
    }
    if (fd >= 0 && fchmod(fd, e->mode & 07777) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot set the mode of %s: %s",
                    escaped, g_strerror(errno));
        return false;
    }
    rc = fd >= 0 ? futimens(fd, times) : utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW);
    if (rc < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot set the times of %s: %s",
                    escaped, g_strerror(errno));
        return false;
    }
    return true;
}

static bool
filesWrite(filesRestore *r, filesNode *node, int dirfd, GError **error)
{
    vmrpFileEntry *e = node->entry;
    g_autofree char *escaped = g_strescape(e->name, NULL);
    int fd;
    bool ok;
    guint i;

    if (r->opts && r->opts->cancel && g_cancellable_set_error_if_cancelled(r->opts->cancel,
                                                                           error))
        return false;
    switch (e->type) {
    case VMRP_FILE_REGULAR: {
        g_autofree char *fdpath = NULL;

        fd = openat(dirfd, e->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
        if (fd < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot create %s: %s", escaped,
                        g_strerror(errno));
            return false;
        }
        fdpath = g_strdup_printf("/dev/fd/%d", fd);
        if (guestfs_download(vmrpFilesHandle(r->files), node->gpath, fdpath) < 0) {
            g_autofree char *gesc = g_strescape(node->gpath, NULL);

            if (!r->opts || !g_cancellable_set_error_if_cancelled(r->opts->cancel, error))
                vmrpFilesSetError(r->files, error, VMRP_ERROR_FAILED, "cannot read %s", gesc);
            close(fd);
            return false;
        }
        ok = filesSetMeta(r, dirfd, e->name, fd, e, error);
        close(fd);
        if (!ok)
            return false;
        r->done += e->size;
        r->res->files++;
        r->res->bytes += e->size;
        if (r->opts && r->opts->progress)
            r->opts->progress(r->opts->opaque, r->done, r->total);
        return true;
    }
    case VMRP_FILE_SYMLINK:
        if (symlinkat(e->link ? e->link : "", dirfd, e->name) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot create the link %s: %s",
                        escaped, g_strerror(errno));
            return false;
        }
        r->res->symlinks++;
        return filesSetMeta(r, dirfd, e->name, -1, e, error);
    case VMRP_FILE_DIRECTORY:
        if (mkdirat(dirfd, e->name, 0700) < 0 ||
            (fd = openat(dirfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot create the folder %s: %s",
                        escaped, g_strerror(errno));
            return false;
        }
        ok = true;
        for (i = 0; ok && node->children && i < node->children->len; i++)
            ok = filesWrite(r, g_ptr_array_index(node->children, i), fd, error);
        /* the folder's mode and times last: its children no longer change it */
        ok = ok && filesSetMeta(r, dirfd, e->name, fd, e, error);
        close(fd);
        if (ok)
            r->res->dirs++;
        return ok;
    case VMRP_FILE_OTHER:
    case VMRP_FILE_FILESYSTEM:
    default:
        r->res->skipped++;   /* devices, fifos and sockets are not restored */
        return true;
    }
}

static int
filesRemoveOne(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

bool
vmrpFilesRestore(vmrpFiles *files, const char *path, const char *outdir,
                 const vmrpFilesRestoreOptions *opts, vmrpFilesRestoreResult *ret_res,
                 GError **error)
{
    g_autoptr(filesNode) node = g_new0(filesNode, 1);
    g_autofree char *fsname = NULL;
    g_autofree char *inner = NULL;
    g_autofree char *tmp = NULL;
    g_autofree char *escaped = g_strescape(path, NULL);
    vmrpFilesRestoreResult res = { 0 };
    filesRestore r = { files, opts, &res, 0, 0, geteuid() == 0 };
    struct stat st;
    int outfd = -1, tmpfd = -1, event;
    bool ok = false;

    if (!(node->entry = vmrpFilesLookup(files, path, &fsname, &inner, error))) {
        if (!fsname && inner)
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "'%s' names several file systems: restore one, as FS:/", escaped);
        return false;
    }
    node->gpath = g_strdup(inner);
    if (g_str_equal(inner, "/")) {
        g_free(node->entry->name);
        node->entry->name = g_strdelimit(g_strdup(fsname), "/", '-');   /* vg/lv: vg-lv */
    }
    if (node->entry->type == VMRP_FILE_OTHER) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s is a device, fifo or socket: not restored", escaped);
        return false;
    }

    if ((outfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        g_set_error(error, VMRP_ERROR, errno == ENOENT ? VMRP_ERROR_NOT_FOUND : VMRP_ERROR_IO,
                    "--output %s: %s", outdir,
                    errno == ENOTDIR ? "not a folder" : g_strerror(errno));
        return false;
    }
    if (fstatat(outfd, node->entry->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        g_autofree char *name = g_strescape(node->entry->name, NULL);

        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "%s/%s already exists: choose another --output", outdir, name);
        close(outfd);
        return false;
    }
    if (node->entry->type == VMRP_FILE_DIRECTORY && !filesScan(&r, node, 0, error)) {
        close(outfd);
        return false;
    }
    if (node->entry->type == VMRP_FILE_REGULAR)
        r.total = node->entry->size;

    tmp = g_build_filename(outdir, ".vmrp-file-restore-XXXXXX", NULL);
    if (!g_mkdtemp_full(tmp, 0700) ||
        (tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot write into %s: %s", outdir,
                    g_strerror(errno));
        close(outfd);
        return false;
    }
    event = guestfs_set_event_callback(vmrpFilesHandle(files), filesProgressEvent,
                                       GUESTFS_EVENT_PROGRESS, 0, &r);
    ok = filesWrite(&r, node, tmpfd, error);
    if (event >= 0)
        guestfs_delete_event_callback(vmrpFilesHandle(files), event);
    if (ok && renameat2(tmpfd, node->entry->name, outfd, node->entry->name,
                        RENAME_NOREPLACE) < 0) {
        g_set_error(error, VMRP_ERROR, errno == EEXIST ? VMRP_ERROR_EXISTS : VMRP_ERROR_IO,
                    "cannot move the restored %s into %s: %s", escaped, outdir,
                    g_strerror(errno));
        ok = false;
    }
    close(tmpfd);
    close(outfd);
    nftw(tmp, filesRemoveOne, 16, FTW_DEPTH | FTW_PHYS);
    if (!ok)
        return false;
    res.dest = g_build_filename(outdir, node->entry->name, NULL);
    if (ret_res)
        *ret_res = res;
    else
        vmrpFilesRestoreResultClear(&res);
    return true;
}
