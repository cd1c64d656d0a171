/*
 * vmrp-instant.c: domains that run on repository images (instant restore)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmrp-instant.h"
#include "vmrp-acl.h"
#include "vmrp-disk.h"
#include "vmrp-domxml.h"
#include "vmrp-error.h"
#include "vmrp-json.h"
#include "vmrp-file.h"
#include "vmrp-names.h"
#include "vmrp-run.h"

#define INSTANT_FORMAT 1
#define RECORD_MAX (1024 * 1024)
#define PULL_POLL_US (G_USEC_PER_SEC / 5)

typedef struct {
    char *target;
    char *overlay;
    char *image;        /* the point's image, the overlay's backing file */
    bool created;
} instantDisk;

struct _vmrpInstant {
    vmrpRepo *repo;
    char *id;
    char *point_dir;
    vmrpPoint *point;
    GPtrArray *points;      /* of char *: the point and those it depends on */
    GPtrArray *dirs;        /* of char *: folders QEMU passes through (x) */
    GPtrArray *files;       /* of char *: images QEMU reads (r) */
    GArray *disks;          /* of instantDisk */
};

static void
instantDiskClear(instantDisk *d)
{
    g_free(d->target);
    g_free(d->overlay);
    g_free(d->image);
}

void
vmrpInstantFree(vmrpInstant *inst)
{
    if (!inst)
        return;
    g_free(inst->id);
    g_free(inst->point_dir);
    vmrpPointFree(inst->point);
    g_clear_pointer(&inst->points, g_ptr_array_unref);
    g_clear_pointer(&inst->dirs, g_ptr_array_unref);
    g_clear_pointer(&inst->files, g_ptr_array_unref);
    g_clear_pointer(&inst->disks, g_array_unref);
    g_free(inst);
}

/* The user QEMU runs as: Debian's libvirt-qemu, other distributions' qemu. */
static bool
instantQemuUser(uid_t *ret_uid, gid_t *ret_gid, GError **error)
{
    static const char *const names[] = { "libvirt-qemu", "qemu" };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(names); i++) {
        struct passwd *pw = getpwnam(names[i]);
        if (pw) {
            *ret_uid = pw->pw_uid;
            if (ret_gid)
                *ret_gid = pw->pw_gid;
            return true;
        }
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                "no QEMU user (libvirt-qemu or qemu) on this host");
    return false;
}

static void
addUnique(GPtrArray *arr, const char *s)
{
    if (!g_ptr_array_find_with_equal_func(arr, s, g_str_equal, NULL))
        g_ptr_array_add(arr, g_strdup(s));
}

static char *
instantDir(vmrpRepo *repo)
{
    return g_build_filename(vmrpRepoGetPath(repo), "instant", NULL);
}

static char *
instantRecordPath(vmrpRepo *repo, const char *uuid)
{
    g_autofree char *name = g_strdup_printf("%s.json", uuid);
    return g_build_filename(vmrpRepoGetPath(repo), "instant", name, NULL);
}

vmrpInstant *
vmrpInstantNew(vmrpRepo *repo, const char *id, const char *point_dir, GError **error)
{
    g_autoptr(vmrpInstant) inst = g_new0(vmrpInstant, 1);
    g_autofree char *collections = NULL;
    g_autofree char *collection = NULL;
    g_autofree char *points = NULL;

    inst->repo = repo;
    inst->id = g_strdup(id);
    inst->point_dir = g_strdup(point_dir);
    inst->points = g_ptr_array_new_with_free_func(g_free);
    inst->dirs = g_ptr_array_new_with_free_func(g_free);
    inst->files = g_ptr_array_new_with_free_func(g_free);
    inst->disks = g_array_new(FALSE, TRUE, sizeof(instantDisk));
    g_array_set_clear_func(inst->disks, (GDestroyNotify)instantDiskClear);
    if (!(inst->point = vmrpRepoLoadPoint(point_dir, id, error)))
        return NULL;

    collections = g_build_filename(vmrpRepoGetPath(repo), "collections", NULL);
    collection = g_build_filename(collections, inst->point->domain_uuid, NULL);
    points = g_build_filename(collection, "points", NULL);
    addUnique(inst->dirs, vmrpRepoGetPath(repo));
    addUnique(inst->dirs, collections);
    addUnique(inst->dirs, collection);
    addUnique(inst->dirs, points);
    addUnique(inst->dirs, point_dir);
    addUnique(inst->points, id);
    return g_steal_pointer(&inst);
}

