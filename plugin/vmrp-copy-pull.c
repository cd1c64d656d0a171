/*
 * vmrp-copy-pull.c: rp-copy from an ssh:// repository back to a local one
 *
 * The point's files are fetched over SFTP into .creating-<id> at the local
 * repository (zeroes stay holes), each against the SHA-256 its SHA256SUMS
 * recorded when it was copied there; the copy is then checked locally as
 * any copy is (qemu-img, the backing chain, the data digests recorded when
 * the point was made) and only then renamed into place.  Both collections
 * are locked; the source is only read (the lock file aside).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-dest-repo.h"
#include "vmrp-error.h"
#include "vmrp-fault.h"
#include "vmrp-names.h"
#include "vmrp-point-digest.h"
#include "vmrp-rate.h"
#include "vmrp-verify.h"

#define PULL_MANIFEST_MAX (16 * 1024 * 1024)

typedef struct {
    const vmrpCopyOptions *opts;
    vmrpDest *src;
    vmrpDest *dst;
    char *points_rel;
    GHashTable *at_dest;
    vmrpCopyResult *res;
    const char *cur_id;
    uint64_t cur_base;
    uint64_t cur_total;
    uint64_t file_done;         /* of the file being fetched */
    vmrpRateLimit *limit;       /* --bandwidth, or NULL */
} pullState;

/* From fetch_file, in the fetching thread: the bandwidth limit sleeps here. */
static void
pullProgress(uint64_t done, uint64_t upto G_GNUC_UNUSED, void *opaque)
{
    pullState *st = opaque;

    if (st->limit && done > st->file_done)
        vmrpRateLimitTake(st->limit, done - st->file_done, st->opts->cancel);
    st->file_done = done;
    if (st->opts->progress)
        st->opts->progress(st->cur_id, MIN(st->cur_base + done, st->cur_total), st->cur_total,
                           st->opts->opaque);
}

/* The files (relative to the point) and folders of the remote point folder
 * @dir, point.json and SHA256SUMS aside. */
static bool
pullList(pullState *st, const char *dir, const char *rel, GPtrArray *files,
         GPtrArray *folders, int depth, GError **error)
{
    g_autofree char *here = rel ? g_build_filename(dir, rel, NULL) : g_strdup(dir);
    g_autoptr(GPtrArray) names = NULL;
    guint i;

    if (depth > 16 || !(names = st->src->ops->list(st->src, here, error))) {
        if (!(error && *error))
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s: cannot list %s",
                        st->src->spec, here);
        return false;
    }
    for (i = 0; i < names->len; i++) {
        const char *ent = g_ptr_array_index(names, i);
        g_autofree char *name = rel ? g_build_filename(rel, ent, NULL) : g_strdup(ent);
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autoptr(GError) local = NULL;
        g_autoptr(GPtrArray) sub = NULL;

        if (ent[0] == '.' ||
            (!rel && (g_str_equal(ent, "point.json") || g_str_equal(ent, VMRP_DEST_SUMS))))
            continue;
        if ((sub = st->src->ops->list(st->src, path, NULL))) {
            g_ptr_array_add(folders, g_strdup(name));
            if (!pullList(st, dir, name, files, folders, depth + 1, error))
                return false;
            continue;
        }
        if (st->src->ops->file_size(st->src, path, &local) < 0) {
            g_propagate_error(error, g_steal_pointer(&local));
            return false;
        }
        g_ptr_array_add(files, g_steal_pointer(&name));
    }
    return true;
}

static GHashTable *
pullSums(pullState *st, const char *dir, const char *id, GError **error)
{
    g_autofree char *rel = g_build_filename(dir, VMRP_DEST_SUMS, NULL);
    g_autofree char *text = st->src->ops->read_file(st->src, rel, PULL_MANIFEST_MAX, error);
    GHashTable *sums;

    if (!text) {
        if (!(error && *error))
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "restore point %s at %s has no " VMRP_DEST_SUMS, id, st->src->spec);
        return NULL;
    }
    if (!(sums = vmrpDestSumsParse(text)))
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s at %s: its " VMRP_DEST_SUMS " is damaged", id,
                    st->src->spec);
    return sums;
}

