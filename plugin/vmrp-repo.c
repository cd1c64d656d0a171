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
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmrp-repo.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-json.h"
#include "vmrp-names.h"
#include "vmrp-point-digest.h"

#define REPO_FORMAT 1
#define CREATING_PREFIX ".creating-"
/* a fragmented disk's data extents are listed in it */
#define MANIFEST_MAX (16 * 1024 * 1024)

struct _vmrpRepo {
    char *path;
    bool allow_verify_failed;
};

void
vmrpRepoSetAllowVerifyFailed(vmrpRepo *repo, bool allow)
{
    repo->allow_verify_failed = allow;
}

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
    if (!(obj = vmrpJSONParseObject(text, error))) {
        g_prefix_error(error, "%s is damaged: ", path);
        return NULL;
    }
    if (!json_object_object_get_ex(obj, "format", &fmt) ||
        !json_object_is_type(fmt, json_type_int)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s is damaged: missing field 'format'", path);
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

char *
vmrpRepoNewManifestText(void)
{
    g_autofree char *uuid = g_uuid_string_random();
    g_autofree char *created = nowISO8601();
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "format", json_object_new_int(REPO_FORMAT));
    json_object_object_add(obj, "id", json_object_new_string(uuid));
    json_object_object_add(obj, "created", json_object_new_string(created));
    return jsonText(obj);
}

char *
vmrpRepoNewCollectionText(const char *name, const char *uuid, bool copy)
{
    g_autofree char *created = nowISO8601();
    json_object *obj = json_object_new_object();

    if (copy)
        json_object_object_add(obj, "copy", json_object_new_boolean(true));
    json_object_object_add(obj, "format", json_object_new_int(REPO_FORMAT));
    json_object_object_add(obj, "created", json_object_new_string(created));
    json_object_object_add(obj, "name", json_object_new_string(name));
    json_object_object_add(obj, "uuid", json_object_new_string(uuid));
    return jsonText(obj);
}

bool
vmrpRepoCollectionTextIsCopy(const char *text)
{
    json_object *obj = vmrpJSONParseObject(text, NULL);
    json_object *val;
    bool copy = false;

    if (obj && json_object_object_get_ex(obj, "copy", &val) &&
        json_object_is_type(val, json_type_boolean))
        copy = json_object_get_boolean(val);
    json_object_put(obj);
    return copy;
}

bool
vmrpRepoCollectionIsCopy(vmrpRepo *repo, const char *uuid)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;

    if (!g_uuid_string_is_valid(uuid))
        return false;
    path = g_build_filename(repo->path, "collections", uuid, "collection.json", NULL);
    text = vmrpFileRead(path, MANIFEST_MAX, NULL, NULL);
    return text && vmrpRepoCollectionTextIsCopy(text);
}

char *
vmrpRepoIdFromText(const char *text, GError **error)
{
    json_object *obj;
    json_object *val;
    char *id = NULL;

    if (!(obj = vmrpJSONParseObject(text, error)))
        return NULL;
    if (json_object_object_get_ex(obj, "id", &val) && json_object_is_type(val, json_type_string))
        id = g_strdup(json_object_get_string(val));
    else
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "repository.json has no id");
    json_object_put(obj);
    return id;
}