/* Adds the image of @target in the point and every image below it. */
static bool
instantAddChain(vmrpInstant *inst, const char *target, char **ret_image, GError **error)
{
    g_autofree char *points = g_path_get_dirname(inst->point_dir);
    g_autofree char *dir = g_strdup(inst->point_dir);
    g_autofree char *id = g_strdup(inst->id);
    g_autoptr(vmrpPoint) cur = NULL;
    unsigned int depth;

    for (depth = 0; depth < 10000; depth++) {
        vmrpPoint *point = cur ? cur : inst->point;
        vmrpPointDisk *pdisk = vmrpPointFindDisk(point, target);
        g_autofree char *image = NULL;
        g_autofree char *parent = NULL;

        if (!(image = vmrpRepoPointImage(dir, point, target, error)))
            return false;
        addUnique(inst->dirs, dir);
        addUnique(inst->files, image);
        addUnique(inst->points, id);
        if (depth == 0)
            *ret_image = g_strdup(image);
        if (!pdisk->backing)
            return true;
        if (!(parent = vmrpPointDiskBackingPoint(pdisk))) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "restore point %s: bad backing image of disk %s", id, target);
            return false;
        }
        g_free(dir);
        dir = g_build_filename(points, parent, NULL);
        g_free(id);
        id = g_steal_pointer(&parent);
        g_clear_pointer(&cur, vmrpPointFree);
        if (!(cur = vmrpRepoLoadPoint(dir, id, error))) {
            g_prefix_error(error, "the parent of restore point %s: ", inst->id);
            return false;
        }
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                "restore point %s: its chain of increments does not end", inst->id);
    return false;
}

/* Makes the empty file @path (O_EXCL, no link followed); @ret_made is it. */
static bool
instantCreateExclusive(const char *path, struct stat *ret_made, GError **error)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0 || fstat(fd, ret_made) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot create %s: %s",
                    path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    close(fd);
    return true;
}

/* Gives @path, which must still be the file @made, to the QEMU user, 0600. */
static bool
instantHandOver(const char *path, const struct stat *made, uid_t uid, gid_t gid,
                GError **error)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    struct stat sb;
    bool ok;

    ok = fd >= 0 && fstat(fd, &sb) == 0;
    if (ok && (sb.st_dev != made->st_dev || sb.st_ino != made->st_ino)) {
        errno = EEXIST;
        ok = false;
    }
    ok = ok && fchown(fd, uid, gid) == 0 && fchmod(fd, 0600) == 0;
    if (!ok)
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot hand %s to the QEMU user: %s",
                    path, errno == EEXIST ? "it was replaced while vmrp made it"
                                          : g_strerror(errno));
    if (fd >= 0)
        close(fd);
    return ok;
}

bool
vmrpInstantAddDisk(vmrpInstant *inst, const char *target, const char *overlay,
                   GError **error)
{
    instantDisk d = { 0 };
    instantDisk *dp;
    struct stat made;
    uid_t uid;
    gid_t gid;

    if (!instantQemuUser(&uid, &gid, error))
        return false;
    if (g_file_test(overlay, G_FILE_TEST_EXISTS) || g_file_test(overlay, G_FILE_TEST_IS_SYMLINK)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "cannot restore disk %s: %s already exists", target, overlay);
        return false;
    }
    d.target = g_strdup(target);
    d.overlay = g_strdup(overlay);
    if (!instantAddChain(inst, target, &d.image, error)) {
        instantDiskClear(&d);
        return false;
    }
    g_array_append_val(inst->disks, d);
    dp = &g_array_index(inst->disks, instantDisk, inst->disks->len - 1);

    const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                           "-b", dp->image, dp->overlay, NULL };
    /* made here, never through a link; handed over on the opened file that
     * is still the one made */
    if (!instantCreateExclusive(overlay, &made, error))
        return false;
    dp->created = true;
    if (!vmrpRun(argv, NULL, error)) {
        g_prefix_error(error, "cannot make the overlay of disk %s: ", target);
        return false;
    }
    /* libvirt leaves the chain's labels alone (relabel='no'): the overlay is
     * QEMU's from the start */
    return instantHandOver(overlay, &made, uid, gid, error);
}

