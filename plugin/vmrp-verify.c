/*
 * vmrp-verify.c: rp-verify
 *
 * An image's header is read here (nbd/vmrp-qcow2-read.h) and must name as
 * backing file exactly what the manifest says (or nothing), and no external
 * data file: a header that names another file is a finding, never followed.
 * Only then qemu-img check and qemu-nbd read it, given the format (qcow2)
 * explicitly.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmrp-verify.h"
#include "vmrp-error.h"
#include "vmrp-json.h"
#include "vmrp-nbd-digest.h"
#include "vmrp-verify-data.h"
#include "vmrp-point-digest.h"
#include "vmrp-qcow2-read.h"

#define VERIFY_MAX_CHAIN 100000

G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpPointDisk, vmrpPointDiskFree)

void
vmrpVerifyResultFree(vmrpVerifyResult *res)
{
    if (!res)
        return;
    g_free(res->id);
    g_free(res->domain_uuid);
    g_free(res->verified);
    g_free(res->reason);
    if (res->notes)
        g_ptr_array_unref(res->notes);
    g_free(res);
}

/* Runs @argv; its stdout and exit status (-1: killed or not run). */
static bool
verifyRun(const char *const *argv, char **ret_out, int *ret_status, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *err = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_CLOEXEC_PIPES,
                      NULL, NULL, ret_out, &err, &status, &local)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "cannot run %s: %s", argv[0],
                    local->message);
        return false;
    }
    *ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return true;
}

/* The header of @image, read here (nbd/vmrp-qcow2-read.h): qcow2, no
 * external data file, and the backing file @backing (NULL: none) in qcow2. */
static char *
verifyHeader(const char *image, const char *name, const char *backing)
{
    vmrpQcow2Header hdr = { 0 };
    g_autoptr(GError) local = NULL;
    char *ret = NULL;

    if (!vmrpQcow2ReadHeaderAt(image, &hdr, &local))
        return g_strdup_printf("image %s: %s", name, local->message);
    if (hdr.data_file) {
        ret = g_strdup_printf("image %s: its header names an external data file", name);
    } else if (g_strcmp0(hdr.backing, backing) != 0) {
        g_autofree char *shown = hdr.backing ? g_strescape(hdr.backing, NULL)
                                             : g_strdup("none");
        ret = g_strdup_printf("image %s: its header names backing file '%s', the manifest "
                              "%s", name, shown, backing ? backing : "none");
    } else if (backing && g_strcmp0(hdr.backing_format, "qcow2") != 0) {
        ret = g_strdup_printf("image %s: its backing file is not named as qcow2", name);
    }
    vmrpQcow2HeaderClear(&hdr);
    return ret;
}

/* qemu-img check: NULL when sound; leaked clusters are a note only. */
static char *
verifyCheck(const char *image, const char *name, GPtrArray *notes)
{
    const char *argv[] = { "qemu-img", "check", "-U", "-f", "qcow2", "--output=json",
                           image, NULL };
    g_autofree char *out = NULL;
    g_autoptr(GError) local = NULL;
    json_object *obj = NULL, *val = NULL;
    int64_t corrupt = 0, leaks = 0, errors = 0;
    int status;

    if (!verifyRun(argv, &out, &status, &local))
        return g_strdup_printf("image %s: %s", name, local->message);
    if ((obj = vmrpJSONParseObject(out ? out : "", NULL))) {
        if (json_object_object_get_ex(obj, "corruptions", &val))
            corrupt = json_object_get_int64(val);
        if (json_object_object_get_ex(obj, "leaks", &val))
            leaks = json_object_get_int64(val);
        if (json_object_object_get_ex(obj, "check-errors", &val))
            errors = json_object_get_int64(val);
        json_object_put(obj);
    }
    if (status == 0)
        return NULL;
    if (status == 3) {
        g_ptr_array_add(notes, g_strdup_printf("image %s: %" G_GINT64_FORMAT
                                               " leaked clusters (harmless)", name, leaks));
        return NULL;
    }
    if (status == 2)
        return g_strdup_printf("image %s: qemu-img check finds %" G_GINT64_FORMAT
                               " corruptions", name, corrupt);
    return g_strdup_printf("image %s: qemu-img check cannot complete (%" G_GINT64_FORMAT
                           " check errors, exit status %d)", name, errors, status);
}

