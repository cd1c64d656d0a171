/*
 * vmrp-files.c: a disk restore point opened in libguestfs's appliance; its
 * file systems found, named (vda1, vg/lv) and listed
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <guestfs.h>

#include "vmrp-error.h"
#include "vmrp-files.h"
#include "vmrp-names.h"
#include "vmrp-run.h"

/* A file system of the disk, as libguestfs's list_filesystems shows it. */
typedef struct {
    char *name;       /* vda1, vg/lv: the guest's names, from the disk's target */
    char *device;     /* /dev/sda1, /dev/vg/lv: the appliance's */
    char *fstype;     /* ext4, xfs, unknown, swap, ... */
} vmrpFilesFS;

struct _vmrpFiles {
    guestfs_h *g;
    char *id;
    char *target;
    GPtrArray *fss;               /* of vmrpFilesFS */
    char *mounted;                /* the name of the file system mounted at /, or NULL */
    GCancellable *cancel;         /* its cancellation stops a transfer (guestfs_user_cancel) */
    gulong cancel_id;
};

static void
filesFSFree(vmrpFilesFS *fs)
{
    if (!fs)
        return;
    g_free(fs->name);
    g_free(fs->device);
    g_free(fs->fstype);
    g_free(fs);
}

void
vmrpFileEntryFree(vmrpFileEntry *entry)
{
    if (!entry)
        return;
    g_free(entry->name);
    g_free(entry->fstype);
    g_free(entry->link);
    g_free(entry);
}

void
vmrpFilesFree(vmrpFiles *files)
{
    if (!files)
        return;
    if (files->cancel) {
        g_cancellable_disconnect(files->cancel, files->cancel_id);
        g_object_unref(files->cancel);
    }
    if (files->g)
        guestfs_close(files->g);
    g_free(files->id);
    g_free(files->target);
    if (files->fss)
        g_ptr_array_free(files->fss, TRUE);
    g_free(files->mounted);
    g_free(files);
}

guestfs_h *
vmrpFilesHandle(vmrpFiles *files)
{
    return files->g;
}

void
vmrpFilesSetError(vmrpFiles *files, GError **error, int code, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *what = NULL;
    g_autofree char *why = NULL;
    const char *last = guestfs_last_error(files->g);

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* libguestfs's messages may span lines (qemu's, the daemon's) */
    why = g_strdup(last ? last : "unknown libguestfs error");
    g_strdelimit(why, "\r\n", ' ');
    g_set_error(error, VMRP_ERROR, code, "%s: %s", what, g_strstrip(why));
}

const char *
vmrpFilesApplianceDir(void)
{
    const char *dir = g_getenv("VMRP_APPLIANCE_DIR");
    return dir && *dir ? dir : VMRP_APPLIANCE_DIR;
}

/* Points supermin at vmrp's kernel (prepare-host.sh) when there is one, and
 * libguestfs at vmrp's appliance cache; what the environment sets wins. */
static bool
filesSetupAppliance(guestfs_h *g, GError **error)
{
    const char *dir = vmrpFilesApplianceDir();
    g_autofree char *kdir = g_build_filename(dir, "kernel", NULL);
    g_autofree char *vfile = g_build_filename(kdir, "version", NULL);
    g_autofree char *version = NULL;
    g_autofree char *cache = g_build_filename(dir, "cache", NULL);

    if (!g_getenv("SUPERMIN_KERNEL") &&
        g_file_get_contents(vfile, &version, NULL, NULL)) {
        g_autofree char *kernel = g_build_filename(kdir, "vmlinuz", NULL);
        g_autofree char *modules = NULL;

        g_strstrip(version);
        modules = g_build_filename(kdir, "modules", version, NULL);
        if (*version && !strchr(version, '/')) {
            g_setenv("SUPERMIN_KERNEL", kernel, TRUE);
            g_setenv("SUPERMIN_MODULES", modules, TRUE);
            g_setenv("SUPERMIN_KERNEL_VERSION", version, TRUE);
        }
    }
    if (!g_getenv("LIBGUESTFS_BACKEND") && guestfs_set_backend(g, "direct") < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "cannot select libguestfs's direct backend: %s", guestfs_last_error(g));
        return false;
    }
    if (!g_getenv("LIBGUESTFS_CACHEDIR")) {
        if (g_mkdir_with_parents(cache, 0700) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot make %s: %s", cache,
                        g_strerror(errno));
            return false;
        }
        if (guestfs_set_cachedir(g, cache) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                        "cannot use %s as libguestfs's cache: %s", cache,
                        guestfs_last_error(g));
            return false;
        }
    }
    return true;
}

