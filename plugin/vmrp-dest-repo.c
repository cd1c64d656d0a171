/*
 * vmrp-dest-repo.c: rp-list and rp-verify of a repository reached through a
 * destination's file operations (ssh://)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <json-c/json.h>

#include "vmrp-dest-repo.h"
#include "vmrp-digest.h"
#include "vmrp-error.h"
#include "vmrp-json.h"
#include "vmrp-names.h"
#include "vmrp-point-digest.h"
#include "vmrp-repo.h"

#define DEST_MANIFEST_MAX (16 * 1024 * 1024)
#define DEST_SMALL_MAX (1024 * 1024)

char *
vmrpDestRepoGetId(vmrpDest *dest, GError **error)
{
    g_autofree char *text = dest->ops->read_file(dest, "repository.json", DEST_SMALL_MAX,
                                                 error);
    char *id;

    if (!text) {
        if (!(error && *error))
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                        "%s is not a vmrp repository (no repository.json)", dest->spec);
        return NULL;
    }
    if (!(id = vmrpRepoIdFromText(text, error)))
        g_prefix_error(error, "%s: ", dest->spec);
    return id;
}

GPtrArray *
vmrpDestRepoListCollections(vmrpDest *dest, GError **error)
{
    g_autoptr(GPtrArray) ret = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_autoptr(GPtrArray) names = NULL;
    g_autofree char *id = NULL;
    guint i;

    if (!(id = vmrpDestRepoGetId(dest, error)))
        return NULL;
    if (!(names = dest->ops->list(dest, "collections", error))) {
        if (error && *error)
            return NULL;
        return g_steal_pointer(&ret);
    }
    for (i = 0; i < names->len; i++) {
        const char *uuid = g_ptr_array_index(names, i);
        g_autofree char *rel = NULL;
        g_autofree char *text = NULL;
        json_object *obj, *val;
        char **pair;

        if (!g_uuid_string_is_valid(uuid))
            continue;
        rel = g_build_filename("collections", uuid, "collection.json", NULL);
        text = dest->ops->read_file(dest, rel, DEST_SMALL_MAX, NULL);
        pair = g_new0(char *, 3);
        pair[0] = g_strdup(uuid);
        if (text && (obj = vmrpJSONParseObject(text, NULL))) {
            if (json_object_object_get_ex(obj, "name", &val) &&
                json_object_is_type(val, json_type_string))
                pair[1] = g_strdup(json_object_get_string(val));
            json_object_put(obj);
        }
        if (!pair[1])
            pair[1] = g_strdup("");
        g_ptr_array_add(ret, pair);
    }
    return g_steal_pointer(&ret);
}

char *
vmrpDestRepoFindCollection(vmrpDest *dest, const char *name_or_uuid, char **ret_name,
                           GError **error)
{
    g_autoptr(GPtrArray) list = vmrpDestRepoListCollections(dest, error);
    guint i;

    if (!list)
        return NULL;
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);

        if (g_str_equal(pair[0], name_or_uuid) || g_str_equal(pair[1], name_or_uuid)) {
            if (ret_name)
                *ret_name = g_strdup(pair[1]);
            return g_strdup(pair[0]);
        }
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                "%s holds no restore points of domain '%s'", dest->spec, name_or_uuid);
    return NULL;
}

static vmrpPoint *
loadPoint(vmrpDest *dest, const char *uuid, const char *id, GError **error)
{
    g_autofree char *rel = g_build_filename("collections", uuid, "points", id, "point.json",
                                            NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    vmrpPoint *point;

    if (!(text = dest->ops->read_file(dest, rel, DEST_MANIFEST_MAX, error))) {
        if (!(error && *error))
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "point.json is missing");
        return NULL;
    }
    if (!(point = vmrpPointFromJSON(text, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "point.json is damaged: %s",
                    local->message);
        return NULL;
    }
    if (!g_str_equal(point->id, id) || g_strcmp0(point->domain_uuid, uuid) != 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "point.json names point %s of domain %s", point->id,
                    point->domain_uuid ? point->domain_uuid : "?");
        vmrpPointFree(point);
        return NULL;
    }
    return point;
}

static gint
pointCompare(gconstpointer a, gconstpointer b)
{
    return strcmp((*(vmrpPoint *const *)a)->id, (*(vmrpPoint *const *)b)->id);
}

GPtrArray *
vmrpDestRepoListPoints(vmrpDest *dest, const char *uuid, GError **error)
{
    g_autofree char *rel = g_build_filename("collections", uuid, "points", NULL);
    g_autoptr(GPtrArray) ret = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpPointFree);
    g_autoptr(GPtrArray) names = NULL;
    guint i;

    if (!(names = dest->ops->list(dest, rel, error))) {
        if (error && *error)
            return NULL;
        return g_steal_pointer(&ret);
    }
    for (i = 0; i < names->len; i++) {
        const char *id = g_ptr_array_index(names, i);
        g_autoptr(GError) local = NULL;
        vmrpPoint *point;

        if (!vmrpNameCheckPoint(id, NULL))
            continue;       /* .creating-*: not a point yet */
        if (!(point = loadPoint(dest, uuid, id, &local)))
            point = vmrpPointNewDamaged(id, uuid, local->message);
        g_ptr_array_add(ret, point);
    }
    g_ptr_array_sort(ret, pointCompare);
    return g_steal_pointer(&ret);
}