char *
vmrpRepoGetId(vmrpRepo *repo, GError **error)
{
    g_autofree char *path = g_build_filename(repo->path, "repository.json", NULL);
    g_autofree char *text = vmrpFileRead(path, MANIFEST_MAX, NULL, error);

    return text ? vmrpRepoIdFromText(text, error) : NULL;
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
vmrpRepoEnsureCollection(vmrpRepo *repo, const char *name, const char *uuid, const char *uri,
                         const char *hostname, char **ret_note, GError **error)
{
    g_autoptr(GError) local = NULL;
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

    obj = NULL;
    if (access(manifest, F_OK) == 0 && !(obj = readFormatted(manifest, REPO_FORMAT, &local))) {
        g_autofree char *aside = g_strconcat(manifest, ".damaged", NULL);

        /* a newer vmrp's file is not damage: leave it alone */
        if (!g_error_matches(local, VMRP_ERROR, VMRP_ERROR_INVALID) ||
            strstr(local->message, "unsupported format")) {
            g_propagate_error(error, g_steal_pointer(&local));
            return false;
        }
        /* a damaged collection.json must not stop the domain's protection:
         * it is kept aside for a person to read (the policy in it is lost) */
        if (rename(manifest, aside) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot move %s aside: %s",
                        manifest, g_strerror(errno));
            return false;
        }
        if (ret_note)
            *ret_note = g_strdup_printf("%s; it was moved to %s and made anew, without its "
                                        "policy", local->message, aside);
    }
    if (obj) {
        json_object *u = NULL, *h = NULL;

        if (json_object_object_get_ex(obj, "name", &val) &&
            g_strcmp0(json_object_get_string(val), name) == 0 &&
            (!uri || (json_object_object_get_ex(obj, "uri", &u) &&
                      g_strcmp0(json_object_get_string(u), uri) == 0)) &&
            (!hostname || (json_object_object_get_ex(obj, "hostname", &h) &&
                           g_strcmp0(json_object_get_string(h), hostname) == 0))) {
            json_object_put(obj);
            return true;
        }
    } else {
        g_autofree char *created = nowISO8601();
        obj = json_object_new_object();
        json_object_object_add(obj, "format", json_object_new_int(REPO_FORMAT));
        json_object_object_add(obj, "created", json_object_new_string(created));
    }
    /* a renamed domain: its name changes, everything else (the policy) stays;
     * so does a domain that moved to another host */
    json_object_object_add(obj, "name", json_object_new_string(name));
    json_object_object_add(obj, "uuid", json_object_new_string(uuid));
    if (uri)
        json_object_object_add(obj, "uri", json_object_new_string(uri));
    if (hostname)
        json_object_object_add(obj, "hostname", json_object_new_string(hostname));
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
    /* a copy written over SFTP from another host holds it (vmrp-dest-ssh.c) */
    {
        g_autofree char *sftp = collectionPath(repo, uuid, ".sftp-lock");

        if (access(sftp, F_OK) == 0) {
            close(fd);
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                        "domain %s is busy: a vmrp copies to it over ssh (%s)", uuid, sftp);
            return -1;
        }
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
        pair = g_new0(char *, 4);
        pair[0] = g_strdup(ent);
        if ((obj = readFormatted(manifest, REPO_FORMAT, &local))) {
            pair[1] = g_strdup(json_object_object_get_ex(obj, "name", &name) &&
                               json_object_is_type(name, json_type_string) ?
                               json_object_get_string(name) : "");
            json_object_put(obj);
        } else {
            /* one damaged collection.json: that collection has no name,
             * the others are listed as ever */
            pair[1] = g_strdup("");
            pair[2] = g_strdup(local->message);
            g_clear_error(&local);
        }
        g_ptr_array_add(ret, pair);
    }
    return g_steal_pointer(&ret);
}

char *
vmrpRepoGetCollectionURI(vmrpRepo *repo, const char *uuid)
{
    g_autofree char *manifest = NULL;
    json_object *obj;
    json_object *val;
    char *uri = NULL;

    if (!g_uuid_string_is_valid(uuid))
        return NULL;
    manifest = collectionPath(repo, uuid, "collection.json");
    if (!(obj = readFormatted(manifest, REPO_FORMAT, NULL)))
        return NULL;
    if (json_object_object_get_ex(obj, "uri", &val) && json_object_is_type(val, json_type_string))
        uri = g_strdup(json_object_get_string(val));
    json_object_put(obj);
    return uri;
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

static gint
pointCompare(gconstpointer a, gconstpointer b)
{
    const vmrpPoint *pa = *(vmrpPoint *const *)a;
    const vmrpPoint *pb = *(vmrpPoint *const *)b;

    return strcmp(pa->id, pb->id);
}

/* Whether every file the loaded @point names is in its folder @dir. */
static bool
pointCheckFiles(const char *dir, const vmrpPoint *point, GError **error)
{
    g_autofree char *xml = g_build_filename(dir, "domain.xml", NULL);
    size_t i;

    if (access(xml, R_OK) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "domain.xml is %s",
                    errno == ENOENT ? "missing" : g_strerror(errno));
        return false;
    }
    for (i = 0; i < point->disks->len; i++) {
        const vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        g_autofree char *image = NULL;
        g_autofree char *backing = NULL;

        if (disk->excluded)
            continue;
        image = g_build_filename(dir, disk->image, NULL);
        if (access(image, R_OK) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "image %s is %s", disk->image,
                        errno == ENOENT ? "missing" : g_strerror(errno));
            return false;
        }
        if (!disk->backing)
            continue;
        /* "../<parent-id>/<image>", checked by vmrpPointFromJSON */
        backing = g_build_filename(dir, disk->backing, NULL);
        if (access(backing, R_OK) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "backing image %s of disk %s is %s", disk->backing, disk->target,
                        errno == ENOENT ? "missing" : g_strerror(errno));
            return false;
        }
    }
    return true;
}