void
vmrpInstantRemoveOverlays(vmrpInstant *inst)
{
    guint i;

    for (i = 0; inst && i < inst->disks->len; i++) {
        instantDisk *d = &g_array_index(inst->disks, instantDisk, i);
        if (d->created)
            unlink(d->overlay);
        d->created = false;
    }
}

/* Whether @path (from a record) is a file inside the repository, without
 * a ".." that could climb out of it. */
static bool
instantInRepo(vmrpRepo *repo, const char *path)
{
    g_autofree char *prefix = g_strconcat(vmrpRepoGetPath(repo), "/", NULL);
    g_auto(GStrv) parts = NULL;
    guint i;

    if (!g_str_has_prefix(path, prefix))
        return false;
    parts = g_strsplit(path + strlen(prefix), "/", -1);
    for (i = 0; parts[i]; i++) {
        if (g_str_equal(parts[i], "..") || g_str_equal(parts[i], "."))
            return false;
    }
    return true;
}

/* A path inside the repository as a record stores it: relative to the
 * repository ("." for itself), so that a moved repository still finds it. */
static char *
instantRepoRelative(vmrpRepo *repo, const char *path)
{
    const char *root = vmrpRepoGetPath(repo);
    size_t n = strlen(root);

    if (g_str_equal(path, root))
        return g_strdup(".");
    if (strncmp(path, root, n) == 0 && path[n] == '/')
        return g_strdup(path + n + 1);
    return g_strdup(path);
}

/* The path a record stores (relative, or absolute as older records have it),
 * or NULL when it is not inside the repository. */
static char *
instantRepoAbsolute(vmrpRepo *repo, const char *stored)
{
    g_autofree char *path = NULL;

    if (g_str_equal(stored, "."))
        return g_strdup(vmrpRepoGetPath(repo));
    path = g_path_is_absolute(stored) ? g_strdup(stored)
                                      : g_build_filename(vmrpRepoGetPath(repo), stored, NULL);
    if (!g_str_equal(path, vmrpRepoGetPath(repo)) && !instantInRepo(repo, path))
        return NULL;
    return g_steal_pointer(&path);
}

/* The paths of @arr, relative to the repository. */
static json_object *
strArrayRelative(vmrpRepo *repo, GPtrArray *arr)
{
    json_object *a = json_object_new_array();
    guint i;

    for (i = 0; i < arr->len; i++) {
        g_autofree char *rel = instantRepoRelative(repo, g_ptr_array_index(arr, i));
        json_object_array_add(a, json_object_new_string(rel));
    }
    return a;
}

static json_object *
strArray(GPtrArray *arr)
{
    json_object *a = json_object_new_array();
    guint i;

    for (i = 0; i < arr->len; i++)
        json_object_array_add(a, json_object_new_string(g_ptr_array_index(arr, i)));
    return a;
}

/* Reads a record; NULL with @error when it is not one. */
static json_object *
instantReadRecord(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    json_object *obj;
    json_object *fmt;

    if (!(text = vmrpFileRead(path, RECORD_MAX, NULL, error)))
        return NULL;
    /* which points a damaged record holds is unknown: deletes and prunes
     * are refused (with this line) until a person repairs or removes it */
    if (!(obj = vmrpJSONParseObject(text, error))) {
        g_prefix_error(error, "instant-restore record %s is damaged: ", path);
        return NULL;
    }
    if (!json_object_object_get_ex(obj, "format", &fmt) ||
        json_object_get_int(fmt) != INSTANT_FORMAT) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "instant-restore record %s is damaged: missing field 'format' or not %d",
                    path, INSTANT_FORMAT);
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

static GPtrArray *
recordStrings(json_object *rec, const char *key)
{
    GPtrArray *ret = g_ptr_array_new_with_free_func(g_free);
    json_object *arr;
    size_t i;

    if (!json_object_object_get_ex(rec, key, &arr) || !json_object_is_type(arr, json_type_array))
        return ret;
    for (i = 0; i < json_object_array_length(arr); i++) {
        json_object *s = json_object_array_get_idx(arr, i);
        if (json_object_is_type(s, json_type_string))
            g_ptr_array_add(ret, g_strdup(json_object_get_string(s)));
    }
    return ret;
}

static void
jsonPut(void *obj)
{
    json_object_put(obj);
}

