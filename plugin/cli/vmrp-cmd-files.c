/*
 * vmrp-cmd-files.c: the file-level commands: file-list, file-restore
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "vmrp-cli.h"
#include "vmrp-error.h"
#include "vmrp-files.h"

static vmrpFiles *
filesOpen(vmrpCLI *cli, const char *id, const char *target, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;

    if (!(repo = vmrpCLIOpenRepo(cli, false, error)))
        return NULL;
    if (cli->tty)
        fprintf(stderr, "Starting the file reader (libguestfs appliance)...\n");
    return vmrpFilesOpen(repo, id, target, cli->cancel, error);
}

static const char *
filesTypeName(vmrpFileType type)
{
    switch (type) {
    case VMRP_FILE_REGULAR: return "file";
    case VMRP_FILE_DIRECTORY: return "directory";
    case VMRP_FILE_SYMLINK: return "symlink";
    case VMRP_FILE_FILESYSTEM: return "filesystem";
    case VMRP_FILE_OTHER:
    default: return "other";
    }
}

/* "drwxr-xr-x", as ls -l shows it */
static void
filesModeString(uint32_t mode, char out[11])
{
    static const char rwx[] = "rwxrwxrwx";
    int i;

    out[0] = S_ISDIR(mode) ? 'd' : S_ISLNK(mode) ? 'l' : S_ISCHR(mode) ? 'c' :
        S_ISBLK(mode) ? 'b' : S_ISFIFO(mode) ? 'p' : S_ISSOCK(mode) ? 's' : '-';
    for (i = 0; i < 9; i++)
        out[i + 1] = mode & (1 << (8 - i)) ? rwx[i] : '-';
    if (mode & S_ISUID)
        out[3] = out[3] == 'x' ? 's' : 'S';
    if (mode & S_ISGID)
        out[6] = out[6] == 'x' ? 's' : 'S';
    if (mode & S_ISVTX)
        out[9] = out[9] == 'x' ? 't' : 'T';
    out[10] = '\0';
}

static json_object *
filesEntryToJSON(const vmrpFileEntry *e)
{
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "name", json_object_new_string(e->name));
    json_object_object_add(obj, "type", json_object_new_string(filesTypeName(e->type)));
    if (e->type == VMRP_FILE_FILESYSTEM) {
        json_object_object_add(obj, "fstype", json_object_new_string(e->fstype));
        return obj;
    }
    json_object_object_add(obj, "mode", json_object_new_int(e->mode & 07777));
    json_object_object_add(obj, "uid", json_object_new_int64(e->uid));
    json_object_object_add(obj, "gid", json_object_new_int64(e->gid));
    json_object_object_add(obj, "size", json_object_new_int64(e->size));
    json_object_object_add(obj, "mtime", json_object_new_int64(e->mtime));
    if (e->link)
        json_object_object_add(obj, "link", json_object_new_string(e->link));
    return obj;
}

static json_object *
filesListToJSON(const char *id, const char *target, const char *path, const char *fs,
                GPtrArray *list)
{
    json_object *obj = json_object_new_object();
    json_object *arr = json_object_new_array();
    guint i;

    json_object_object_add(obj, "point", json_object_new_string(id));
    json_object_object_add(obj, "target", json_object_new_string(target));
    json_object_object_add(obj, "path", json_object_new_string(path));
    json_object_object_add(obj, "filesystem", fs ? json_object_new_string(fs) : NULL);
    for (i = 0; i < list->len; i++)
        json_object_array_add(arr, filesEntryToJSON(g_ptr_array_index(list, i)));
    json_object_object_add(obj, "entries", arr);
    return obj;
}

static void
filesListPrint(GPtrArray *list)
{
    guint i;

    for (i = 0; i < list->len; i++) {
        vmrpFileEntry *e = g_ptr_array_index(list, i);
        g_autofree char *name = g_strescape(e->name, NULL);
        char mode[11];
        char when[32];
        time_t t = e->mtime;
        struct tm tm;

        if (e->type == VMRP_FILE_FILESYSTEM) {
            printf("%s %s\n", name, e->fstype);
            continue;
        }
        filesModeString(e->mode, mode);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
        printf("%s %5" G_GINT64_FORMAT " %5" G_GINT64_FORMAT " %10" G_GINT64_FORMAT " %s %s",
               mode, e->uid, e->gid, e->size, when, name);
        if (e->link) {
            g_autofree char *link = g_strescape(e->link, NULL);
            printf(" -> %s", link);
        }
        printf("\n");
    }
}

bool
vmrpCmdFileList(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    GOptionEntry entries[] = { { NULL } };
    g_autoptr(vmrpFiles) files = NULL;
    json_object *arr = NULL;
    int i;

    if (!vmrpCLIParse("file-list", "POINT TARGET PATH...",
                      "List folders (or files) of a disk restore point: PATH is /PATH for a "
                      "file system on the whole disk, FS:/PATH (vda1:/etc, vg/lv:/) otherwise; "
                      "/ on a partitioned disk lists its file systems.  Several PATHs share "
                      "one start of the file reader.",
                      entries, &argc, &argv, 3, G_MAXINT, error))
        return false;
    if (!(files = filesOpen(cli, argv[1], argv[2], error)))
        return false;
    if (cli->json && argc > 4)
        arr = json_object_new_array();
    for (i = 3; i < argc; i++) {
        g_autoptr(GPtrArray) list = NULL;
        g_autofree char *fs = NULL;

        if (g_cancellable_set_error_if_cancelled(cli->cancel, error) ||
            !(list = vmrpFilesList(files, argv[i], &fs, error))) {
            json_object_put(arr);
            return false;
        }
        if (cli->json) {
            json_object *obj = filesListToJSON(argv[1], argv[2], argv[i], fs, list);

            if (arr)
                json_object_array_add(arr, obj);
            else
                vmrpCLIPrintJSON(obj);
            continue;
        }
        if (argc > 4)
            printf("%s%s:\n", i > 3 ? "\n" : "", argv[i]);
        filesListPrint(list);
    }
    if (arr)
        vmrpCLIPrintJSON(arr);
    return true;
}