char *
vmrpVerifyImage(const char *image, const char *name, const char *backing, GPtrArray *notes)
{
    g_autoptr(GPtrArray) own = g_ptr_array_new_with_free_func(g_free);
    char *problem;

    if ((problem = verifyHeader(image, name, backing)))
        return problem;
    return verifyCheck(image, name, notes ? notes : own);
}

/* The backing chain of @disk down to a full: each link a committed point of
 * the same collection whose manifest lists the disk with that image. */
static char *
verifyChain(const char *dir, const vmrpPointDisk *disk)
{
    g_autofree char *points = g_path_get_dirname(dir);
    g_autofree char *backing = g_strdup(disk->backing);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    guint depth = 0;

    while (backing) {
        g_autoptr(vmrpPointDisk) link = g_new0(vmrpPointDisk, 1);
        g_autofree char *parent = NULL;
        g_autofree char *pdir = NULL;
        g_autofree char *base = g_path_get_basename(backing);
        g_autoptr(vmrpPoint) pp = NULL;
        g_autoptr(GError) local = NULL;
        vmrpPointDisk *pd;

        link->backing = g_steal_pointer(&backing);
        if (!(parent = vmrpPointDiskBackingPoint(link)))
            return g_strdup_printf("disk %s: bad backing path %s", disk->target, link->backing);
        if (!g_hash_table_add(seen, g_strdup(parent)) || ++depth > VERIFY_MAX_CHAIN)
            return g_strdup_printf("disk %s: its backing chain loops at point %s",
                                   disk->target, parent);
        pdir = g_build_filename(points, parent, NULL);
        if (!(pp = vmrpRepoLoadPoint(pdir, parent, &local)))
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
        backing = g_strdup(pd->backing);
    }
    return NULL;
}

char *
vmrpVerifyPointDir(vmrpPoint *point, const char *dir, GHashTable *checked,
                   GCancellable *cancel, GPtrArray *notes_or_null, GError **error)
{
    g_autoptr(GPtrArray) own = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *notes = notes_or_null ? notes_or_null : own;
    guint i;

    if (point->manifest_digest) {
        g_autofree char *hex = vmrpPointManifestDigest(point);
        if (!g_str_equal(hex, point->manifest_digest))
            return g_strdup("point.json: its content does not match its digest");
    } else {
        g_ptr_array_add(notes, g_strdup("point.json has no digest (made by an older vmrp): "
                                        "its files and data are checked as far as they can be"));
    }
    if (point->file_digests) {
        g_autofree const char **names =
            (const char **)g_hash_table_get_keys_as_array(point->file_digests, NULL);

        for (i = 0; names[i]; i++) {
            g_autofree char *path = g_build_filename(dir, names[i], NULL);
            g_autoptr(GError) local = NULL;
            g_autofree char *hex = NULL;

            if (access(path, F_OK) < 0)
                return g_strdup_printf("%s is missing", names[i]);
            if (!(hex = vmrpDigestFile(path, point->digest_algorithm, &local)))
                return g_strdup_printf("%s: %s", names[i], local->message);
            if (!g_str_equal(hex, g_hash_table_lookup(point->file_digests, names[i])))
                return g_strdup_printf("%s does not match its digest", names[i]);
        }
    }
    /* the UEFI variables and vTPM state kept with the point (their names are
     * checked when the manifest is read: relative, inside the point) */
    for (i = 0; point->files && i < point->files->len; i++) {
        const vmrpPointFile *f = g_ptr_array_index(point->files, i);
        g_autofree char *path = g_build_filename(dir, f->path, NULL);
        g_autoptr(GError) local = NULL;
        g_autofree char *hex = NULL;

        if (access(path, F_OK) < 0)
            return g_strdup_printf("%s is missing", f->path);
        if (!(hex = vmrpDigestFile(path, VMRP_DIGEST_SHA256, &local)))
            return g_strdup_printf("%s: %s", f->path, local->message);
        if (g_strcmp0(hex, f->sha256) != 0)
            return g_strdup_printf("%s does not match its SHA-256 digest", f->path);
    }
    for (i = 0; i < point->disks->len; i++) {
        vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        g_autofree char *image = NULL;
        g_autofree char *hex = NULL;
        g_autoptr(GError) local = NULL;
        char *problem;

        if (disk->excluded)
            continue;
        image = g_build_filename(dir, disk->image, NULL);
        if (access(image, R_OK) < 0)
            return g_strdup_printf("image %s is %s", disk->image,
                                   errno == ENOENT ? "missing" : g_strerror(errno));
        if ((!(checked && g_hash_table_contains(checked, disk->image)) &&
             (problem = vmrpVerifyImage(image, disk->image, disk->backing, notes))) ||
            (problem = verifyChain(dir, disk)))
            return problem;
        if (!disk->data_digest) {
            g_ptr_array_add(notes, g_strdup_printf("image %s has no data digest (made by an "
                                                   "older vmrp)", disk->image));
            continue;
        }
        if (checked && g_hash_table_contains(checked, disk->image))
            hex = g_strdup(g_hash_table_lookup(checked, disk->image));
        else if (!(hex = vmrpVerifyDataDigest(image, disk->data_extents, disk->data_algorithm,
                                                   cancel, &local))) {
            if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return NULL;
            }
            return g_strdup_printf("image %s: cannot read its data: %s", disk->image,
                                   local->message);
        }
        if (!g_str_equal(hex, disk->data_digest))
            return g_strdup_printf("image %s: its data does not match the digest recorded "
                                   "when the point was made (changed or decayed since)",
                                   disk->image);
    }
    return NULL;
}