/* Every record of the repository, as (uuid -> json_object). */
static GHashTable *
instantReadAll(vmrpRepo *repo, GError **error)
{
    g_autofree char *dir = instantDir(repo);
    g_autoptr(GHashTable) ret = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                      jsonPut);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) local = NULL;
    const char *ent;

    if (!(d = g_dir_open(dir, 0, &local))) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return g_steal_pointer(&ret);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s", local->message);
        return NULL;
    }
    while ((ent = g_dir_read_name(d))) {
        g_autofree char *uuid = NULL;
        g_autofree char *path = NULL;
        json_object *rec;

        if (!g_str_has_suffix(ent, ".json"))
            continue;
        uuid = g_strndup(ent, strlen(ent) - strlen(".json"));
        if (!g_uuid_string_is_valid(uuid))
            continue;
        path = g_build_filename(dir, ent, NULL);
        if (!(rec = instantReadRecord(path, error)))
            return NULL;
        g_hash_table_insert(ret, g_steal_pointer(&uuid), rec);
    }
    return g_steal_pointer(&ret);
}

/* Removes the QEMU user's entries from the paths of @rec that no record in
 * @others needs. */
static bool
instantRevoke(vmrpRepo *repo, json_object *rec, GHashTable *others, GError **error)
{
    g_autoptr(GHashTable) needed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const char *kinds[] = { "granted_dirs", "granted_files" };
    GHashTableIter iter;
    json_object *other;
    uid_t uid;
    size_t k;
    guint i;

    if (!instantQemuUser(&uid, NULL, error))
        return false;
    g_hash_table_iter_init(&iter, others);
    while (g_hash_table_iter_next(&iter, NULL, (void **)&other)) {
        if (other == rec)
            continue;
        for (k = 0; k < G_N_ELEMENTS(kinds); k++) {
            g_autoptr(GPtrArray) arr = recordStrings(other, kinds[k]);
            for (i = 0; i < arr->len; i++) {
                char *path = instantRepoAbsolute(repo, g_ptr_array_index(arr, i));
                if (path)
                    g_hash_table_add(needed, path);
            }
        }
    }
    for (k = 0; k < G_N_ELEMENTS(kinds); k++) {
        g_autoptr(GPtrArray) arr = recordStrings(rec, kinds[k]);
        for (i = 0; i < arr->len; i++) {
            g_autofree char *path = instantRepoAbsolute(repo, g_ptr_array_index(arr, i));
            /* a path outside the repository was never vmrp's to grant */
            if (path && !g_hash_table_contains(needed, path) &&
                !vmrpAclRevokeUser(path, uid, error))
                return false;
        }
    }
    return true;
}

bool
vmrpInstantCommit(vmrpInstant *inst, const char *uuid, const char *name, GError **error)
{
    g_autofree char *dir = instantDir(inst->repo);
    g_autofree char *path = instantRecordPath(inst->repo, uuid);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *created = g_date_time_format_iso8601(now);
    g_autofree char *text = NULL;
    json_object *rec = json_object_new_object();
    json_object *disks = json_object_new_array();
    uid_t uid;
    guint i;

    if (!instantQemuUser(&uid, NULL, error)) {
        json_object_put(rec);
        json_object_put(disks);
        return false;
    }
    json_object_object_add(rec, "format", json_object_new_int(INSTANT_FORMAT));
    json_object_object_add(rec, "domain_uuid", json_object_new_string(uuid));
    json_object_object_add(rec, "domain_name", json_object_new_string(name));
    json_object_object_add(rec, "point", json_object_new_string(inst->id));
    json_object_object_add(rec, "collection", json_object_new_string(inst->point->domain_uuid));
    json_object_object_add(rec, "created", json_object_new_string(created));
    json_object_object_add(rec, "points", strArray(inst->points));
    for (i = 0; i < inst->disks->len; i++) {
        instantDisk *d = &g_array_index(inst->disks, instantDisk, i);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "target", json_object_new_string(d->target));
        json_object_object_add(o, "overlay", json_object_new_string(d->overlay));
        g_autofree char *image = instantRepoRelative(inst->repo, d->image);
        json_object_object_add(o, "image", json_object_new_string(image));
        json_object_array_add(disks, o);
    }
    json_object_object_add(rec, "disks", disks);
    json_object_object_add(rec, "granted_dirs", strArrayRelative(inst->repo, inst->dirs));
    json_object_object_add(rec, "granted_files", strArrayRelative(inst->repo, inst->files));
    text = g_strdup_printf("%s\n", json_object_to_json_string_ext(rec,
                           JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
    json_object_put(rec);

    /* the record first: a crash in between leaves a use that --finalize ends */
    if (!vmrpFileMakeDir(dir, 0700, true, error) ||
        !vmrpFileWriteAtomic(path, text, strlen(text), 0600, error))
        return false;
    for (i = 0; i < inst->dirs->len; i++) {
        const char *d = g_ptr_array_index(inst->dirs, i);
        if (!vmrpAclGrantUser(d, uid, vmrpAclGetUser(d, uid) | VMRP_ACL_EXECUTE, error))
            goto undo;
    }
    for (i = 0; i < inst->files->len; i++) {
        const char *f = g_ptr_array_index(inst->files, i);
        if (!vmrpAclGrantUser(f, uid, VMRP_ACL_READ, error))
            goto undo;
    }
    return true;

 undo:
    vmrpInstantRelease(inst->repo, uuid, NULL);
    return false;
}

bool
vmrpInstantRelease(vmrpRepo *repo, const char *uuid, GError **error)
{
    g_autofree char *path = instantRecordPath(repo, uuid);
    g_autoptr(GHashTable) all = NULL;
    json_object *rec;

    if (!(all = instantReadAll(repo, error)))
        return false;
    if (!(rec = g_hash_table_lookup(all, uuid)))
        return true;
    if (!instantRevoke(repo, rec, all, error))
        return false;
    if (unlink(path) < 0 && errno != ENOENT) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot remove %s: %s",
                    path, g_strerror(errno));
        return false;
    }
    return true;
}