vmrpPoint *
vmrpDestRepoFindPoint(vmrpDest *dest, const char *id, GError **error)
{
    g_autoptr(GPtrArray) list = NULL;
    guint i;

    if (!vmrpNameCheckPoint(id, error) || !(list = vmrpDestRepoListCollections(dest, error)))
        return NULL;
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);
        g_autofree char *rel = g_build_filename("collections", pair[0], "points", id, NULL);
        g_autoptr(GPtrArray) there = dest->ops->list(dest, rel, NULL);
        g_autoptr(GError) local = NULL;
        vmrpPoint *point;

        if (!there)
            continue;
        if (!(point = loadPoint(dest, pair[0], id, &local))) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "restore point %s at %s: %s",
                        id, dest->spec, local->message);
            return NULL;
        }
        return point;
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "no restore point '%s' at %s", id,
                dest->spec);
    return NULL;
}

static gint
compareNames(gconstpointer a, gconstpointer b, gpointer unused)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GHashTable *
vmrpDestSumsParse(const char *text)
{
    g_autoptr(GHashTable) sums = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    guint i;

    for (i = 0; lines[i]; i++) {
        const char *name;
        g_autofree char *hex = NULL;

        if (!*lines[i])
            continue;
        if (strlen(lines[i]) < 67 || lines[i][64] != ' ' || lines[i][65] != ' ')
            return NULL;
        hex = g_strndup(lines[i], 64);
        name = lines[i] + 66;
        if (!vmrpDigestIsHex(hex, VMRP_DIGEST_SHA256) || name[0] == '/' || strstr(name, "..") ||
            g_hash_table_contains(sums, name))
            return NULL;
        g_hash_table_insert(sums, g_strdup(name), g_steal_pointer(&hex));
    }
    return g_steal_pointer(&sums);
}

/* What the manifest says a file's digest is, and of which algorithm (NULL:
 * it does not say). */
static const char *
manifestDigest(vmrpPoint *point, const char *name, vmrpDigestAlgorithm *ret_algorithm)
{
    guint i;

    *ret_algorithm = point->digest_algorithm;
    if (point->file_digests && g_hash_table_lookup(point->file_digests, name))
        return g_hash_table_lookup(point->file_digests, name);
    *ret_algorithm = VMRP_DIGEST_SHA256;
    for (i = 0; point->files && i < point->files->len; i++) {
        const vmrpPointFile *f = g_ptr_array_index(point->files, i);
        if (g_str_equal(f->path, name))
            return f->sha256;
    }
    return NULL;
}