typedef struct {
    vmrpCLIProgress progress;
    int last;
} filesProgress;

static void
filesRestoreProgress(void *opaque, uint64_t done, uint64_t total)
{
    filesProgress *p = opaque;
    int percent = total ? (int)(done * 100 / total) : 100;

    if (percent == p->last)
        return;
    p->last = percent;
    vmrpCLIProgressShow(&p->progress, "files", done, total);
}

static json_object *
filesRestoreToJSON(const char *id, const char *target, const char *path,
                   const vmrpFilesRestoreResult *res)
{
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "point", json_object_new_string(id));
    json_object_object_add(obj, "target", json_object_new_string(target));
    json_object_object_add(obj, "path", json_object_new_string(path));
    json_object_object_add(obj, "output", json_object_new_string(res->dest));
    json_object_object_add(obj, "files", json_object_new_int64(res->files));
    json_object_object_add(obj, "folders", json_object_new_int64(res->dirs));
    json_object_object_add(obj, "symlinks", json_object_new_int64(res->symlinks));
    json_object_object_add(obj, "skipped", json_object_new_int64(res->skipped));
    json_object_object_add(obj, "bytes", json_object_new_int64(res->bytes));
    return obj;
}

/* Before the (slow) start of the file reader: each PATH's name is free in
 * @output and no two PATHs restore to the same name.  A file system's root
 * ("/", "vda1:/") is named after the file system, known only later. */
static bool
filesRestorePrecheck(const char *output, int npaths, char **paths, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int i;

    for (i = 0; i < npaths; i++) {
        const char *inner = paths[i][0] == '/' ? paths[i] : strchr(paths[i], ':');
        g_autofree char *base = NULL;
        g_autofree char *dest = NULL;

        if (!inner)
            continue;                         /* vmrpFilesResolve says what is wrong */
        if (*inner == ':')
            inner++;
        base = g_path_get_basename(inner);
        if (g_str_equal(base, "/") || g_str_equal(base, ".") || g_str_equal(base, ".."))
            continue;
        dest = g_build_filename(output, base, NULL);
        if (g_file_test(dest, G_FILE_TEST_EXISTS) || g_file_test(dest, G_FILE_TEST_IS_SYMLINK)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                        "%s already exists: choose another --output", dest);
            return false;
        }
        if (!g_hash_table_add(seen, g_steal_pointer(&base))) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "two PATHs would both restore to %s", dest);
            return false;
        }
    }
    return true;
}

bool
vmrpCmdFileRestore(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autofree char *output = NULL;
    GOptionEntry entries[] = {
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
          "an existing folder to restore into (as DIR/NAME, which must not exist)", "DIR" },
        { NULL }
    };
    g_autoptr(vmrpFiles) files = NULL;
    filesProgress progress = { { cli, -1, NULL }, -1 };
    vmrpFilesRestoreOptions opts = { NULL, &progress, cli->cancel };
    json_object *arr = NULL;
    bool ok = true;
    int i;

    if (!vmrpCLIParse("file-restore", "POINT TARGET PATH... --output DIR",
                      "Restore files or folders (recursively, with modes, owners and times) "
                      "of a disk restore point into DIR; PATH as for file-list.",
                      entries, &argc, &argv, 3, G_MAXINT, error))
        return false;
    if (!output) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "--output DIR is required");
        return false;
    }
    if (!g_file_test(output, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "--output %s: no such folder", output);
        return false;
    }
    if (!filesRestorePrecheck(output, argc - 3, argv + 3, error))
        return false;
    if (cli->tty)
        opts.progress = filesRestoreProgress;
    if (!(files = filesOpen(cli, argv[1], argv[2], error)))
        return false;
    if (cli->json && argc > 4)
        arr = json_object_new_array();
    for (i = 3; ok && i < argc; i++) {
        vmrpFilesRestoreResult res = { 0 };

        progress.last = -1;
        if (!(ok = vmrpFilesRestore(files, argv[i], output, &opts, &res, error)))
            break;
        if (cli->json) {
            json_object *obj = filesRestoreToJSON(argv[1], argv[2], argv[i], &res);

            if (arr)
                json_object_array_add(arr, obj);
            else
                vmrpCLIPrintJSON(obj);
        } else {
            g_autofree char *bytes = vmrpCLIHumanBytes(res.bytes);

            printf("Restored %s of restore point %s into %s: %" G_GUINT64_FORMAT " files, %"
                   G_GUINT64_FORMAT " folders, %" G_GUINT64_FORMAT " links, %s\n",
                   argv[i], argv[1], res.dest, res.files, res.dirs, res.symlinks, bytes);
            if (res.skipped)
                printf("  %" G_GUINT64_FORMAT " devices, fifos or sockets not restored\n",
                       res.skipped);
        }
        vmrpFilesRestoreResultClear(&res);
    }
    g_free(progress.progress.last_target);
    if (!ok) {
        json_object_put(arr);
        return false;
    }
    if (arr)
        vmrpCLIPrintJSON(arr);
    return true;
}
