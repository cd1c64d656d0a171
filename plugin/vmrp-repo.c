/*
 * vmrp-repo.c: the repository on disk
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmrp-repo.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-names.h"

#define REPO_FORMAT 1
#define CREATING_PREFIX ".creating-"
#define MANIFEST_MAX (1024 * 1024)

struct _vmrpRepo {
    char *path;
};

void
vmrpRepoFree(vmrpRepo *repo)
{
    if (!repo)
        return;
    g_free(repo->path);
    g_free(repo);
}

const char *
vmrpRepoGetPath(vmrpRepo *repo)
{
    return repo->path;
}

static char *
jsonText(json_object *obj)
{
    char *ret = g_strdup_printf("%s\n", json_object_to_json_string_ext(obj,
                                JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
    json_object_put(obj);
    return ret;
}

static char *
nowISO8601(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    return g_date_time_format_iso8601(now);
}

/* Reads a small JSON object file with an integer "format" equal to ours. */
static json_object *
readFormatted(const char *path, int format, GError **error)
{
    g_autofree char *text = NULL;
    json_object *obj;
    json_object *fmt;

    if (!(text = vmrpFileRead(path, MANIFEST_MAX, NULL, error)))
        return NULL;
    obj = json_tokener_parse(text);
    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, "format", &fmt) ||
        !json_object_is_type(fmt, json_type_int)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "malformed %s", path);
        json_object_put(obj);
        return NULL;
    }
    if (json_object_get_int(fmt) != format) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s: unsupported format %d (this vmrp reads %d)",
                    path, json_object_get_int(fmt), format);
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

static bool
repoCreate(const char *path, GError **error)
{
    g_autofree char *collections = g_build_filename(path, "collections", NULL);
    g_autofree char *jobs = g_build_filename(path, "jobs", NULL);
    g_autofree char *manifest = g_build_filename(path, "repository.json", NULL);
    g_autofree char *uuid = g_uuid_string_random();
    g_autofree char *created = nowISO8601();
    g_autofree char *text = NULL;
    json_object *obj = json_object_new_object();

    if (!vmrpFileMakeDirWithParents(path, 0755, 0700, error)) {
        json_object_put(obj);
        return false;
    }
    json_object_object_add(obj, "format", json_object_new_int(REPO_FORMAT));
    json_object_object_add(obj, "id", json_object_new_string(uuid));
    json_object_object_add(obj, "created", json_object_new_string(created));
    text = jsonText(obj);
    return vmrpFileMakeDir(collections, 0700, true, error) &&
           vmrpFileMakeDir(jobs, 0700, true, error) &&
           vmrpFileWriteAtomic(manifest, text, strlen(text), 0600, error);
}

vmrpRepo *
vmrpRepoOpen(const char *path, bool create, GError **error)
{
    g_autoptr(vmrpRepo) repo = g_new0(vmrpRepo, 1);
    g_autofree char *manifest = NULL;
    json_object *obj;
    struct stat sb;

    if (!path || !*path) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "no repository path given");
        return NULL;
    }
    repo->path = g_canonicalize_filename(path, NULL);
    manifest = g_build_filename(repo->path, "repository.json", NULL);

    if (stat(repo->path, &sb) < 0) {
        if (errno != ENOENT || !create) {
            g_set_error(error, VMRP_ERROR, errno == ENOENT ? VMRP_ERROR_NOT_FOUND : VMRP_ERROR_IO,
                        "no repository at %s: %s", repo->path, g_strerror(errno));
            return NULL;
        }
        if (!repoCreate(repo->path, error))
            return NULL;
        return g_steal_pointer(&repo);
    }
    if (!S_ISDIR(sb.st_mode)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "repository %s is not a folder", repo->path);
        return NULL;
    }
    if (access(manifest, F_OK) < 0) {
        g_autoptr(GDir) dir = g_dir_open(repo->path, 0, NULL);
        /* an empty folder becomes a repository; anything else is not ours */
        if (create && dir && !g_dir_read_name(dir)) {
            if (!repoCreate(repo->path, error))
                return NULL;
            return g_steal_pointer(&repo);
        }
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s is not a vmrp repository (no repository.json)", repo->path);
        return NULL;
    }
    if (!(obj = readFormatted(manifest, REPO_FORMAT, error)))
        return NULL;
    json_object_put(obj);
    if (create && access(repo->path, W_OK) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "repository %s is not writable: %s",
                    repo->path, g_strerror(errno));
        return NULL;
    }
    return g_steal_pointer(&repo);
}

static char *
collectionPath(vmrpRepo *repo, const char *uuid, const char *sub)
{
    return g_build_filename(repo->path, "collections", uuid, sub, NULL);
}

