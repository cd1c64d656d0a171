/*
 * vmrp-point.c: a restore point's manifest
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <json-c/json.h>

#include "vmrp-point.h"
#include "vmrp-names.h"
#include "vmrp-error.h"
#include "vmrp-json.h"
#include "vmrp-point-digest.h"

#define POINT_FORMAT 1

static const char *const stateNames[VMRP_POINT_STATE_LAST] = {
    [VMRP_POINT_CREATING] = "Creating",
    [VMRP_POINT_SUCCEEDED] = "Succeeded",
    [VMRP_POINT_FAILED] = "Failed",
    [VMRP_POINT_DAMAGED] = "Damaged",
};

const char *
vmrpPointStateToString(vmrpPointState state)
{
    return state < VMRP_POINT_STATE_LAST ? stateNames[state] : "Unknown";
}

void
vmrpPointDiskFree(vmrpPointDisk *disk)
{
    if (!disk)
        return;
    g_free(disk->target);
    g_free(disk->source);
    g_free(disk->format);
    g_free(disk->image);
    g_free(disk->backing);
    g_free(disk->data_digest);
    if (disk->data_extents)
        g_array_unref(disk->data_extents);
    g_free(disk);
}

void
vmrpPointFree(vmrpPoint *point)
{
    if (!point)
        return;
    g_free(point->id);
    g_free(point->domain_name);
    g_free(point->domain_uuid);
    g_free(point->created);
    g_free(point->kind);
    g_free(point->parent);
    g_free(point->checkpoint);
    g_free(point->message);
    g_free(point->fallback_reason);
    if (point->disks)
        g_ptr_array_unref(point->disks);
    vmrpPointDigestsClear(point);
    if (point->files)
        g_ptr_array_unref(point->files);
    g_free(point);
}

static vmrpPoint *
pointAlloc(void)
{
    vmrpPoint *point = g_new0(vmrpPoint, 1);

    point->disks = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpPointDiskFree);
    point->files = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpPointFileFree);
    point->freeze_ms = -1;
    point->digest_algorithm = VMRP_DIGEST_DEFAULT;
    return point;
}

static vmrpPoint *
pointNew(const char *domain_name, const char *domain_uuid, GDateTime *now)
{
    vmrpPoint *point = pointAlloc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");

    /* ids sort in time order: milliseconds first, then a random part */
    point->id = g_strdup_printf("%s-%03x%03x", stamp,
                                (unsigned int)(g_date_time_get_microsecond(now) / 1000),
                                (unsigned int)g_random_int_range(0, 0x1000));
    point->created = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    point->domain_name = g_strdup(domain_name);
    point->domain_uuid = g_strdup(domain_uuid);
    point->kind = g_strdup("full");
    point->state = VMRP_POINT_CREATING;
    return point;
}

vmrpPoint *
vmrpPointNew(const char *domain_name, const char *domain_uuid)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();

    return pointNew(domain_name, domain_uuid, now);
}

vmrpPoint *
vmrpPointNewAt(const char *domain_name, const char *domain_uuid, gint64 unix_time)
{
    g_autoptr(GDateTime) at = g_date_time_new_from_unix_utc(unix_time);
    g_autoptr(GDateTime) real = g_date_time_new_now_utc();
    g_autoptr(GDateTime) now = NULL;

    /* the real milliseconds keep ids apart within the same second */
    if (!at || !(now = g_date_time_add(at, g_date_time_get_microsecond(real))))
        return vmrpPointNew(domain_name, domain_uuid);
    return pointNew(domain_name, domain_uuid, now);
}

vmrpPoint *
vmrpPointNewDamaged(const char *id, const char *domain_uuid, const char *reason)
{
    vmrpPoint *point = pointAlloc();

    point->id = g_strdup(id);
    point->domain_uuid = g_strdup(domain_uuid);
    point->domain_name = g_strdup("");
    /* the id starts with the time: YYYYMMDD-HHMMSS */
    point->created = g_strdup_printf("%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", id, id + 4, id + 6,
                                     id + 9, id + 11, id + 13);
    point->kind = g_strdup("unknown");
    /* vmrp names a point's checkpoint after it: rp-delete removes it */
    point->checkpoint = g_strdup_printf("vmrp-%s", id);
    point->state = VMRP_POINT_DAMAGED;
    point->message = g_strdup(reason);
    return point;
}