static bool
pullOne(pullState *st, vmrpPoint *point, GError **error)
{
    g_autofree char *src_dir = g_build_filename("collections", point->domain_uuid, "points",
                                                point->id, NULL);
    g_autofree char *tmp_rel = g_strconcat(st->points_rel, "/" VMRP_DEST_CREATING, point->id,
                                           NULL);
    g_autofree char *final_rel = g_build_filename(st->points_rel, point->id, NULL);
    g_autofree char *manifest_rel = g_build_filename(src_dir, "point.json", NULL);
    g_autofree char *manifest = NULL;
    g_autofree char *local = NULL;
    g_autofree char *problem = NULL;
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) folders = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) sums = NULL;
    g_autoptr(vmrpPoint) copy = NULL;
    guint i;

    if (point->state != VMRP_POINT_SUCCEEDED || vmrpPointVerifyFailed(point)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "restore point %s at %s is %s: %s",
                    point->id, st->src->spec,
                    point->state != VMRP_POINT_SUCCEEDED ? vmrpPointStateToString(point->state)
                                                         : "failed verification",
                    point->state != VMRP_POINT_SUCCEEDED ? point->message
                                                         : point->verify_reason);
        return false;
    }
    st->cur_id = point->id;
    st->cur_base = 0;
    st->cur_total = 0;
    if (!pullList(st, src_dir, NULL, files, folders, 0, error) ||
        !(sums = pullSums(st, src_dir, point->id, error)) ||
        !(manifest = st->src->ops->read_file(st->src, manifest_rel, PULL_MANIFEST_MAX, error)))
        return false;
    for (i = 0; i < files->len; i++) {
        g_autofree char *rel = g_build_filename(src_dir, g_ptr_array_index(files, i), NULL);
        st->cur_total += MAX(st->src->ops->file_size(st->src, rel, NULL), 0);
    }

    if (!vmrpDestMakeEmptyDir(st->dst, tmp_rel, folders, error))
        goto fail;
    for (i = 0; i < files->len; i++) {
        const char *name = g_ptr_array_index(files, i);
        g_autofree char *rel = g_build_filename(src_dir, name, NULL);
        g_autofree char *to_rel = g_build_filename(tmp_rel, name, NULL);
        g_autofree char *to = st->dst->ops->local_path(st->dst, to_rel);
        g_autofree char *hex = NULL;
        const char *want = g_hash_table_lookup(sums, name);

        st->file_done = 0;
        if (!st->src->ops->fetch_file(st->src, rel, to, pullProgress, st, st->opts->cancel,
                                      &hex, error))
            goto fail;
        if (!want || !g_str_equal(want, hex)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                        "restore point %s at %s: %s %s", point->id, st->src->spec, name,
                        want ? "does not match the SHA-256 recorded when it was copied there"
                             : "is not in " VMRP_DEST_SUMS);
            goto fail;
        }
        st->cur_base += MAX(st->src->ops->file_size(st->src, rel, NULL), 0);
        st->res->bytes += MAX(st->src->ops->file_size(st->src, rel, NULL), 0);
    }
    if (!vmrpFaultCheck("copy-before-check", error))
        goto fail;

    /* checked where it landed as any copy is, before it is renamed into place */
    if (!(copy = vmrpPointFromJSON(manifest, error)))
        goto fail;
    local = st->dst->ops->local_path(st->dst, tmp_rel);
    problem = vmrpVerifyPointDir(copy, local, NULL, st->opts->cancel, NULL, error);
    if (error && *error)
        goto fail;
    if (problem) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "the copy of restore point %s at %s does not check out: %s", point->id,
                    st->dst->spec, problem);
        goto fail;
    }
    if (!vmrpDestCommitPoint(st->dst, copy, tmp_rel, final_rel, error))
        goto fail;
    g_hash_table_add(st->at_dest, g_strdup(point->id));
    g_ptr_array_add(st->res->copied, g_strdup(point->id));
    if (st->opts->progress)
        st->opts->progress(point->id, st->cur_total, st->cur_total, st->opts->opaque);
    return true;

 fail:
    st->dst->ops->remove_tree(st->dst, tmp_rel, NULL);
    return false;
}