bool
vmrpRepoEnsureCollection(vmrpRepo *repo, const char *name, const char *uuid, GError **error)
{
    g_autofree char *dir = collectionPath(repo, uuid, NULL);
    g_autofree char *points = collectionPath(repo, uuid, "points");
    g_autofree char *manifest = collectionPath(repo, uuid, "collection.json");
    g_autofree char *text = NULL;
    json_object *obj;
    json_object *val;

    if (!g_uuid_string_is_valid(uuid)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "invalid domain uuid '%s'", uuid);
        return false;
    }
    if (!vmrpFileMakeDir(dir, 0700, true, error) ||
        !vmrpFileMakeDir(points, 0700, true, error))
        return false;

    if (access(manifest, F_OK) == 0) {
        if (!(obj = readFormatted(manifest, REPO_FORMAT, error)))
            return false;
        if (json_object_object_get_ex(obj, "name", &val) &&
            g_strcmp0(json_object_get_string(val), name) == 0) {
            json_object_put(obj);
            return true;
        }
    } else {
        g_autofree char *created = nowISO8601();
        obj = json_object_new_object();
        json_object_object_add(obj, "format", json_object_new_int(REPO_FORMAT));
        json_object_object_add(obj, "created", json_object_new_string(created));
    }
    /* a renamed domain: its name changes, everything else (the policy) stays */
    json_object_object_add(obj, "name", json_object_new_string(name));
    json_object_object_add(obj, "uuid", json_object_new_string(uuid));
    text = jsonText(obj);
    return vmrpFileWriteAtomic(manifest, text, strlen(text), 0600, error);
}

bool
vmrpRepoGetPolicy(vmrpRepo *repo, const char *uuid, char **ret_text, bool *ret_on_start,
                  GError **error)
{
    g_autofree char *manifest = collectionPath(repo, uuid, "collection.json");
    json_object *obj;
    json_object *policy;
    json_object *val;

    if (!(obj = readFormatted(manifest, REPO_FORMAT, error)))
        return false;
    *ret_text = NULL;
    *ret_on_start = false;
    if (json_object_object_get_ex(obj, "policy", &policy) &&
        json_object_is_type(policy, json_type_object)) {
        if (json_object_object_get_ex(policy, "text", &val) &&
            json_object_is_type(val, json_type_string))
            *ret_text = g_strdup(json_object_get_string(val));
        if (json_object_object_get_ex(policy, "on_start", &val))
            *ret_on_start = json_object_get_boolean(val);
    }
    json_object_put(obj);
    return true;
}

bool
vmrpRepoSetPolicy(vmrpRepo *repo, const char *uuid, const char *text, bool on_start,
                  GError **error)
{
    g_autofree char *manifest = collectionPath(repo, uuid, "collection.json");
    g_autofree char *out = NULL;
    json_object *obj;
    json_object *policy;

    if (!(obj = readFormatted(manifest, REPO_FORMAT, error)))
        return false;
    if (text) {
        policy = json_object_new_object();
        json_object_object_add(policy, "text", json_object_new_string(text));
        json_object_object_add(policy, "on_start", json_object_new_boolean(on_start));
        json_object_object_add(obj, "policy", policy);
    } else {
        json_object_object_del(obj, "policy");
    }
    out = jsonText(obj);
    return vmrpFileWriteAtomic(manifest, out, strlen(out), 0600, error);
}

int
vmrpRepoLockCollection(vmrpRepo *repo, const char *uuid, GError **error)
{
    g_autofree char *path = collectionPath(repo, uuid, ".lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot open %s: %s",
                    path, g_strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        close(fd);
        if (err == EWOULDBLOCK)
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                        "domain %s is busy: another vmrp command is working on it", uuid);
        else
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot lock %s: %s",
                        path, g_strerror(err));
        return -1;
    }
    return fd;
}

bool
vmrpRepoRemoveCollection(vmrpRepo *repo, const char *uuid, GError **error)
{
    g_autofree char *dir = collectionPath(repo, uuid, NULL);
    g_autofree char *name = g_strdup_printf(".deleting-%s", uuid);
    g_autofree char *gone = g_build_filename(repo->path, "collections", name, NULL);

    if (!g_uuid_string_is_valid(uuid)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "invalid domain uuid '%s'", uuid);
        return false;
    }
    if (rename(dir, gone) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot delete %s: %s",
                    dir, g_strerror(errno));
        return false;
    }
    return vmrpFileRemoveTree(gone, error);
}