/* A committed point's entry: the point as its manifest says, in state
 * Damaged when the manifest or a file it names cannot be read.  @ret_files
 * (may be NULL) tells whether its files are there (a point that builds on
 * one without them is damaged too). */
static vmrpPoint *
pointLoadEntry(const char *dir, const char *id, const char *uuid, bool *ret_files)
{
    g_autofree char *path = g_build_filename(dir, "point.json", NULL);
    g_autofree char *text = NULL;
    g_autofree char *reason = NULL;
    g_autoptr(GError) local = NULL;
    vmrpPoint *point = NULL;

    if (ret_files)
        *ret_files = true;
    if (!(text = vmrpFileRead(path, MANIFEST_MAX, NULL, &local)) ||
        !(point = vmrpPointFromJSON(text, &local))) {
        /* vmrpFileRead's errors name the path already */
        reason = text ? g_strdup_printf("point.json: %s", local->message)
                      : g_strdup(local->message);
        return vmrpPointNewDamaged(id, uuid, reason);
    }
    if (!g_str_equal(point->id, id)) {
        reason = g_strdup_printf("point.json names point %s", point->id);
    } else if (g_strcmp0(point->domain_uuid, uuid) != 0) {
        reason = g_strdup_printf("point.json names domain %s", point->domain_uuid);
    } else if (point->state != VMRP_POINT_SUCCEEDED) {
        reason = g_strdup_printf("point.json says %s in a committed point",
                                 vmrpPointStateToString(point->state));
    } else if (!pointCheckFiles(dir, point, &local)) {
        reason = g_strdup(local->message);
        if (ret_files)
            *ret_files = false;
    }
    if (reason && (!ret_files || *ret_files)) {
        vmrpPointFree(point);
        return vmrpPointNewDamaged(id, uuid, reason);
    }
    if (reason) {
        /* the manifest is sound: keep what it says (rp-info, rp-delete) */
        point->state = VMRP_POINT_DAMAGED;
        g_free(point->message);
        point->message = g_steal_pointer(&reason);
    }
    return point;
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
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "%s is damaged: %s",
                    path, local->message);
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

/* Whether a live process holds the flock of the collection's lock file: read
 * from /proc/locks, so that looking never takes the lock from a vmrp that
 * is about to. */
static bool
collectionLockHeld(vmrpRepo *repo, const char *uuid)
{
    g_autofree char *path = collectionPath(repo, uuid, ".lock");
    g_autofree char *locks = NULL;
    g_autofree char *key = NULL;
    g_auto(GStrv) lines = NULL;
    struct statfs fs;
    struct stat sb;
    size_t i;

    if (stat(path, &sb) < 0)
        return false;
    if (statfs(path, &fs) == 0 && fs.f_type == NFS_SUPER_MAGIC) {
        /* the Linux NFS client makes a flock a whole-file byte-range lock
         * on the server, which other hosts' vmrp take too, and which only the
         * server knows of: asked without taking it */
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        bool held;

        if (fd < 0)
            return true;
        held = fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type != F_UNLCK;
        close(fd);
        return held;
    }
    if (!g_file_get_contents("/proc/locks", &locks, NULL, NULL))
        return true;    /* cannot tell: say held, as before */
    /* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" */
    key = g_strdup_printf(" %02x:%02x:%lu ", major(sb.st_dev), minor(sb.st_dev),
                          (unsigned long)sb.st_ino);
    lines = g_strsplit(locks, "\n", -1);
    for (i = 0; lines[i]; i++) {
        if (strstr(lines[i], "FLOCK") && strstr(lines[i], key))
            return true;
    }
    return false;
}

bool
vmrpRepoCollectionBusy(vmrpRepo *repo, const char *uuid)
{
    return collectionLockHeld(repo, uuid);
}