/* @point after the points it builds on that the destination lacks. */
static bool
pullWithChain(pullState *st, vmrpPoint *point, GError **error)
{
    g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpPointFree);
    g_autoptr(vmrpPoint) owned = NULL;     /* a parent found, until it joins the chain */
    vmrpPoint *p = point;
    gint i;

    while (p) {
        g_autofree char *parent = NULL;

        if (g_hash_table_contains(st->at_dest, p->id)) {
            g_autofree char *rel = g_build_filename(st->points_rel, p->id, "point.json", NULL);
            g_autofree char *text = st->dst->ops->read_file(st->dst, rel, PULL_MANIFEST_MAX,
                                                            NULL);
            g_autoptr(vmrpPoint) there = text ? vmrpPointFromJSON(text, NULL) : NULL;

            if (!there || !vmrpCopySameOrigin(p, there)) {
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "%s already holds a different point %s: nothing overwritten",
                            st->dst->spec, p->id);
                return false;
            }
            if (p == point)
                g_ptr_array_add(st->res->present, g_strdup(p->id));
            break;
        }
        if (chain->len > 100000) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "the chain of restore point %s loops", point->id);
            return false;
        }
        if (owned)
            g_ptr_array_add(chain, g_steal_pointer(&owned));
        if (!(parent = vmrpPointBackingPoint(p)))
            break;
        if (!(owned = vmrpDestRepoFindPoint(st->src, parent, error)))
            return false;
        p = owned;
    }
    for (i = (gint)chain->len - 1; i >= 0; i--) {
        if (!pullOne(st, g_ptr_array_index(chain, i), error))
            return false;
    }
    if (g_hash_table_contains(st->at_dest, point->id))
        return true;
    return pullOne(st, point, error);
}

vmrpCopyResult *
vmrpCopyFromDest(const char *src_spec, const char *id, const char *to,
                 const vmrpCopyOptions *opts, GError **error)
{
    vmrpCopyOptions defaults = { 0 };
    pullState st = { opts ? opts : &defaults };
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(vmrpDest) src = NULL;
    g_autoptr(vmrpDest) dst = NULL;
    g_autoptr(GHashTable) at_dest = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                          NULL);
    g_autoptr(vmrpCopyResult) res = NULL;
    g_autofree char *src_id = NULL;
    g_autofree char *name = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *lock_rel = NULL;
    g_autofree char *points_rel = NULL;
    int src_lock = -1, dst_lock = -1;
    bool ok = false;

    if (vmrpDestIsRemote(to)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "from an ssh:// repository, rp-copy copies to a local folder only");
        return NULL;
    }
    if (!(src = vmrpDestOpen(src_spec, error)) ||
        !(src_id = vmrpDestRepoGetId(src, error)) ||
        !(point = vmrpDestRepoFindPoint(src, id, error)) ||
        !(uuid = vmrpDestRepoFindCollection(src, point->domain_uuid, &name, error)))
        return NULL;
    lock_rel = g_build_filename("collections", point->domain_uuid, ".lock", NULL);
    points_rel = g_build_filename("collections", point->domain_uuid, "points", NULL);
    if ((src_lock = src->ops->lock(src, lock_rel, error)) < 0)
        return NULL;
    res = g_new0(vmrpCopyResult, 1);
    res->copied = g_ptr_array_new_with_free_func(g_free);
    res->present = g_ptr_array_new_with_free_func(g_free);
    res->skipped = g_ptr_array_new_with_free_func(g_free);
    st.src = src;
    st.points_rel = points_rel;
    st.at_dest = at_dest;
    st.res = res;
    if (st.opts->bandwidth)
        st.limit = vmrpRateLimitNew(st.opts->bandwidth);
    if ((dst = vmrpDestOpen(to, error)) &&
        vmrpDestPrepare(dst, src_id, point->domain_uuid, name, error) &&
        (dst_lock = dst->ops->lock(dst, lock_rel, error)) >= 0 &&
        vmrpDestScanPoints(dst, points_rel, at_dest, error)) {
        st.dst = dst;
        ok = pullWithChain(&st, point, error);
    }
    if (dst_lock >= 0)
        dst->ops->unlock(dst, dst_lock);
    src->ops->unlock(src, src_lock);
    vmrpRateLimitFree(st.limit);
    return ok ? g_steal_pointer(&res) : NULL;
}