static bool
isImage(vmrpPoint *point, const char *name)
{
    guint i;

    for (i = 0; i < point->disks->len; i++) {
        const vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        if (!disk->excluded && g_strcmp0(disk->image, name) == 0)
            return true;
    }
    return false;
}

/* The first problem of the point @point (in @dir at @dest), or NULL. */
static char *
destVerifyPoint(vmrpDest *dest, vmrpPoint *point, const char *dir, GPtrArray *notes,
                GCancellable *cancel, GError **error)
{
    g_autofree char *sums_rel = g_build_filename(dir, VMRP_DEST_SUMS, NULL);
    g_autofree char *sums_text = NULL;
    g_autoptr(GHashTable) sums = NULL;
    g_autofree const char **names = NULL;
    guint i;

    if (point->manifest_digest) {
        g_autofree char *hex = vmrpPointManifestDigest(point);
        if (!g_str_equal(hex, point->manifest_digest))
            return g_strdup("point.json: its content does not match its digest");
    } else {
        g_ptr_array_add(notes, g_strdup("point.json has no digest (made by an older vmrp)"));
    }
    if (!(sums_text = dest->ops->read_file(dest, sums_rel, DEST_MANIFEST_MAX, error))) {
        if (error && *error)
            return NULL;
        return g_strdup(VMRP_DEST_SUMS " is missing (the record of the point's files taken "
                        "when it was copied there)");
    }
    if (!(sums = vmrpDestSumsParse(sums_text)))
        return g_strdup(VMRP_DEST_SUMS " is damaged");

    /* every file the manifest names is recorded, as the manifest has it */
    if (point->file_digests) {
        g_autofree const char **keys =
            (const char **)g_hash_table_get_keys_as_array(point->file_digests, NULL);
        for (i = 0; keys[i]; i++) {
            if (!g_hash_table_contains(sums, keys[i]))
                return g_strdup_printf("%s is not in " VMRP_DEST_SUMS, keys[i]);
        }
    }
    for (i = 0; point->files && i < point->files->len; i++) {
        const vmrpPointFile *f = g_ptr_array_index(point->files, i);
        if (!g_hash_table_contains(sums, f->path))
            return g_strdup_printf("%s is not in " VMRP_DEST_SUMS, f->path);
    }
    for (i = 0; i < point->disks->len; i++) {
        const vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        if (!disk->excluded && !g_hash_table_contains(sums, disk->image))
            return g_strdup_printf("image %s is not in " VMRP_DEST_SUMS, disk->image);
    }

    /* each recorded file read whole again, in name order */
    names = (const char **)g_hash_table_get_keys_as_array(sums, NULL);
    g_qsort_with_data(names, g_hash_table_size(sums), sizeof(char *), compareNames, NULL);
    for (i = 0; names[i]; i++) {
        const char *want = g_hash_table_lookup(sums, names[i]);
        vmrpDigestAlgorithm said_algo;
        const char *said = manifestDigest(point, names[i], &said_algo);
        g_autofree char *rel = g_build_filename(dir, names[i], NULL);
        g_autofree char *what = isImage(point, names[i]) ?
            g_strdup_printf("image %s", names[i]) : g_strdup(names[i]);
        /* read once against SHA256SUMS and, for a small file the manifest
         * has an XXH3-128 of, against that too */
        const vmrpDigestAlgorithm algos[] = { VMRP_DIGEST_SHA256, said_algo };
        guint n = said && said_algo != VMRP_DIGEST_SHA256 ? 2 : 1;
        g_auto(GStrv) hex = NULL;
        g_autoptr(GError) local = NULL;

        if (said && said_algo == VMRP_DIGEST_SHA256 && !g_str_equal(said, want))
            return g_strdup_printf("%s: " VMRP_DEST_SUMS " and the manifest disagree on its "
                                   "SHA-256", what);
        if (!(hex = dest->ops->digest_file(dest, rel, n, algos, cancel, &local))) {
            if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return NULL;
            }
            if (g_error_matches(local, VMRP_ERROR, VMRP_ERROR_NOT_FOUND))
                return g_strdup_printf("%s is missing", what);
            return g_strdup_printf("%s cannot be read: %s", what, local->message);
        }
        if (!g_str_equal(hex[0], want))
            return g_strdup_printf("%s does not match the SHA-256 recorded when it was copied "
                                   "there (changed or decayed since)", what);
        if (n == 2 && !g_str_equal(hex[1], said))
            return g_strdup_printf("%s does not match its digest in the manifest", what);
    }
    g_ptr_array_add(notes, g_strdup("checked over ssh: every file against its SHA-256 "
                                    "(no qemu-img check there)"));

    /* the backing chain: each parent a committed point there with its image */
    for (i = 0; i < point->disks->len; i++) {
        const vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        g_autofree char *parent = disk->excluded ? NULL : vmrpPointDiskBackingPoint(disk);
        g_autofree char *base = NULL;
        g_autoptr(vmrpPoint) pp = NULL;
        g_autoptr(GError) local = NULL;
        vmrpPointDisk *pd;

        if (!parent)
            continue;
        base = g_path_get_basename(disk->backing);
        if (!(pp = loadPoint(dest, point->domain_uuid, parent, &local)))
            return g_strdup_printf("disk %s: backing point %s: %s", disk->target, parent,
                                   local->message);
        if (pp->state != VMRP_POINT_SUCCEEDED)
            return g_strdup_printf("disk %s: backing point %s is %s", disk->target, parent,
                                   vmrpPointStateToString(pp->state));
        if (!(pd = vmrpPointFindDisk(pp, disk->target)) || g_strcmp0(pd->image, base) != 0)
            return g_strdup_printf("disk %s: backing point %s has no image %s", disk->target,
                                   parent, base);
        if (vmrpPointVerifyFailed(pp))
            return g_strdup_printf("disk %s: backing point %s failed verification: %s",
                                   disk->target, parent,
                                   pp->verify_reason ? pp->verify_reason : "");
    }
    return NULL;
}