void
vmrpPointFileFree(vmrpPointFile *file)
{
    if (!file)
        return;
    g_free(file->kind);
    g_free(file->path);
    g_free(file->source);
    g_free(file->sha256);
    g_free(file);
}

vmrpPointFile *
vmrpPointAddFile(vmrpPoint *point, const char *kind, const char *path)
{
    vmrpPointFile *file = g_new0(vmrpPointFile, 1);

    file->kind = g_strdup(kind);
    file->path = g_strdup(path);
    g_ptr_array_add(point->files, file);
    return file;
}

bool
vmrpPointHasFiles(const vmrpPoint *point, const char *kind)
{
    size_t i;

    for (i = 0; i < point->files->len; i++) {
        if (g_str_equal(((vmrpPointFile *)g_ptr_array_index(point->files, i))->kind, kind))
            return true;
    }
    return false;
}

vmrpPointDisk *
vmrpPointAddDisk(vmrpPoint *point, const char *target)
{
    vmrpPointDisk *disk = g_new0(vmrpPointDisk, 1);

    disk->target = g_strdup(target);
    g_ptr_array_add(point->disks, disk);
    return disk;
}

vmrpPointDisk *
vmrpPointFindDisk(vmrpPoint *point, const char *target)
{
    size_t i;

    for (i = 0; i < point->disks->len; i++) {
        vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        if (g_strcmp0(disk->target, target) == 0)
            return disk;
    }
    return NULL;
}

/* "../<point-id>/<image>": a sibling point's image, nothing else */
char *
vmrpPointDiskBackingPoint(const vmrpPointDisk *disk)
{
    g_auto(GStrv) parts = NULL;

    if (!disk->backing)
        return NULL;
    parts = g_strsplit(disk->backing, "/", -1);
    if (g_strv_length(parts) != 3 || !g_str_equal(parts[0], "..") ||
        !vmrpNameCheckPoint(parts[1], NULL) || !*parts[2] || parts[2][0] == '.')
        return NULL;
    return g_strdup(parts[1]);
}

char *
vmrpPointBackingPoint(const vmrpPoint *point)
{
    guint i;

    for (i = 0; i < point->disks->len; i++) {
        char *parent = vmrpPointDiskBackingPoint(g_ptr_array_index(point->disks, i));
        if (parent)
            return parent;
    }
    return NULL;
}

unsigned int
vmrpPointDiskPercent(const vmrpPointDisk *disk)
{
    if (disk->excluded)
        return 0;
    if (disk->bytes_total == 0)
        return disk->image && disk->bytes_done == 0 ? 100 : 0;
    return (unsigned int)(disk->bytes_done * 100 / disk->bytes_total);
}

uint64_t
vmrpPointBytes(const vmrpPoint *point)
{
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < point->disks->len; i++)
        sum += ((vmrpPointDisk *)g_ptr_array_index(point->disks, i))->bytes_done;
    return sum;
}

static void
addString(json_object *obj, const char *key, const char *val)
{
    json_object_object_add(obj, key, val ? json_object_new_string(val) : NULL);
}

