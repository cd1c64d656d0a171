/*
 * vmrp-point-digest.c: a point's digests and its last verification
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-point-digest.h"
#include "vmrp-names.h"
#include "vmrp-digest.h"
#include "vmrp-error.h"

void
vmrpPointDigestsClear(vmrpPoint *point)
{
    g_clear_pointer(&point->file_digests, g_hash_table_unref);
    g_clear_pointer(&point->manifest_digest, g_free);
    g_clear_pointer(&point->verified, g_free);
    g_clear_pointer(&point->verify_state, g_free);
    g_clear_pointer(&point->verify_reason, g_free);
}

static gint
compareNames(gconstpointer a, gconstpointer b, gpointer unused)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
addString(json_object *obj, const char *key, const char *val)
{
    if (val)
        json_object_object_add(obj, key, json_object_new_string(val));
}

void
vmrpPointDigestsToJSON(const vmrpPoint *point, json_object *obj)
{
    if (point->file_digests || point->manifest_digest) {
        json_object *dg = json_object_new_object();

        json_object_object_add(dg, "algorithm", json_object_new_string(
            vmrpDigestAlgorithmName(point->digest_algorithm)));
        addString(dg, "manifest", point->manifest_digest);
        if (point->file_digests) {
            json_object *files = json_object_new_object();
            g_autofree const char **names =
                (const char **)g_hash_table_get_keys_as_array(point->file_digests, NULL);
            size_t i;

            g_qsort_with_data(names, g_hash_table_size(point->file_digests), sizeof(char *),
                              compareNames, NULL);
            for (i = 0; names[i]; i++)
                addString(files, names[i], g_hash_table_lookup(point->file_digests, names[i]));
            json_object_object_add(dg, "files", files);
        }
        json_object_object_add(obj, "digests", dg);
    }
    addString(obj, "verified", point->verified);
    addString(obj, "verify_state", point->verify_state);
    addString(obj, "verify_reason", point->verify_reason);
}

/* "data_sha256", "data_xxh128" */
static char *
dataKey(vmrpDigestAlgorithm algorithm)
{
    return g_strconcat("data_", vmrpDigestAlgorithmName(algorithm), NULL);
}

void
vmrpPointDiskDigestToJSON(const vmrpPointDisk *disk, json_object *d)
{
    g_autofree char *key = dataKey(disk->data_algorithm);
    json_object *arr;
    guint i;

    if (!disk->data_digest)
        return;
    addString(d, key, disk->data_digest);
    arr = json_object_new_array();
    for (i = 0; disk->data_extents && i < disk->data_extents->len; i++) {
        const vmrpDigestExtent *e = &g_array_index(disk->data_extents, vmrpDigestExtent, i);
        json_object *pair = json_object_new_array();

        json_object_array_add(pair, json_object_new_uint64(e->offset));
        json_object_array_add(pair, json_object_new_uint64(e->length));
        json_object_array_add(arr, pair);
    }
    json_object_object_add(d, "data_extents", arr);
}

static bool
optString(json_object *obj, const char *key, char **ret, GError **error)
{
    json_object *val = NULL;

    if (!json_object_object_get_ex(obj, key, &val) || !val)
        return true;
    if (!json_object_is_type(val, json_type_string) ||
        strlen(json_object_get_string(val)) != (size_t)json_object_get_string_len(val)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "field '%s' is not a string", key);
        return false;
    }
    *ret = g_strdup(json_object_get_string(val));
    return true;
}

static bool
optDigest(json_object *obj, const char *key, vmrpDigestAlgorithm algorithm, char **ret,
          GError **error)
{
    if (!optString(obj, key, ret, error))
        return false;
    if (*ret && !vmrpDigestIsHex(*ret, algorithm)) {
        g_clear_pointer(ret, g_free);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "field '%s' is not a %s digest",
                    key, vmrpDigestAlgorithmName(algorithm));
        return false;
    }
    return true;
}