static GPtrArray *
listPoints(vmrpRepo *repo, const char *uuid, bool creating, GError **error)
{
    g_autofree char *path = collectionPath(repo, uuid, "points");
    g_autoptr(GPtrArray) ret = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpPointFree);
    g_autoptr(GHashTable) broken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GError) local = NULL;
    bool orphaned = false;
    const char *ent;
    size_t i, j;

    if (!g_uuid_string_is_valid(uuid)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "invalid domain uuid");
        return NULL;
    }
    if (!(dir = g_dir_open(path, 0, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "%s", local->message);
        return NULL;
    }
    if (creating)
        orphaned = !collectionLockHeld(repo, uuid);
    while ((ent = g_dir_read_name(dir))) {
        g_autofree char *sub = g_build_filename(path, ent, NULL);
        const char *id = ent;
        vmrpPoint *point;
        bool files = true;

        if (creating != g_str_has_prefix(ent, CREATING_PREFIX))
            continue;
        if (creating)
            id += strlen(CREATING_PREFIX);
        /* a name read from the folder is checked like a user's id */
        if (!vmrpNameCheckPoint(id, NULL))
            continue;
        if (!g_file_test(sub, G_FILE_TEST_IS_DIR) || g_file_test(sub, G_FILE_TEST_IS_SYMLINK))
            continue;
        if (creating) {
            if (!(point = vmrpRepoLoadPoint(sub, id, NULL))) {
                if (!orphaned)
                    continue;   /* its creator is writing it right now */
                point = vmrpPointNewDamaged(id, uuid, NULL);
            }
            if (orphaned) {
                point->state = VMRP_POINT_FAILED;
                g_free(point->message);
                point->message = g_strdup("interrupted: the creating process ended");
            }
        } else {
            point = pointLoadEntry(sub, id, uuid, &files);
            if (!files)
                g_hash_table_add(broken, g_strdup(id));
        }
        g_ptr_array_add(ret, point);
    }
    g_ptr_array_sort(ret, pointCompare);

    /* oldest first: a point whose chain reaches a point without its files
     * cannot be restored either */
    for (i = 0; !creating && i < ret->len; i++) {
        vmrpPoint *point = g_ptr_array_index(ret, i);

        for (j = 0; point->state == VMRP_POINT_SUCCEEDED && j < point->disks->len; j++) {
            g_autofree char *parent = vmrpPointDiskBackingPoint(g_ptr_array_index(point->disks,
                                                                                  j));
            if (parent && g_hash_table_contains(broken, parent)) {
                point->state = VMRP_POINT_DAMAGED;
                g_free(point->message);
                point->message = g_strdup_printf("it builds on damaged point %s", parent);
                g_hash_table_add(broken, g_strdup(point->id));
            }
        }
    }
    return g_steal_pointer(&ret);
}

char *
vmrpRepoPointDir(vmrpRepo *repo, const char *uuid, const char *id)
{
    g_autofree char *points = collectionPath(repo, uuid, "points");

    return g_build_filename(points, id, NULL);
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

GPtrArray *
vmrpRepoListAll(vmrpRepo *repo, const char *uuid, GPtrArray **creating, GError **error)
{
    g_autoptr(GPtrArray) half = NULL;
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GHashTable) ids = g_hash_table_new(g_str_hash, g_str_equal);
    guint i;

    /* the half-made ones first: a point renamed into place between the two
     * scans is then in both lists, never in neither */
    if (!(half = listPoints(repo, uuid, true, error)) ||
        !(points = listPoints(repo, uuid, false, error)))
        return NULL;
    for (i = 0; i < points->len; i++)
        g_hash_table_add(ids, ((vmrpPoint *)g_ptr_array_index(points, i))->id);
    for (i = half->len; i > 0; i--) {
        if (g_hash_table_contains(ids, ((vmrpPoint *)g_ptr_array_index(half, i - 1))->id))
            g_ptr_array_remove_index(half, i - 1);
    }
    *creating = g_steal_pointer(&half);
    return g_steal_pointer(&points);
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

/* The point's entry in its collection (see vmrpRepoFindPoint). */
static vmrpPoint *
findPoint(vmrpRepo *repo, const char *id, bool damaged_ok, char **ret_dir, GError **error)
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
        g_autofree char *half = g_strconcat(dir, "/" CREATING_PREFIX, id, NULL);
        g_autoptr(GPtrArray) points = NULL;
        size_t j;

        if (access(sub, F_OK) < 0) {
            if (access(half, F_OK) == 0)
                points = vmrpRepoListCreating(repo, pair[0], NULL);
            for (j = 0; points && j < points->len; j++) {
                vmrpPoint *p = g_ptr_array_index(points, j);
                if (!g_str_equal(p->id, id))
                    continue;
                if (p->state == VMRP_POINT_FAILED)
                    g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                                "restore point %s is not complete: %s", id, p->message);
                else
                    g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                                "restore point %s is still being created", id);
                return NULL;
            }
            /* it may have been renamed into place since the first look */
            if (access(sub, F_OK) < 0)
                continue;
            g_clear_pointer(&points, g_ptr_array_unref);
        }
        /* the whole list: a point is also damaged when one it builds on is */
        if (!(points = vmrpRepoListPoints(repo, pair[0], error)))
            return NULL;
        for (j = 0; j < points->len; j++) {
            vmrpPoint *p = g_ptr_array_index(points, j);

            if (!g_str_equal(p->id, id))
                continue;
            if (p->state == VMRP_POINT_DAMAGED && !damaged_ok) {
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "restore point %s is damaged: %s", id, p->message);
                return NULL;
            }
            if (!damaged_ok && !repo->allow_verify_failed &&
                !vmrpPointCheckVerified(points, p, error))
                return NULL;
            if (ret_dir)
                *ret_dir = g_steal_pointer(&sub);
            return g_ptr_array_steal_index(points, j);
        }
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                "no restore point '%s' in %s", id, repo->path);
    return NULL;
}