char *
vmrpPointToJSON(const vmrpPoint *point)
{
    json_object *obj = json_object_new_object();
    json_object *dom = json_object_new_object();
    json_object *cons = json_object_new_object();
    json_object *disks = json_object_new_array();
    char *ret;
    size_t i;

    json_object_object_add(obj, "format", json_object_new_int(POINT_FORMAT));
    addString(obj, "id", point->id);
    addString(dom, "name", point->domain_name);
    addString(dom, "uuid", point->domain_uuid);
    json_object_object_add(obj, "domain", dom);
    addString(obj, "created", point->created);
    addString(obj, "state", vmrpPointStateToString(point->state));
    addString(obj, "kind", point->kind);
    addString(obj, "parent", point->parent);
    addString(obj, "checkpoint", point->checkpoint);
    addString(obj, "message", point->message);
    addString(cons, "requested", vmrpConsistencyToString(point->requested));
    addString(cons, "achieved", vmrpConsistencyToString(point->achieved));
    addString(cons, "fallback_reason", point->fallback_reason);
    json_object_object_add(cons, "freeze_ms",
                           point->freeze_ms < 0 ? NULL : json_object_new_int64(point->freeze_ms));
    json_object_object_add(obj, "consistency", cons);
    json_object_object_add(obj, "duration_ms", json_object_new_int64(point->duration_ms));
    json_object_object_add(obj, "protected", json_object_new_boolean(point->protected_));

    for (i = 0; i < point->disks->len; i++) {
        const vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        json_object *d = json_object_new_object();

        addString(d, "target", disk->target);
        addString(d, "source", disk->source);
        addString(d, "format", disk->format);
        addString(d, "image", disk->image);
        addString(d, "backing", disk->backing);
        /* for people: an image without backing holds the whole disk */
        if (disk->image)
            addString(d, "copy", disk->backing ? "changes since the parent point" : "whole disk");
        json_object_object_add(d, "excluded", json_object_new_boolean(disk->excluded));
        json_object_object_add(d, "size", json_object_new_uint64(disk->size));
        json_object_object_add(d, "bytes_total", json_object_new_uint64(disk->bytes_total));
        json_object_object_add(d, "bytes_done", json_object_new_uint64(disk->bytes_done));
        json_object_object_add(d, "percent", json_object_new_int(vmrpPointDiskPercent(disk)));
        vmrpPointDiskDigestToJSON(disk, d);
        json_object_array_add(disks, d);
    }
    json_object_object_add(obj, "disks", disks);
    vmrpPointDigestsToJSON(point, obj);
    if (point->files->len) {
        json_object *files = json_object_new_array();

        for (i = 0; i < point->files->len; i++) {
            const vmrpPointFile *file = g_ptr_array_index(point->files, i);
            json_object *f = json_object_new_object();

            addString(f, "kind", file->kind);
            addString(f, "path", file->path);
            addString(f, "source", file->source);
            json_object_object_add(f, "size", json_object_new_uint64(file->size));
            addString(f, "sha256", file->sha256);
            json_object_array_add(files, f);
        }
        json_object_object_add(obj, "files", files);
    }

    ret = g_strdup_printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                                     JSON_C_TO_STRING_SPACED));
    json_object_put(obj);
    return ret;
}

/* Strict readers: a missing field or one of the wrong type is an error
 * naming the field. */
static bool
fieldError(GError **error, const char *key, bool missing, const char *what)
{
    if (missing)
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "missing field '%s'", key);
    else
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "field '%s' is not %s", key, what);
    return false;
}

static bool
getString(json_object *obj, const char *key, bool nullable, char **ret, GError **error)
{
    json_object *val = NULL;

    if (!json_object_object_get_ex(obj, key, &val) || !val) {
        if (nullable)
            return true;
        return fieldError(error, key, true, NULL);
    } else if (json_object_is_type(val, json_type_string) &&
               /* "\u0000" would cut the string short where C reads it */
               strlen(json_object_get_string(val)) == (size_t)json_object_get_string_len(val)) {
        *ret = g_strdup(json_object_get_string(val));
        return true;
    }
    return fieldError(error, key, false, "a string");
}

static bool
getInt(json_object *obj, const char *key, bool nullable, int64_t *ret, GError **error)
{
    json_object *val = NULL;

    if (!json_object_object_get_ex(obj, key, &val) || !val) {
        if (nullable)
            return true;
        return fieldError(error, key, true, NULL);
    } else if (json_object_is_type(val, json_type_int) && json_object_get_int64(val) >= 0) {
        *ret = json_object_get_int64(val);
        return true;
    }
    return fieldError(error, key, false, "a number (a non-negative integer)");
}

static bool
getObject(json_object *obj, const char *key, json_type type, json_object **ret, GError **error)
{
    if (!json_object_object_get_ex(obj, key, ret) || !*ret)
        return fieldError(error, key, true, NULL);
    if (!json_object_is_type(*ret, type))
        return fieldError(error, key, false, type == json_type_array ? "a list" : "an object");
    return true;
}