GPtrArray *
vmrpRepoListCollections(vmrpRepo *repo, GError **error)
{
    g_autofree char *path = g_build_filename(repo->path, "collections", NULL);
    g_autoptr(GPtrArray) ret = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GError) local = NULL;
    const char *ent;

    if (!(dir = g_dir_open(path, 0, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s", local->message);
        return NULL;
    }
    while ((ent = g_dir_read_name(dir))) {
        g_autofree char *manifest = NULL;
        json_object *obj;
        json_object *name;
        char **pair;

        if (!g_uuid_string_is_valid(ent))
            continue;
        manifest = collectionPath(repo, ent, "collection.json");
        if (!(obj = readFormatted(manifest, REPO_FORMAT, error)))
            return NULL;
        pair = g_new0(char *, 3);
        pair[0] = g_strdup(ent);
        pair[1] = g_strdup(json_object_object_get_ex(obj, "name", &name) ?
                           json_object_get_string(name) : "");
        json_object_put(obj);
        g_ptr_array_add(ret, pair);
    }
    return g_steal_pointer(&ret);
}

char *
vmrpRepoFindCollection(vmrpRepo *repo, const char *name_or_uuid, GError **error)
{
    g_autoptr(GPtrArray) list = vmrpRepoListCollections(repo, error);
    g_autofree char *shown = NULL;
    size_t i;

    if (!list)
        return NULL;
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);
        if (g_str_equal(pair[0], name_or_uuid) || g_str_equal(pair[1], name_or_uuid))
            return g_strdup(pair[0]);
    }
    shown = g_strescape(name_or_uuid, NULL);
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                "no restore points of domain '%s' in %s", shown, repo->path);
    return NULL;
}

vmrpPoint *
vmrpRepoLoadPoint(const char *dir, const char *id, GError **error)
{
    g_autofree char *path = g_build_filename(dir, "point.json", NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    vmrpPoint *point;

    if (!(text = vmrpFileRead(path, MANIFEST_MAX, NULL, error)))
        return NULL;
    if (!(point = vmrpPointFromJSON(text, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "%s: %s", path, local->message);
        return NULL;
    }
    if (!g_str_equal(point->id, id)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s: the manifest names point %s, not %s", path, point->id, id);
        vmrpPointFree(point);
        return NULL;
    }
    return point;
}

static gint
pointCompare(gconstpointer a, gconstpointer b)
{
    const vmrpPoint *pa = *(vmrpPoint *const *)a;
    const vmrpPoint *pb = *(vmrpPoint *const *)b;

    return strcmp(pa->id, pb->id);
}

static GPtrArray *
listPoints(vmrpRepo *repo, const char *uuid, bool creating, GError **error)
{
    g_autofree char *path = collectionPath(repo, uuid, "points");
    g_autoptr(GPtrArray) ret = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpPointFree);
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GError) local = NULL;
    const char *ent;

    if (!(dir = g_dir_open(path, 0, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "%s", local->message);
        return NULL;
    }
    while ((ent = g_dir_read_name(dir))) {
        g_autofree char *sub = g_build_filename(path, ent, NULL);
        const char *id = ent;
        vmrpPoint *point;

        if (creating != g_str_has_prefix(ent, CREATING_PREFIX))
            continue;
        if (creating)
            id += strlen(CREATING_PREFIX);
        if (!vmrpNameCheckPoint(id, NULL))
            continue;
        if (!(point = vmrpRepoLoadPoint(sub, id, creating ? NULL : error))) {
            if (creating)
                continue;   /* being written right now, or a crash left it half */
            return NULL;
        }
        g_ptr_array_add(ret, point);
    }
    g_ptr_array_sort(ret, pointCompare);
    return g_steal_pointer(&ret);
}

GPtrArray *
vmrpRepoListPoints(vmrpRepo *repo, const char *uuid, GError **error)
{
    return listPoints(repo, uuid, false, error);
}

GPtrArray *
vmrpRepoListCreating(vmrpRepo *repo, const char *uuid, GError **error)
{
    return listPoints(repo, uuid, true, error);
}

char *
vmrpRepoPointImage(const char *dir, vmrpPoint *point, const char *target, GError **error)
{
    vmrpPointDisk *pdisk = vmrpPointFindDisk(point, target);
    g_autofree char *image = NULL;

    if (!pdisk) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "restore point %s has no disk '%s'", point->id, target);
        return NULL;
    }
    if (pdisk->excluded || !pdisk->image) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "disk %s was excluded from restore point %s: it holds no data",
                    target, point->id);
        return NULL;
    }
    image = g_build_filename(dir, pdisk->image, NULL);
    if (access(image, R_OK) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "restore point %s is damaged: image of disk %s: %s",
                    point->id, target, g_strerror(errno));
        return NULL;
    }
    return g_steal_pointer(&image);
}