bool
vmrpPointDigestsFromJSON(vmrpPoint *point, json_object *obj, GError **error)
{
    json_object *dg = NULL;

    if (!optString(obj, "verified", &point->verified, error) ||
        !optString(obj, "verify_state", &point->verify_state, error) ||
        !optString(obj, "verify_reason", &point->verify_reason, error))
        return false;
    if (point->verify_state && !g_str_equal(point->verify_state, "OK") &&
        !g_str_equal(point->verify_state, "Failed")) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "field 'verify_state' is neither OK nor Failed");
        return false;
    }
    if (!json_object_object_get_ex(obj, "digests", &dg) || !dg)
        return true;
    if (!json_object_is_type(dg, json_type_object)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "field 'digests' is not an object");
        return false;
    }
    {
        g_autofree char *algo = NULL;
        json_object *files = NULL;

        if (!optString(dg, "algorithm", &algo, error))
            return false;
        if (!vmrpDigestAlgorithmParse(algo, &point->digest_algorithm)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "unknown digest algorithm in field 'digests'");
            return false;
        }
        if (!optDigest(dg, "manifest", point->digest_algorithm, &point->manifest_digest,
                       error))
            return false;
        if (!json_object_object_get_ex(dg, "files", &files) || !files)
            return true;
        if (!json_object_is_type(files, json_type_object)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "field 'files' of 'digests' is not an object");
            return false;
        }
        point->file_digests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        json_object_object_foreach(files, name, val) {
            g_autofree char *hex = NULL;

            if (!vmrpNameIsPlainFile(name)) {
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "bad file name in field 'digests'");
                return false;
            }
            if (!optDigest(files, name, point->digest_algorithm, &hex, error))
                return false;
            if (!hex) {
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "field '%s' of 'digests' is not a digest", name);
                return false;
            }
            (void)val;
            g_hash_table_insert(point->file_digests, g_strdup(name), g_steal_pointer(&hex));
        }
    }
    return true;
}

bool
vmrpPointDiskDigestFromJSON(vmrpPointDisk *disk, json_object *d, GError **error)
{
    json_object *arr = NULL;
    uint64_t end = 0;
    size_t i;
    vmrpDigestAlgorithm algo;

    /* one of data_sha256, data_xxh128 */
    for (algo = VMRP_DIGEST_SHA256; algo <= VMRP_DIGEST_XXH128; algo++) {
        g_autofree char *key = dataKey(algo);
        g_autofree char *hex = NULL;

        if (!optDigest(d, key, algo, &hex, error))
            return false;
        if (hex && disk->data_digest) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "field '%s' beside another data digest", key);
            return false;
        }
        if (hex) {
            disk->data_digest = g_steal_pointer(&hex);
            disk->data_algorithm = algo;
        }
    }
    if (!disk->data_digest)
        return true;
    if (!json_object_object_get_ex(d, "data_extents", &arr) || !arr ||
        !json_object_is_type(arr, json_type_array)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "field 'data_extents' is missing or not a list");
        return false;
    }
    disk->data_extents = g_array_sized_new(FALSE, FALSE, sizeof(vmrpDigestExtent),
                                           json_object_array_length(arr));
    for (i = 0; i < json_object_array_length(arr); i++) {
        json_object *pair = json_object_array_get_idx(arr, i);
        json_object *o, *l;
        vmrpDigestExtent e;

        if (!json_object_is_type(pair, json_type_array) ||
            json_object_array_length(pair) != 2 ||
            !json_object_is_type((o = json_object_array_get_idx(pair, 0)), json_type_int) ||
            !json_object_is_type((l = json_object_array_get_idx(pair, 1)), json_type_int) ||
            json_object_get_int64(o) < 0 || json_object_get_int64(l) <= 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "extent %zu of field 'data_extents' is not [offset, length]", i);
            return false;
        }
        e.offset = json_object_get_uint64(o);
        e.length = json_object_get_uint64(l);
        /* sorted, apart, and inside the disk */
        if ((i > 0 && e.offset <= end) || e.offset + e.length < e.offset ||
            e.offset + e.length > disk->size) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "extent %zu of field 'data_extents' is out of order or of the disk", i);
            return false;
        }
        end = e.offset + e.length;
        g_array_append_val(disk->data_extents, e);
    }
    return true;
}