/* The guest's name of a device the appliance lists: /dev/sda1 -> vda1 for
 * disk vda, /dev/vg/lv -> vg/lv, /dev/md127 -> md127. */
static char *
filesDeviceName(const char *target, const char *device)
{
    const char *rest;

    if (!g_str_has_prefix(device, "/dev/"))
        return NULL;                 /* btrfsvol:..., ldm: not named here */
    rest = device + strlen("/dev/");
    if (g_str_has_prefix(rest, "sda") && (!rest[3] || g_ascii_isdigit(rest[3])))
        return g_strconcat(target, rest + 3, NULL);
    if (g_str_has_prefix(rest, "mapper/"))
        return NULL;                 /* LVs are listed as /dev/vg/lv as well */
    return g_strdup(rest);
}

static bool
filesLoadFilesystems(vmrpFiles *files, GError **error)
{
    g_auto(GStrv) list = NULL;
    size_t i;

    if (!(list = guestfs_list_filesystems(files->g))) {
        vmrpFilesSetError(files, error, VMRP_ERROR_FAILED,
                          "cannot list the file systems of disk %s", files->target);
        return false;
    }
    files->fss = g_ptr_array_new_with_free_func((GDestroyNotify)filesFSFree);
    for (i = 0; list[i] && list[i + 1]; i += 2) {
        char *name = filesDeviceName(files->target, list[i]);
        vmrpFilesFS *fs;

        if (!name)
            continue;
        fs = g_new0(vmrpFilesFS, 1);
        fs->name = name;
        fs->device = g_strdup(list[i]);
        fs->fstype = g_strdup(list[i + 1]);
        g_ptr_array_add(files->fss, fs);
    }
    return true;
}

/* Fails with a line that says what is wrong when the image chain of the
 * point's disk cannot be opened (a missing or corrupt parent image). */
static bool
filesCheckChain(const char *id, const char *target, const char *image, GError **error)
{
    const char *argv[] = { "qemu-img", "info", "-U", "--backing-chain", "--output=json",
                           image, NULL };
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL;

    if (vmrpRun(argv, &out, &err))
        return true;
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                "restore point %s is damaged: the image chain of disk %s cannot be read: %s",
                id, target, err->message);
    return false;
}

static void
filesCancelled(GCancellable *cancel, gpointer opaque)
{
    (void)cancel;
    guestfs_user_cancel(opaque);    /* thread-safe: ends the transfer under way */
}

vmrpFiles *
vmrpFilesOpen(vmrpRepo *repo, const char *id, const char *target, GCancellable *cancel,
              GError **error)
{
    g_autoptr(vmrpFiles) files = NULL;
    g_autoptr(vmrpPoint) point = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *image = NULL;

    if (!vmrpNameCheckPoint(id, error) || !vmrpNameCheckTarget(target, error))
        return NULL;
    if (!(point = vmrpRepoFindPoint(repo, id, &dir, error)))
        return NULL;
    if (point->state != VMRP_POINT_SUCCEEDED) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "restore point %s is %s, not usable",
                    id, vmrpPointStateToString(point->state));
        return NULL;
    }
    if (!(image = vmrpRepoPointImage(dir, point, target, error)))
        return NULL;
    if (!filesCheckChain(id, target, image, error))
        return NULL;

    files = g_new0(vmrpFiles, 1);
    files->id = g_strdup(id);
    files->target = g_strdup(target);
    if (!(files->g = guestfs_create_flags(GUESTFS_CREATE_NO_CLOSE_ON_EXIT))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "cannot create a libguestfs handle");
        return NULL;
    }
    guestfs_set_error_handler(files->g, NULL, NULL);   /* errors go to GError only */
    if (!filesSetupAppliance(files->g, error))
        return NULL;
    if (guestfs_add_drive_opts(files->g, image,
                               GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
                               GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2",
                               -1) < 0) {
        vmrpFilesSetError(files, error, VMRP_ERROR_FAILED, "cannot add disk %s of point %s",
                          target, id);
        return NULL;
    }
    if (guestfs_launch(files->g) < 0) {
        vmrpFilesSetError(files, error, VMRP_ERROR_FAILED,
                          "cannot start the libguestfs appliance (run vm-images/"
                          "prepare-host.sh; LIBGUESTFS_DEBUG=1 shows why)");
        return NULL;
    }
    if (cancel) {
        if (g_cancellable_set_error_if_cancelled(cancel, error))
            return NULL;
        files->cancel = g_object_ref(cancel);
        files->cancel_id = g_cancellable_connect(cancel, G_CALLBACK(filesCancelled),
                                                 files->g, NULL);
    }
    if (!filesLoadFilesystems(files, error))
        return NULL;
    return g_steal_pointer(&files);
}