int
vmrpInstantPointInUse(vmrpRepo *repo, const char *id, char **ret_user, GError **error)
{
    g_autoptr(GHashTable) all = NULL;
    GHashTableIter iter;
    const char *uuid;
    json_object *rec;

    if (!(all = instantReadAll(repo, error)))
        return -1;
    g_hash_table_iter_init(&iter, all);
    while (g_hash_table_iter_next(&iter, (void **)&uuid, (void **)&rec)) {
        g_autoptr(GPtrArray) points = recordStrings(rec, "points");

        if (g_ptr_array_find_with_equal_func(points, id, g_str_equal, NULL)) {
            if (ret_user)
                *ret_user = g_strdup_printf("domain %s (%s)",
                                            vmrpJSONGetString(rec, "domain_name") ?: "?", uuid);
            return 1;
        }
    }
    return 0;
}

GStrv
vmrpInstantListDomains(vmrpRepo *repo, GError **error)
{
    g_autoptr(GHashTable) all = NULL;
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    GHashTableIter iter;
    const char *uuid;

    if (!(all = instantReadAll(repo, error)))
        return NULL;
    g_hash_table_iter_init(&iter, all);
    while (g_hash_table_iter_next(&iter, (void **)&uuid, NULL))
        g_strv_builder_add(b, uuid);
    return g_strv_builder_end(b);
}

char *
vmrpInstantGetCollection(vmrpRepo *repo, const char *uuid)
{
    g_autofree char *path = instantRecordPath(repo, uuid);
    json_object *rec;
    char *ret;

    if (!(rec = instantReadRecord(path, NULL)))
        return NULL;
    ret = g_strdup(vmrpJSONGetString(rec, "collection"));
    json_object_put(rec);
    /* it becomes a lock path: a uuid or nothing */
    if (ret && !g_uuid_string_is_valid(ret))
        g_clear_pointer(&ret, g_free);
    return ret;
}

/* Whether @overlay still names a backing file. */
static bool
instantHasBacking(const char *overlay, bool *ret_backing, GError **error)
{
    const char *argv[] = { "qemu-img", "info", "-U", "-f", "qcow2", "--output=json",
                           overlay, NULL };
    g_autofree char *out = NULL;
    json_object *obj;

    if (!vmrpRun(argv, &out, error))
        return false;
    if (!(obj = json_tokener_parse(out))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "qemu-img info %s: bad output",
                    overlay);
        return false;
    }
    *ret_backing = json_object_object_get_ex(obj, "backing-filename", NULL);
    json_object_put(obj);
    return true;
}

/* Pulls the backing chain of a running domain's disk into its overlay;
 * cancelled, the block job is aborted and the overlay keeps its backing. */