char *
vmrpPointManifestDigest(vmrpPoint *point)
{
    char *saved[4] = { point->manifest_digest, point->verified, point->verify_state,
                       point->verify_reason };
    bool prot = point->protected_;
    g_autofree char *text = NULL;
    g_autoptr(vmrpDigest) dg = vmrpDigestNew(point->digest_algorithm);

    point->manifest_digest = point->verified = point->verify_state = NULL;
    point->verify_reason = NULL;
    point->protected_ = false;
    text = vmrpPointToJSON(point);
    point->manifest_digest = saved[0];
    point->verified = saved[1];
    point->verify_state = saved[2];
    point->verify_reason = saved[3];
    point->protected_ = prot;
    vmrpDigestAddBytes(dg, text, strlen(text));
    return vmrpDigestFinish(dg, NULL);
}

static bool
isImage(const vmrpPoint *point, const char *name)
{
    guint i;

    for (i = 0; i < point->disks->len; i++) {
        const vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        if (g_strcmp0(disk->image, name) == 0)
            return true;
    }
    return false;
}

bool
vmrpPointDigestFiles(vmrpPoint *point, const char *dir, GError **error)
{
    g_autoptr(GHashTable) files = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                        g_free, g_free);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) local = NULL;
    const char *ent;

    if (!(d = g_dir_open(dir, 0, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s", local->message);
        return false;
    }
    while ((ent = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, ent, NULL);
        char *hex;

        if (g_str_equal(ent, "point.json") || ent[0] == '.' || isImage(point, ent) ||
            !g_file_test(path, G_FILE_TEST_IS_REGULAR) ||
            g_file_test(path, G_FILE_TEST_IS_SYMLINK))
            continue;
        if (!(hex = vmrpDigestFile(path, point->digest_algorithm, error)))
            return false;
        g_hash_table_insert(files, g_strdup(ent), hex);
    }
    g_clear_pointer(&point->file_digests, g_hash_table_unref);
    point->file_digests = g_steal_pointer(&files);
    g_free(point->manifest_digest);
    point->manifest_digest = vmrpPointManifestDigest(point);
    return true;
}

bool
vmrpPointVerifyFailed(const vmrpPoint *point)
{
    return g_strcmp0(point->verify_state, "Failed") == 0;
}

static const vmrpPoint *
findIn(GPtrArray *points, const char *id)
{
    guint i;

    for (i = 0; i < points->len; i++) {
        const vmrpPoint *p = g_ptr_array_index(points, i);
        if (g_str_equal(p->id, id))
            return p;
    }
    return NULL;
}

bool
vmrpPointCheckVerified(GPtrArray *points, const vmrpPoint *point, GError **error)
{
    const vmrpPoint *p = point;
    guint hops = 0;

    while (p && hops++ <= points->len) {
        g_autofree char *parent = NULL;
        guint i;

        if (vmrpPointVerifyFailed(p)) {
            g_autofree char *what = p == point ?
                g_strdup_printf("restore point %s failed", point->id) :
                g_strdup_printf("restore point %s builds on point %s, which failed",
                                point->id, p->id);
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "%s verification at %s: %s (--force uses it all the same)", what,
                        p->verified ? p->verified : "?",
                        p->verify_reason ? p->verify_reason : "no reason recorded");
            return false;
        }
        for (i = 0; !parent && i < p->disks->len; i++)
            parent = vmrpPointDiskBackingPoint(g_ptr_array_index(p->disks, i));
        p = parent ? findIn(points, parent) : NULL;
    }
    return true;
}