static bool
parseDisk(vmrpPoint *point, json_object *d, GError **error)
{
    g_autofree char *target = NULL;
    vmrpPointDisk *disk;
    json_object *excl;
    int64_t size = 0, total = 0, done = 0;

    if (!json_object_is_type(d, json_type_object)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "a disk is not an object");
        return false;
    }
    if (!getString(d, "target", false, &target, error) ||
        !vmrpNameCheckTarget(target, error))
        return false;
    if (vmrpPointFindDisk(point, target)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "disk '%s' is listed twice", target);
        return false;
    }
    disk = vmrpPointAddDisk(point, target);
    if (!getString(d, "source", true, &disk->source, error) ||
        !getString(d, "format", true, &disk->format, error) ||
        !getString(d, "image", true, &disk->image, error) ||
        !getString(d, "backing", true, &disk->backing, error) ||
        !getInt(d, "size", false, &size, error) ||
        !getInt(d, "bytes_total", false, &total, error) ||
        !getInt(d, "bytes_done", false, &done, error)) {
        g_prefix_error(error, "disk %s: ", target);
        return false;
    }
    if (!json_object_object_get_ex(d, "excluded", &excl) ||
        !json_object_is_type(excl, json_type_boolean)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "'excluded' of disk '%s' is not a boolean", target);
        return false;
    }
    disk->excluded = json_object_get_boolean(excl);
    disk->size = size;
    disk->bytes_total = total;
    disk->bytes_done = done;
    /* the image name is joined to the point's folder: it must stay inside */
    if (disk->image && (disk->excluded || !*disk->image || strchr(disk->image, '/') ||
                        disk->image[0] == '.')) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "bad image name for disk '%s'", target);
        return false;
    }
    if (disk->backing) {
        g_autofree char *parent = vmrpPointDiskBackingPoint(disk);
        if (!disk->image || !parent) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "bad backing image for disk '%s'", target);
            return false;
        }
    }
    if (!disk->image && !disk->excluded) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "disk '%s' has no image and is not excluded", target);
        return false;
    }
    if (!vmrpPointDiskDigestFromJSON(disk, d, error)) {
        g_prefix_error(error, "disk %s: ", target);
        return false;
    }
    return true;
}

/* "nvram/VARS.fd", "tpm/tpm2/tpm2-00.permall": relative, below the folder
 * of its kind, each component plain (vmrpNameIsPlainFile) */
static bool
fileCheckPath(const char *kind, const char *path)
{
    g_auto(GStrv) parts = NULL;
    size_t i;

    if (!g_str_equal(kind, "nvram") && !g_str_equal(kind, "tpm"))
        return false;
    parts = g_strsplit(path, "/", -1);
    if (g_strv_length(parts) < 2 || !g_str_equal(parts[0], kind) ||
        (g_str_equal(kind, "nvram") && g_strv_length(parts) != 2))
        return false;
    for (i = 1; parts[i]; i++) {
        if (!vmrpNameIsPlainFile(parts[i]))
            return false;
    }
    return true;
}

static bool
parseFile(vmrpPoint *point, json_object *f, GError **error)
{
    g_autofree char *kind = NULL;
    g_autofree char *path = NULL;
    vmrpPointFile *file;
    int64_t size = 0;
    size_t i;

    if (!json_object_is_type(f, json_type_object)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "a file is not an object");
        return false;
    }
    if (!getString(f, "kind", false, &kind, error) ||
        !getString(f, "path", false, &path, error))
        return false;
    if (!fileCheckPath(kind, path)) {
        g_autofree char *shown = g_strescape(path, NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "bad file path '%s'", shown);
        return false;
    }
    for (i = 0; i < point->files->len; i++) {
        if (g_str_equal(((vmrpPointFile *)g_ptr_array_index(point->files, i))->path, path)) {
            g_autofree char *shown = g_strescape(path, NULL);
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "file '%s' is listed twice", shown);
            return false;
        }
    }
    file = vmrpPointAddFile(point, kind, path);
    if (!getString(f, "source", true, &file->source, error) ||
        !getInt(f, "size", false, &size, error) ||
        !getString(f, "sha256", false, &file->sha256, error))
        return false;
    file->size = size;
    if (!vmrpDigestIsHex(file->sha256, VMRP_DIGEST_SHA256)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "bad sha256 of file '%s'", path);
        return false;
    }
    return true;
}