vmrpPoint *
vmrpRepoFindPoint(vmrpRepo *repo, const char *id, char **ret_dir, GError **error)
{
    return findPoint(repo, id, false, ret_dir, error);
}

vmrpPoint *
vmrpRepoFindPointEntry(vmrpRepo *repo, const char *id, char **ret_dir, GError **error)
{
    return findPoint(repo, id, true, ret_dir, error);
}

bool
vmrpRepoPointSave(const char *dir, const vmrpPoint *point, GError **error)
{
    g_autofree char *path = g_build_filename(dir, "point.json", NULL);
    g_autofree char *text = vmrpPointToJSON(point);

    return vmrpFileWriteAtomic(path, text, strlen(text), 0600, error);
}

bool
vmrpRepoPointSaveDraft(const char *dir, const vmrpPoint *point, GError **error)
{
    g_autofree char *path = g_build_filename(dir, "point.json", NULL);
    g_autofree char *text = vmrpPointToJSON(point);

    return vmrpFileWriteReplace(path, text, strlen(text), 0600, error);
}

bool
vmrpRepoPointUpdate(const char *dir, vmrpPoint *point, GError **error)
{
    if (point->manifest_digest) {
        g_free(point->manifest_digest);
        point->manifest_digest = vmrpPointManifestDigest(point);
    }
    return vmrpRepoPointSave(dir, point, error);
}

char *
vmrpRepoPointBegin(vmrpRepo *repo, const vmrpPoint *point, GError **error)
{
    g_autofree char *name = g_strconcat(CREATING_PREFIX, point->id, NULL);
    g_autofree char *dir = collectionPath(repo, point->domain_uuid, "points");
    g_autofree char *sub = g_build_filename(dir, name, NULL);

    if (vmrpRepoCollectionIsCopy(repo, point->domain_uuid)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "the collection of domain %s in %s is a copy (rp-copy): restore points "
                    "are taken into the domain's own repository", point->domain_name,
                    repo->path);
        return NULL;
    }
    if (!vmrpFileMakeDir(sub, 0700, false, error))
        return NULL;
    if (!vmrpRepoPointSaveDraft(sub, point, error)) {
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
    if (!vmrpPointDigestFiles(point, *dir, error) ||
        !vmrpRepoPointSave(*dir, point, error))
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
        g_autofree char *id = NULL;

        /* a point half written, or half deleted (vmrp-delete.c) */
        if (creating)
            id = g_strdup(ent + strlen(CREATING_PREFIX));
        else if (g_str_has_suffix(ent, ".deleting"))
            id = g_strndup(ent, strlen(ent) - strlen(".deleting"));
        else
            continue;
        /* the id goes into paths (the job's state folder, the checkpoint's
         * name): a name that is no point id is not vmrp's and stays */
        if (!vmrpNameCheckPoint(id, NULL))
            continue;
        sub = g_build_filename(path, ent, NULL);
        if (!vmrpFileRemoveTree(sub, error))
            return NULL;
        if (creating)
            g_strv_builder_add(ids, id);
    }
    return g_strv_builder_end(ids);
}