vmrpPoint *
vmrpRepoFindPoint(vmrpRepo *repo, const char *id, char **ret_dir, GError **error)
{
    g_autoptr(GPtrArray) list = NULL;
    size_t i;

    if (!vmrpNameCheckPoint(id, error))
        return NULL;
    if (!(list = vmrpRepoListCollections(repo, error)))
        return NULL;
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);
        g_autofree char *dir = collectionPath(repo, pair[0], "points");
        g_autofree char *sub = g_build_filename(dir, id, NULL);
        vmrpPoint *point;

        if (access(sub, F_OK) < 0)
            continue;
        if (!(point = vmrpRepoLoadPoint(sub, id, error)))
            return NULL;
        if (ret_dir)
            *ret_dir = g_steal_pointer(&sub);
        return point;
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                "no restore point '%s' in %s", id, repo->path);
    return NULL;
}

bool
vmrpRepoPointSave(const char *dir, const vmrpPoint *point, GError **error)
{
    g_autofree char *path = g_build_filename(dir, "point.json", NULL);
    g_autofree char *text = vmrpPointToJSON(point);

    return vmrpFileWriteAtomic(path, text, strlen(text), 0600, error);
}

char *
vmrpRepoPointBegin(vmrpRepo *repo, const vmrpPoint *point, GError **error)
{
    g_autofree char *name = g_strconcat(CREATING_PREFIX, point->id, NULL);
    g_autofree char *dir = collectionPath(repo, point->domain_uuid, "points");
    g_autofree char *sub = g_build_filename(dir, name, NULL);

    if (!vmrpFileMakeDir(sub, 0700, false, error))
        return NULL;
    if (!vmrpRepoPointSave(sub, point, error)) {
        vmrpFileRemoveTree(sub, NULL);
        return NULL;
    }
    return g_steal_pointer(&sub);
}

bool
vmrpRepoPointCommit(vmrpRepo *repo, vmrpPoint *point, char **dir, GError **error)
{
    g_autofree char *parent = collectionPath(repo, point->domain_uuid, "points");
    g_autofree char *final = g_build_filename(parent, point->id, NULL);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) local = NULL;
    const char *ent;

    if (!(d = g_dir_open(*dir, 0, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s", local->message);
        return false;
    }
    while ((ent = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(*dir, ent, NULL);
        if (!vmrpFileSync(path, error))
            return false;
    }
    point->state = VMRP_POINT_SUCCEEDED;
    if (!vmrpRepoPointSave(*dir, point, error))
        return false;
    if (rename(*dir, final) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot commit point %s: %s",
                    point->id, g_strerror(errno));
        point->state = VMRP_POINT_CREATING;
        return false;
    }
    g_free(*dir);
    *dir = g_steal_pointer(&final);
    return vmrpFileSync(parent, error);
}

bool
vmrpRepoPointSetProtected(vmrpRepo *repo, const char *id, bool protected_, GError **error)
{
    g_autoptr(vmrpPoint) point = NULL;
    g_autofree char *dir = NULL;
    int lock;
    bool ok;

    if (!(point = vmrpRepoFindPoint(repo, id, &dir, error)))
        return false;
    if ((lock = vmrpRepoLockCollection(repo, point->domain_uuid, error)) < 0)
        return false;
    g_clear_pointer(&point, vmrpPointFree);
    /* read again under the lock */
    ok = (point = vmrpRepoLoadPoint(dir, id, error)) != NULL;
    if (ok) {
        point->protected_ = protected_;
        ok = vmrpRepoPointSave(dir, point, error);
    }
    close(lock);
    return ok;
}

GStrv
vmrpRepoCleanStale(vmrpRepo *repo, const char *uuid, GError **error)
{
    g_autofree char *path = collectionPath(repo, uuid, "points");
    g_autoptr(GStrvBuilder) ids = g_strv_builder_new();
    g_autoptr(GDir) dir = NULL;
    const char *ent;

    if (!(dir = g_dir_open(path, 0, NULL)))
        return g_strv_builder_end(ids);
    while ((ent = g_dir_read_name(dir))) {
        g_autofree char *sub = NULL;

        bool creating = g_str_has_prefix(ent, CREATING_PREFIX);

        /* a point half written, or half deleted (vmrp-delete.c) */
        if (!creating && !g_str_has_suffix(ent, ".deleting"))
            continue;
        sub = g_build_filename(path, ent, NULL);
        if (!vmrpFileRemoveTree(sub, error))
            return NULL;
        if (creating)
            g_strv_builder_add(ids, ent + strlen(CREATING_PREFIX));
    }
    return g_strv_builder_end(ids);
}