static bool
instantPull(virDomainPtr dom, const char *target, const vmrpDiskCopyOptions *copy,
            GError **error)
{
    virDomainBlockJobInfo info;
    uint64_t end = 0;
    int ret;

    if (virDomainBlockPull(dom, target, 0, 0) < 0) {
        vmrpErrorFromLibvirt(error, "cannot start copying the repository's data");
        g_prefix_error(error, "disk %s: ", target);
        return false;
    }
    while ((ret = virDomainGetBlockJobInfo(dom, target, &info, 0)) == 1) {
        if (g_cancellable_is_cancelled(copy->cancel)) {
            virDomainBlockJobAbort(dom, target, VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC);
            g_cancellable_set_error_if_cancelled(copy->cancel, error);
            return false;
        }
        end = info.end;
        if (copy->progress)
            copy->progress(target, info.cur, info.end, copy->opaque);
        g_usleep(PULL_POLL_US);
    }
    if (ret == 0 && copy->progress && end)
        copy->progress(target, end, end, copy->opaque);
    if (ret < 0) {
        vmrpErrorFromLibvirt(error, "cannot follow the copy of the repository's data");
        g_prefix_error(error, "disk %s: ", target);
        return false;
    }
    return true;
}

/* The next boot's configuration without relabel='no' on the overlays:
 * they are ordinary disks now. */
static void
instantRelabelConfig(virDomainPtr dom, json_object *disks)
{
    g_autofree char *xml = NULL;
    g_autofree char *new_xml = NULL;
    g_autoptr(vmrpDomainXml) domxml = NULL;
    virDomainPtr redefined;
    size_t i;

    if (virDomainIsPersistent(dom) != 1 ||
        !(xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE)) ||
        !(domxml = vmrpDomainXmlParse(xml, NULL)))
        return;
    for (i = 0; i < json_object_array_length(disks); i++) {
        json_object *d = json_object_array_get_idx(disks, i);
        if (!vmrpDomainXmlSetDiskSource(domxml, vmrpJSONGetString(d, "target"),
                                        vmrpJSONGetString(d, "overlay"), "qcow2", false, NULL))
            return;
    }
    new_xml = vmrpDomainXmlFormat(domxml);
    if ((redefined = virDomainDefineXML(virDomainGetConnect(dom), new_xml)))
        virDomainFree(redefined);
}

bool
vmrpInstantFinalize(virDomainPtr dom, vmrpRepo *repo, const char *uuid,
                    const vmrpDiskCopyOptions *copy, GError **error)
{
    static const vmrpDiskCopyOptions none;
    g_autofree char *path = instantRecordPath(repo, uuid);
    g_autoptr(GError) local = NULL;
    json_object *rec;
    json_object *disks;
    bool active;
    size_t i;

    if (!(rec = instantReadRecord(path, &local))) {
        if (g_error_matches(local, VMRP_ERROR, VMRP_ERROR_IO) && access(path, F_OK) < 0)
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                        "domain %s does not run on a restore point (no instant restore)",
                        uuid);
        else
            g_propagate_error(error, g_steal_pointer(&local));
        return false;
    }
    if (!json_object_object_get_ex(rec, "disks", &disks) ||
        !json_object_is_type(disks, json_type_array)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "malformed %s", path);
        json_object_put(rec);
        return false;
    }
    if (!copy)
        copy = &none;
    active = dom && virDomainIsActive(dom) == 1;
    for (i = 0; dom && i < json_object_array_length(disks); i++) {
        json_object *d = json_object_array_get_idx(disks, i);
        const char *target = vmrpJSONGetString(d, "target");
        const char *overlay = vmrpJSONGetString(d, "overlay");
        const char *stored = vmrpJSONGetString(d, "image");
        g_autofree char *image = stored ? instantRepoAbsolute(repo, stored) : NULL;
        bool backing = true;

        if (!target || !overlay || !image) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "malformed %s", path);
            goto fail;
        }
        if (active) {
            if (!instantPull(dom, target, copy, error))
                goto fail;
        } else {
            if (!instantHasBacking(overlay, &backing, error))
                goto fail;
            if (backing && !vmrpDiskFlatten(overlay, image, target, copy, error))
                goto fail;
        }
        if (!instantHasBacking(overlay, &backing, error))
            goto fail;
        if (backing) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                        "disk %s still depends on the repository after the copy", target);
            goto fail;
        }
    }
    if (dom)
        instantRelabelConfig(dom, disks);
    json_object_put(rec);
    return vmrpInstantRelease(repo, uuid, error);

 fail:
    json_object_put(rec);
    return false;
}