static bool
filesUsable(const vmrpFilesFS *fs)
{
    return !g_str_equal(fs->fstype, "unknown") && !g_str_equal(fs->fstype, "swap");
}

static char *
filesNames(vmrpFiles *files, bool usable_only)
{
    GString *s = g_string_new(NULL);
    guint i;

    for (i = 0; i < files->fss->len; i++) {
        vmrpFilesFS *fs = g_ptr_array_index(files->fss, i);

        if (usable_only && !filesUsable(fs))
            continue;
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", fs->name);
    }
    return g_string_free(s, FALSE);
}

/* The file system to read for a path without "FS:": the one on the whole
 * disk, or the only one; NULL (no error) when there are several. */
static vmrpFilesFS *
filesDefaultFS(vmrpFiles *files, GError **error)
{
    vmrpFilesFS *only = NULL;
    guint i, n = 0;

    for (i = 0; i < files->fss->len; i++) {
        vmrpFilesFS *fs = g_ptr_array_index(files->fss, i);

        if (!filesUsable(fs))
            continue;
        if (g_str_equal(fs->name, files->target))
            return fs;
        only = fs;
        n++;
    }
    if (n == 1)
        return only;
    if (n == 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "disk %s of restore point %s holds no file system", files->target,
                    files->id);
    }
    return NULL;
}

static bool
filesMount(vmrpFiles *files, vmrpFilesFS *fs, GError **error)
{
    if (files->mounted && g_str_equal(files->mounted, fs->name))
        return true;
    if (files->mounted) {
        if (guestfs_umount_all(files->g) < 0) {
            vmrpFilesSetError(files, error, VMRP_ERROR_FAILED, "cannot unmount %s",
                              files->mounted);
            return false;
        }
        g_clear_pointer(&files->mounted, g_free);
    }
    if (!filesUsable(fs)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s of restore point %s holds no file system: %s", fs->name, files->id,
                    fs->fstype);
        return false;
    }
    if (guestfs_mount_ro(files->g, fs->device, "/") < 0) {
        vmrpFilesSetError(files, error, VMRP_ERROR_INVALID,
                          "unsupported file system %s on %s of restore point %s", fs->fstype,
                          fs->name, files->id);
        return false;
    }
    files->mounted = g_strdup(fs->name);
    return true;
}

/* "/a//b/" -> "/a/b"; NULL for a relative path or one with "." or "..". */
static char *
filesNormalize(const char *path)
{
    g_auto(GStrv) parts = NULL;
    GString *s;
    size_t i;

    if (path[0] != '/')
        return NULL;
    parts = g_strsplit(path, "/", -1);
    s = g_string_new(NULL);
    for (i = 0; parts[i]; i++) {
        if (!*parts[i])
            continue;
        if (g_str_equal(parts[i], ".") || g_str_equal(parts[i], "..")) {
            g_string_free(s, TRUE);
            return NULL;
        }
        g_string_append_printf(s, "/%s", parts[i]);
    }
    if (!s->len)
        g_string_append_c(s, '/');
    return g_string_free(s, FALSE);
}