vmrpPoint *
vmrpPointFromJSON(const char *text, GError **error)
{
    g_autoptr(vmrpPoint) point = pointAlloc();
    g_autofree char *state = NULL;
    g_autofree char *requested = NULL;
    g_autofree char *achieved = NULL;
    json_object *obj;
    json_object *dom, *cons, *disks;
    json_object *files = NULL;
    int64_t format = 0;
    int64_t freeze = -1;
    size_t i;
    bool ok = false;

    if (!(obj = vmrpJSONParseObject(text, error)))
        return NULL;
    if (!getInt(obj, "format", false, &format, error))
        goto cleanup;
    if (format != POINT_FORMAT) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "unsupported manifest format %lld (this vmrp reads %d)",
                    (long long)format, POINT_FORMAT);
        goto cleanup;
    }
    if (!getString(obj, "id", false, &point->id, error) ||
        !vmrpNameCheckPoint(point->id, error) ||
        !getObject(obj, "domain", json_type_object, &dom, error) ||
        !getString(dom, "name", false, &point->domain_name, error) ||
        !getString(dom, "uuid", false, &point->domain_uuid, error) ||
        !getString(obj, "created", false, &point->created, error) ||
        !getString(obj, "state", false, &state, error) ||
        !getString(obj, "kind", false, &point->kind, error) ||
        !getString(obj, "parent", true, &point->parent, error) ||
        !getString(obj, "checkpoint", true, &point->checkpoint, error) ||
        !getString(obj, "message", true, &point->message, error) ||
        !getObject(obj, "consistency", json_type_object, &cons, error) ||
        !getString(cons, "requested", false, &requested, error) ||
        !getString(cons, "achieved", false, &achieved, error) ||
        !getString(cons, "fallback_reason", true, &point->fallback_reason, error) ||
        !getInt(cons, "freeze_ms", true, &freeze, error) ||
        !getInt(obj, "duration_ms", true, &point->duration_ms, error) ||
        !vmrpConsistencyFromString(requested, &point->requested, error) ||
        !vmrpConsistencyFromString(achieved, &point->achieved, error) ||
        !getObject(obj, "disks", json_type_array, &disks, error))
        goto cleanup;
    point->freeze_ms = freeze;
    {
        json_object *prot;
        if (json_object_object_get_ex(obj, "protected", &prot)) {
            if (!json_object_is_type(prot, json_type_boolean)) {
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "'protected' is not a boolean");
                goto cleanup;
            }
            point->protected_ = json_object_get_boolean(prot);
        }
    }

    for (point->state = 0; point->state < VMRP_POINT_STATE_LAST; point->state++) {
        if (g_str_equal(state, stateNames[point->state]))
            break;
    }
    if (point->state == VMRP_POINT_STATE_LAST) {
        g_autofree char *shown = g_strescape(state, NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "unknown state '%s'", shown);
        goto cleanup;
    }
    if (!g_str_equal(point->kind, "full") && !g_str_equal(point->kind, "incremental")) {
        g_autofree char *shown = g_strescape(point->kind, NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "unknown kind '%s'", shown);
        goto cleanup;
    }
    if (point->parent && !vmrpNameCheckPoint(point->parent, error))
        goto cleanup;
    if (!g_uuid_string_is_valid(point->domain_uuid)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "bad domain uuid");
        goto cleanup;
    }
    for (i = 0; i < json_object_array_length(disks); i++) {
        if (!parseDisk(point, json_object_array_get_idx(disks, i), error))
            goto cleanup;
    }
    if (!vmrpPointDigestsFromJSON(point, obj, error))
        goto cleanup;
    /* optional: the NVRAM and vTPM files, in points taken since they are kept */
    if (json_object_object_get_ex(obj, "files", &files) && files) {
        if (!json_object_is_type(files, json_type_array)) {
            fieldError(error, "files", false, "a list");
            goto cleanup;
        }
        for (i = 0; i < json_object_array_length(files); i++) {
            if (!parseFile(point, json_object_array_get_idx(files, i), error))
                goto cleanup;
        }
    }
    ok = true;

 cleanup:
    json_object_put(obj);
    return ok ? g_steal_pointer(&point) : NULL;
}