vmrpVerifyResult *
vmrpDestRepoVerify(vmrpDest *dest, const char *id, GCancellable *cancel, GError **error)
{
    g_autoptr(vmrpVerifyResult) res = g_new0(vmrpVerifyResult, 1);
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(vmrpPoint) fresh = NULL;
    g_autoptr(GDateTime) now = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *lock_rel = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *manifest = NULL;
    g_autofree char *text = NULL;
    int lock;

    if (!(point = vmrpDestRepoFindPoint(dest, id, error)))
        return NULL;
    res->id = g_strdup(point->id);
    res->domain_uuid = g_strdup(point->domain_uuid);
    res->notes = g_ptr_array_new_with_free_func(g_free);
    lock_rel = g_build_filename("collections", point->domain_uuid, ".lock", NULL);
    dir = g_build_filename("collections", point->domain_uuid, "points", point->id, NULL);
    /* nothing may change the point while it is read */
    if ((lock = dest->ops->lock(dest, lock_rel, error)) < 0)
        return NULL;
    res->reason = destVerifyPoint(dest, point, dir, res->notes, cancel, &local);
    if (local) {
        dest->ops->unlock(dest, lock);
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    res->ok = res->reason == NULL;
    now = g_date_time_new_now_utc();
    res->verified = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");

    /* recorded in the manifest there */
    manifest = g_build_filename(dir, "point.json", NULL);
    if ((fresh = loadPoint(dest, point->domain_uuid, point->id, NULL))) {
        g_free(fresh->verified);
        g_free(fresh->verify_state);
        g_free(fresh->verify_reason);
        fresh->verified = g_strdup(res->verified);
        fresh->verify_state = g_strdup(res->ok ? "OK" : "Failed");
        fresh->verify_reason = g_strdup(res->reason);
        text = vmrpPointToJSON(fresh);
        res->recorded = dest->ops->write_file(dest, manifest, text, strlen(text), error);
        if (!res->recorded) {
            dest->ops->unlock(dest, lock);
            return NULL;
        }
    }
    dest->ops->unlock(dest, lock);
    return g_steal_pointer(&res);
}