char *
vmrpFilesResolve(vmrpFiles *files, const char *path, char **ret_fs, GError **error)
{
    g_autofree char *fsname = NULL;
    g_autofree char *inner = NULL;
    g_autofree char *escaped = g_strescape(path, NULL);
    vmrpFilesFS *fs = NULL;
    guint i;

    if (path[0] != '/') {
        const char *colon = strchr(path, ':');

        if (!colon || colon == path) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "'%s': give /PATH or FS:/PATH (as vda1:/etc)", escaped);
            return NULL;
        }
        fsname = g_strndup(path, colon - path);
        path = colon + 1;
    }
    if (!(inner = filesNormalize(path))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "'%s': the path must be absolute, without '.' or '..'", escaped);
        return NULL;
    }
    if (fsname) {
        for (i = 0; i < files->fss->len && !fs; i++) {
            vmrpFilesFS *cur = g_ptr_array_index(files->fss, i);

            if (g_str_equal(cur->name, fsname))
                fs = cur;
        }
        if (!fs) {
            g_autofree char *names = filesNames(files, false);
            g_autofree char *esc = g_strescape(fsname, NULL);

            g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                        "disk %s of restore point %s has no file system %s (it has: %s)",
                        files->target, files->id, esc, *names ? names : "none");
            return NULL;
        }
    } else {
        g_autoptr(GError) err = NULL;

        if (!(fs = filesDefaultFS(files, &err))) {
            g_autofree char *names = filesNames(files, true);

            if (err) {
                g_propagate_error(error, g_steal_pointer(&err));
                return NULL;
            }
            if (g_str_equal(inner, "/")) {
                if (ret_fs)
                    *ret_fs = NULL;
                return g_steal_pointer(&inner);   /* the list of file systems */
            }
            g_autofree char *first = g_strndup(names, strcspn(names, ","));

            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "disk %s holds several file systems (%s): name one, as %s:%s",
                        files->target, names, first, inner);
            return NULL;
        }
    }
    if (!filesMount(files, fs, error))
        return NULL;
    if (ret_fs)
        *ret_fs = g_strdup(fs->name);
    return g_steal_pointer(&inner);
}

static vmrpFileType
filesModeType(int64_t mode)
{
    if (S_ISREG(mode))
        return VMRP_FILE_REGULAR;
    if (S_ISDIR(mode))
        return VMRP_FILE_DIRECTORY;
    if (S_ISLNK(mode))
        return VMRP_FILE_SYMLINK;
    return VMRP_FILE_OTHER;
}

/* Appends the entries of @names in the guest folder @dir to @ret_entries. */
bool
vmrpFilesStat(vmrpFiles *files, const char *dir, char **names, GPtrArray *ret_entries,
              GError **error)
{
    g_autofree char *escaped = g_strescape(dir, NULL);
    struct guestfs_statns_list *st;
    g_auto(GStrv) links = NULL;
    g_autoptr(GPtrArray) lnames = g_ptr_array_new();
    guint i, l = 0;

    if (!names[0])
        return true;
    if (!(st = guestfs_lstatnslist(files->g, dir, names))) {
        vmrpFilesSetError(files, error, VMRP_ERROR_FAILED, "cannot read the folder %s", escaped);
        return false;
    }
    for (i = 0; i < st->len; i++) {
        if (S_ISLNK(st->val[i].st_mode))
            g_ptr_array_add(lnames, names[i]);
    }
    g_ptr_array_add(lnames, NULL);
    if (lnames->len > 1 &&
        !(links = guestfs_readlinklist(files->g, dir, (char **)lnames->pdata))) {
        vmrpFilesSetError(files, error, VMRP_ERROR_FAILED, "cannot read the links in %s",
                          escaped);
        guestfs_free_statns_list(st);
        return false;
    }
    for (i = 0; i < st->len && names[i]; i++) {
        vmrpFileEntry *e = g_new0(vmrpFileEntry, 1);
        struct guestfs_statns *s = &st->val[i];

        e->name = g_strdup(names[i]);
        e->type = filesModeType(s->st_mode);
        e->mode = s->st_ino == -1 ? 0 : s->st_mode;     /* -1: no such name */
        e->uid = s->st_uid;
        e->gid = s->st_gid;
        e->size = s->st_size;
        e->mtime = s->st_mtime_sec;
        e->mtime_ns = s->st_mtime_nsec;
        e->atime = s->st_atime_sec;
        e->atime_ns = s->st_atime_nsec;
        if (e->type == VMRP_FILE_SYMLINK && links && links[l])
            e->link = g_strdup(links[l++]);
        g_ptr_array_add(ret_entries, e);
    }
    guestfs_free_statns_list(st);
    return true;
}

/* The names in the guest folder @dir, "." and ".." left out.  readdir, not
 * ls: ls refuses a name with '/' that a damaged or hostile file system may
 * carry, and the caller must see it to refuse it by name. */