vmrpVerifyResult *
vmrpVerifyPoint(vmrpRepo *repo, const char *id, GCancellable *cancel, GError **error)
{
    g_autoptr(vmrpVerifyResult) res = g_new0(vmrpVerifyResult, 1);
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(GDateTime) now = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *dir = NULL;
    int lock;

    if (!(point = vmrpRepoFindPointEntry(repo, id, &dir, error)))
        return NULL;
    res->id = g_strdup(point->id);
    res->domain_uuid = g_strdup(point->domain_uuid);
    res->notes = g_ptr_array_new_with_free_func(g_free);
    /* nothing may change the point (a delete merging into it) while it is read */
    if ((lock = vmrpRepoLockCollection(repo, point->domain_uuid, error)) < 0)
        return NULL;
    g_clear_pointer(&point, vmrpPointFree);
    g_clear_pointer(&dir, g_free);
    if (!(point = vmrpRepoFindPointEntry(repo, id, &dir, error))) {
        close(lock);
        return NULL;
    }

    if (point->state == VMRP_POINT_DAMAGED)
        res->reason = g_strdup(point->message);
    else
        res->reason = vmrpVerifyPointDir(point, dir, NULL, cancel, res->notes, &local);
    if (local) {
        close(lock);
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    res->ok = res->reason == NULL;
    now = g_date_time_new_now_utc();
    res->verified = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");

    /* recorded in the manifest as it is now (a damaged one is not rewritten) */
    {
        g_autoptr(vmrpPoint) fresh = vmrpRepoLoadPoint(dir, id, NULL);

        if (fresh) {
            g_free(fresh->verified);
            g_free(fresh->verify_state);
            g_free(fresh->verify_reason);
            fresh->verified = g_strdup(res->verified);
            fresh->verify_state = g_strdup(res->ok ? "OK" : "Failed");
            fresh->verify_reason = g_strdup(res->reason);
            res->recorded = vmrpRepoPointSave(dir, fresh, error);
            if (!res->recorded) {
                close(lock);
                return NULL;
            }
        }
    }
    close(lock);
    return g_steal_pointer(&res);
}