char **
vmrpFilesReadDir(vmrpFiles *files, const char *dir, GError **error)
{
    g_autofree char *escaped = g_strescape(dir, NULL);
    struct guestfs_dirent_list *list;
    GPtrArray *names = g_ptr_array_new();
    guint i;

    if (!(list = guestfs_readdir(files->g, dir))) {
        vmrpFilesSetError(files, error, VMRP_ERROR_FAILED, "cannot list %s", escaped);
        g_ptr_array_free(names, TRUE);
        return NULL;
    }
    for (i = 0; i < list->len; i++) {
        const char *name = list->val[i].name;

        if (!g_str_equal(name, ".") && !g_str_equal(name, ".."))
            g_ptr_array_add(names, g_strdup(name));
    }
    guestfs_free_dirent_list(list);
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(names, FALSE);
}

static gint
filesCompare(gconstpointer a, gconstpointer b)
{
    const vmrpFileEntry *x = *(vmrpFileEntry *const *)a;
    const vmrpFileEntry *y = *(vmrpFileEntry *const *)b;

    return strcmp(x->name, y->name);
}

vmrpFileEntry *
vmrpFilesLookup(vmrpFiles *files, const char *path, char **ret_fs, char **ret_inner,
                GError **error)
{
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)vmrpFileEntryFree);
    g_autofree char *fsname = NULL;
    g_autofree char *inner = NULL;
    g_autofree char *escaped = g_strescape(path, NULL);
    g_autofree char *dir = NULL;
    g_autofree char *base = NULL;
    char *one[] = { NULL, NULL };

    if (!(inner = vmrpFilesResolve(files, path, &fsname, error)))
        return NULL;
    if (!fsname) {
        *ret_fs = NULL;
        *ret_inner = g_steal_pointer(&inner);
        return NULL;
    }
    dir = g_str_equal(inner, "/") ? g_strdup("/") : g_path_get_dirname(inner);
    base = g_str_equal(inner, "/") ? g_strdup(".") : g_path_get_basename(inner);
    one[0] = base;
    if (!vmrpFilesStat(files, dir, one, entries, error))
        return NULL;
    /* lstatnslist reports a missing name with st_ino -1 (mode 0 here) */
    if (!entries->len || ((vmrpFileEntry *)g_ptr_array_index(entries, 0))->mode == 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "no such file or folder in restore point %s: %s", files->id, escaped);
        return NULL;
    }
    *ret_fs = g_steal_pointer(&fsname);
    *ret_inner = g_steal_pointer(&inner);
    return g_ptr_array_steal_index(entries, 0);
}

GPtrArray *
vmrpFilesList(vmrpFiles *files, const char *path, char **ret_fs, GError **error)
{
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)vmrpFileEntryFree);
    g_autoptr(GError) err = NULL;
    g_autofree char *fsname = NULL;
    g_autofree char *inner = NULL;
    g_auto(GStrv) names = NULL;
    vmrpFileEntry *e;
    guint i;

    if (!(e = vmrpFilesLookup(files, path, &fsname, &inner, &err)) && err) {
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
    if (!e) {
        for (i = 0; i < files->fss->len; i++) {
            vmrpFilesFS *fs = g_ptr_array_index(files->fss, i);
            vmrpFileEntry *f = g_new0(vmrpFileEntry, 1);

            f->name = g_strdup(fs->name);
            f->type = VMRP_FILE_FILESYSTEM;
            f->fstype = g_strdup(fs->fstype);
            g_ptr_array_add(entries, f);
        }
        if (ret_fs)
            *ret_fs = NULL;
        return g_steal_pointer(&entries);
    }
    if (e->type != VMRP_FILE_DIRECTORY) {
        g_ptr_array_add(entries, e);
        if (ret_fs)
            *ret_fs = g_steal_pointer(&fsname);
        return g_steal_pointer(&entries);
    }
    vmrpFileEntryFree(e);
    if (!(names = vmrpFilesReadDir(files, inner, error)))
        return NULL;
    if (!vmrpFilesStat(files, inner, names, entries, error))
        return NULL;
    g_ptr_array_sort(entries, filesCompare);
    if (ret_fs)
        *ret_fs = g_steal_pointer(&fsname);
    return g_steal_pointer(&entries);
}
