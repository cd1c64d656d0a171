/*
 * vmrp-copy.c: rp-copy and collection-sync
 *
 * A point is copied file by file as it is stored: its qcow2 images byte for
 * byte but only their allocated data (holes stay holes), so that a chain at
 * the destination is the same standard qcow2 chain with the same relative
 * backing names, and the digests recorded at creation hold there unchanged.
 * Both collections are locked for the copy (nothing merges into a point
 * while it is read); the source is only read.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmrp-copy.h"
#include "vmrp-dest.h"
#include "vmrp-error.h"
#include "vmrp-fault.h"
#include "vmrp-file.h"
#include "vmrp-names.h"
#include "vmrp-point-digest.h"
#include "vmrp-rate.h"
#include "vmrp-verify.h"
#include "vmrp-verify-data.h"

#define CREATING_PREFIX ".creating-"
#define COPY_MANIFEST_MAX (16 * 1024 * 1024)

typedef struct {
    vmrpRepo *repo;
    const vmrpCopyOptions *opts;
    vmrpDest *dest;
    char *uuid;
    char *name;
    char *points_rel;          /* collections/<uuid>/points at the destination */
    GPtrArray *points;         /* the source collection's, oldest first */
    GHashTable *at_dest;       /* ids committed at the destination */
    GPtrArray *plan;           /* the points to copy, oldest first (of @points) */
    vmrpCopyResult *res;
    vmrpRateLimit *limit;      /* --bandwidth, or NULL */
    /* progress of the point being copied */
    const char *cur_id;
    uint64_t cur_base;
    uint64_t cur_total;
    uint64_t file_done;        /* of the file being copied */
    vmrpDataFollow *follow;    /* its data digest, taken behind the copy, or NULL */
} copyState;

/* What a point's folder holds, listed once: announced, then copied. */
typedef struct {
    GPtrArray *files;          /* paths relative to the point; point.json is not one */
    GArray *bytes;             /* of uint64_t: the allocated bytes of each file */
    GPtrArray *folders;        /* parents first */
    uint64_t total;
} copyListing;

void
vmrpCopyResultFree(vmrpCopyResult *res)
{
    if (!res)
        return;
    g_ptr_array_unref(res->copied);
    g_ptr_array_unref(res->present);
    g_ptr_array_unref(res->skipped);
    g_free(res);
}

static vmrpCopyResult *
copyResultNew(void)
{
    vmrpCopyResult *res = g_new0(vmrpCopyResult, 1);

    res->copied = g_ptr_array_new_with_free_func(g_free);
    res->present = g_ptr_array_new_with_free_func(g_free);
    res->skipped = g_ptr_array_new_with_free_func(g_free);
    return res;
}

static vmrpPoint *
findIn(GPtrArray *points, const char *id)
{
    guint i;

    for (i = 0; i < points->len; i++) {
        vmrpPoint *p = g_ptr_array_index(points, i);
        if (g_str_equal(p->id, id))
            return p;
    }
    return NULL;
}

/* The destination repository, made when missing; never the source itself. */
static bool
copyOpenDest(copyState *st, const char *spec, GError **error)
{
    g_autofree char *src_id = NULL;

    if (!(st->dest = vmrpDestOpen(spec, error)))
        return false;
    if (g_str_equal(st->dest->ops->scheme, "file") &&
        g_strcmp0(st->dest->root, vmrpRepoGetPath(st->repo)) == 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "the destination %s is the source repository", st->dest->spec);
        return false;
    }
    if (!(src_id = vmrpRepoGetId(st->repo, error)))
        return false;
    return vmrpDestPrepare(st->dest, src_id, st->uuid, st->name, error);
}

/* The committed points at the destination; leftovers of interrupted copies
 * (.creating-*, with the collection locked: nobody writes them) go. */
static bool
copyScanDest(copyState *st, GError **error)
{
    st->at_dest = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return vmrpDestScanPoints(st->dest, st->points_rel, st->at_dest, error);
}

/* Whether @a and @b are the same point, as taken: the same domain, time,
 * checkpoint and images with the same data digests.  What a merge changes
 * (a prune at the destination: backing, parent, kind) does not count. */
bool
vmrpCopySameOrigin(const vmrpPoint *a, const vmrpPoint *b)
{
    guint i;

    if (g_strcmp0(a->id, b->id) != 0 || g_strcmp0(a->domain_uuid, b->domain_uuid) != 0 ||
        g_strcmp0(a->created, b->created) != 0 || g_strcmp0(a->checkpoint, b->checkpoint) != 0 ||
        a->disks->len != b->disks->len)
        return false;
    for (i = 0; i < a->disks->len; i++) {
        const vmrpPointDisk *da = g_ptr_array_index(a->disks, i);
        const vmrpPointDisk *db = vmrpPointFindDisk((vmrpPoint *)b, da->target);

        if (!db || g_strcmp0(da->image, db->image) != 0 || da->size != db->size ||
            g_strcmp0(da->data_digest, db->data_digest) != 0)
            return false;
    }
    return true;
}

/* A point at the destination must be this one, not another repository's
 * point of the same id. */
static bool
copySameAtDest(copyState *st, vmrpPoint *point, GError **error)
{
    g_autofree char *rel = g_build_filename(st->points_rel, point->id, "point.json", NULL);
    g_autofree char *text = NULL;
    g_autoptr(vmrpPoint) there = NULL;

    if (!(text = st->dest->ops->read_file(st->dest, rel, COPY_MANIFEST_MAX, error)) ||
        !(there = vmrpPointFromJSON(text, NULL))) {
        if (!(error && *error))
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "%s already holds a point %s that cannot be read: nothing copied",
                        st->dest->spec, point->id);
        return false;
    }
    if (!vmrpCopySameOrigin(point, there)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s already holds a different point %s (another repository's "
                    "collection of this domain?): nothing overwritten", st->dest->spec,
                    point->id);
        return false;
    }
    return true;
}

/* From the backend's copy_file, in the copying thread: the bandwidth limit
 * sleeps here, whatever the backend. */
static void
copyFileProgress(uint64_t done, uint64_t upto, void *opaque)
{
    copyState *st = opaque;

    if (st->follow)
        vmrpDataFollowWritten(st->follow, upto);
    if (st->limit && done > st->file_done)
        vmrpRateLimitTake(st->limit, done - st->file_done, st->opts->cancel);
    st->file_done = done;
    if (st->opts->progress)
        st->opts->progress(st->cur_id, MIN(st->cur_base + done, st->cur_total), st->cur_total,
                           st->opts->opaque);
}

/* The allocated bytes of a local file (what a sparse copy moves). */
static uint64_t
copyDataBytes(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    uint64_t sum = 0;
    off_t pos = 0;

    if (fd < 0)
        return 0;
    if (fstat(fd, &sb) == 0) {
        while (pos < sb.st_size) {
            off_t data = lseek(fd, pos, SEEK_DATA);
            off_t hole;

            if (data < 0 || (hole = lseek(fd, data, SEEK_HOLE)) < 0)
                break;
            sum += hole - data;
            pos = hole;
        }
    }
    close(fd);
    return sum;
}


static void
copyListingClear(copyListing *l)
{
    g_clear_pointer(&l->files, g_ptr_array_unref);
    g_clear_pointer(&l->bytes, g_array_unref);
    g_clear_pointer(&l->folders, g_ptr_array_unref);
}

/* Every file of the point's folder @dir (below @rel, NULL at the top), as
 * paths relative to the point, with its allocated bytes, and its folders,
 * into @l.  Anything but a regular file or a folder (a link, a device) is
 * refused: nothing of a point is left behind unsaid. */
static bool
copyListFiles(const char *dir, const char *rel, const char *id, copyListing *l, int depth,
              GError **error)
{
    g_autofree char *here = rel ? g_build_filename(dir, rel, NULL) : g_strdup(dir);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) sub = NULL;
    const char *ent;

    if (depth > 16 || !(d = g_dir_open(here, 0, &sub))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot copy restore point %s: %s", id,
                    sub ? sub->message : "its folders nest too deep");
        return false;
    }
    while ((ent = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(here, ent, NULL);
        g_autofree char *name = rel ? g_build_filename(rel, ent, NULL) : g_strdup(ent);
        struct stat sb;
        uint64_t bytes;

        /* SHA256SUMS: an ssh destination's record of its copy, not the point's */
        if ((!rel && (g_str_equal(ent, "point.json") || g_str_equal(ent, VMRP_DEST_SUMS))) ||
            ent[0] == '.')
            continue;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            g_ptr_array_add(l->folders, g_strdup(name));
            if (!copyListFiles(dir, name, id, l, depth + 1, error))
                return false;
            continue;
        }
        if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode)) {
            g_autofree char *shown = g_strescape(name, NULL);
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "cannot copy restore point %s: '%s' in its folder is not a regular "
                        "file", id, shown);
            return false;
        }
        bytes = copyDataBytes(path);
        l->total += bytes;
        g_array_append_val(l->bytes, bytes);
        g_ptr_array_add(l->files, g_steal_pointer(&name));
    }
    return true;
}

/* A damaged point, or one that failed verification, is not copied. */
static bool
copyCheckSource(const vmrpPoint *point, GError **error)
{
    if (point->state != VMRP_POINT_SUCCEEDED) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s is %s: %s", point->id,
                    vmrpPointStateToString(point->state), point->message ? point->message : "");
        return false;
    }
    if (vmrpPointVerifyFailed(point)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s failed verification at %s: %s", point->id,
                    point->verified, point->verify_reason ? point->verify_reason : "");
        return false;
    }
    return true;
}

/* The disk of @point whose image is the file @name, when its data has a digest. */
static const vmrpPointDisk *
copyDigestedImage(const vmrpPoint *point, const char *name)
{
    guint i;

    for (i = 0; i < point->disks->len; i++) {
        const vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);

        if (!disk->excluded && disk->data_digest && g_strcmp0(disk->image, name) == 0)
            return disk;
    }
    return NULL;
}

static char *
copyCheckImage(const char *image, void *opaque)
{
    const vmrpPointDisk *disk = opaque;
    return vmrpVerifyImage(image, disk->image, disk->backing, NULL);
}

/* @src to @rel at the destination.  Into a local folder @local, an image is
 * checked while it is written, in a thread of its own (vmrpDataFollow): its
 * data digest read back behind the copy, then its header and qemu-img check
 * while it is flushed; the digest goes into @checked for vmrpVerifyPointDir,
 * a problem into @ret_problem. */
static bool
copyFile(copyState *st, const vmrpPoint *point, const char *name, const char *src,
         const char *rel, const char *local, GHashTable *checked, char **ret_problem,
         GError **error)
{
    const vmrpPointDisk *disk = local ? copyDigestedImage(point, name) : NULL;
    g_autoptr(vmrpDataFollow) follow = NULL;
    g_autoptr(GError) unread = NULL;
    char *hex;
    bool ok;

    if (disk) {
        g_autofree char *to = g_build_filename(local, name, NULL);
        follow = vmrpDataFollowStart(src, to, disk->data_extents, disk->data_algorithm,
                                     copyCheckImage, (void *)disk, st->opts->cancel);
    }
    st->file_done = 0;
    st->follow = follow;
    ok = st->dest->ops->copy_file(st->dest, src, rel, copyFileProgress, st, st->opts->cancel,
                                  error);
    st->follow = NULL;
    if (!ok || !follow)
        return ok;
    /* what cannot be read here is read again by the check, which says why */
    if ((hex = vmrpDataFollowFinish(follow, ret_problem, &unread)))
        g_hash_table_insert(checked, g_strdup(name), hex);
    return true;
}

static bool
copyOne(copyState *st, vmrpPoint *point, const copyListing *l, GError **error)
{
    g_autofree char *src_dir = vmrpRepoPointDir(st->repo, st->uuid, point->id);
    g_autofree char *tmp_rel = NULL;
    g_autofree char *final_rel = g_build_filename(st->points_rel, point->id, NULL);
    g_autofree char *manifest = NULL;
    g_autofree char *manifest_path = NULL;
    g_autofree char *problem = NULL;
    g_autofree char *local = NULL;
    g_autoptr(vmrpPoint) copy = NULL;
    g_autoptr(GHashTable) checked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                          g_free);
    guint i;

    tmp_rel = g_strconcat(st->points_rel, "/" CREATING_PREFIX, point->id, NULL);
    local = st->dest->ops->local_path(st->dest, tmp_rel);

    /* every regular file of the point's folders, point.json last */
    st->cur_id = point->id;
    st->cur_base = 0;
    st->cur_total = l->total;
    manifest_path = g_build_filename(src_dir, "point.json", NULL);
    if (!(manifest = vmrpFileRead(manifest_path, COPY_MANIFEST_MAX, NULL, error)))
        return false;

    /* the UEFI variables and vTPM state have folders of their own */
    if (!vmrpDestMakeEmptyDir(st->dest, tmp_rel, l->folders, error))
        goto io_fail;
    for (i = 0; i < l->files->len; i++) {
        const char *name = g_ptr_array_index(l->files, i);
        g_autofree char *src = g_build_filename(src_dir, name, NULL);
        g_autofree char *rel = g_build_filename(tmp_rel, name, NULL);
        uint64_t bytes = g_array_index(l->bytes, uint64_t, i);

        if (!copyFile(st, point, name, src, rel, local, checked, &problem, error))
            goto io_fail;
        if (problem)
            goto bad_copy;
        st->cur_base += bytes;
        st->res->bytes += bytes;
    }
    if (!vmrpFaultCheck("copy-before-check", error))
        goto fail;

    /* checked where it landed, before it is renamed into place */
    if (!(copy = vmrpPointFromJSON(manifest, error)))
        goto fail;
    if (local || st->dest->ops->check_copy) {
        /* over ssh: each file read back against the SHA-256 of what was sent */
        problem = local ? vmrpVerifyPointDir(copy, local, checked, st->opts->cancel, NULL,
                                             error)
                        : st->dest->ops->check_copy(st->dest, tmp_rel, l->files, error);
        if (error && *error)
            goto fail;
        if (problem)
            goto bad_copy;
    }
    if (!vmrpDestCommitPoint(st->dest, copy, tmp_rel, final_rel, error))
        goto io_fail;
    g_hash_table_add(st->at_dest, g_strdup(point->id));
    g_ptr_array_add(st->res->copied, g_strdup(point->id));
    if (st->opts->progress)
        st->opts->progress(point->id, st->cur_total, st->cur_total, st->opts->opaque);
    return true;

 bad_copy:
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                "the copy of restore point %s at %s does not check out: %s", point->id,
                st->dest->spec, problem);
    goto fail;
 io_fail:
    /* a full file system, a lost connection: which copy, and where */
    g_prefix_error(error, "cannot copy restore point %s to %s: ", point->id, st->dest->spec);
 fail:
    st->dest->ops->remove_tree(st->dest, tmp_rel, NULL);
    return false;
}

/* Plans @point after the points it builds on that the destination lacks. */
static bool
copyPlanChain(copyState *st, vmrpPoint *point, GError **error)
{
    g_autoptr(GPtrArray) chain = g_ptr_array_new();
    vmrpPoint *p = point;
    gint i;

    while (p) {
        g_autofree char *parent = NULL;

        if (g_hash_table_contains(st->at_dest, p->id)) {
            if (!copySameAtDest(st, p, error))
                return false;
            if (p == point)
                g_ptr_array_add(st->res->present, g_strdup(p->id));
            break;
        }
        if (chain->len > st->points->len) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "the chain of restore point %s loops", point->id);
            return false;
        }
        if (!copyCheckSource(p, error))
            return false;
        g_ptr_array_add(chain, p);
        if (!(parent = vmrpPointBackingPoint(p)))
            break;
        if (!(p = findIn(st->points, parent))) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "restore point %s builds on point %s, which is not in the repository",
                        point->id, parent);
            return false;
        }
    }
    for (i = (gint)chain->len - 1; i >= 0; i--)
        g_ptr_array_add(st->plan, g_ptr_array_index(chain, i));
    return true;
}

/* Plans, oldest first, the points of the collection newer than the newest
 * at the destination. */
static bool
copyPlanSync(copyState *st, GError **error)
{
    g_autoptr(GHashTable) bad = g_hash_table_new(g_str_hash, g_str_equal);
    const char *newest = NULL;
    GHashTableIter iter;
    gpointer key;
    guint i;

    /* as Proxmox Backup Server's sync: only points newer than the newest
     * at the destination, so that what its retention pruned stays gone */
    g_hash_table_iter_init(&iter, st->at_dest);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        if (findIn(st->points, key) && (!newest || strcmp(key, newest) > 0))
            newest = key;
    }
    for (i = 0; i < st->points->len; i++) {
        vmrpPoint *p = g_ptr_array_index(st->points, i);
        g_autofree char *parent = vmrpPointBackingPoint(p);

        if (newest && strcmp(p->id, newest) < 0 && !g_hash_table_contains(st->at_dest, p->id))
            continue;
        if (g_hash_table_contains(st->at_dest, p->id)) {
            if (!copySameAtDest(st, p, error))
                return false;
            g_ptr_array_add(st->res->present, g_strdup(p->id));
            continue;
        }
        /* one bad point does not stop the others: it and what builds on it wait */
        if (p->state != VMRP_POINT_SUCCEEDED || vmrpPointVerifyFailed(p) ||
            (parent && g_hash_table_contains(bad, parent))) {
            g_ptr_array_add(st->res->skipped, g_strdup_printf(
                "%s: %s", p->id, p->state != VMRP_POINT_SUCCEEDED ? p->message :
                vmrpPointVerifyFailed(p) ? "it failed verification" :
                "it builds on a point that was not copied"));
            g_hash_table_add(bad, p->id);
            continue;
        }
        g_ptr_array_add(st->plan, p);
    }
    return true;
}

/* Says what will be copied (the input is checked), then copies it. */
static bool
copyPlanned(copyState *st, GError **error)
{
    guint n = st->plan->len;
    g_autofree const char **ids = g_new0(const char *, n + 1);
    g_autofree uint64_t *bytes = g_new0(uint64_t, n + 1);
    g_autoptr(GArray) lists = g_array_sized_new(FALSE, TRUE, sizeof(copyListing), n);
    guint i;

    g_array_set_clear_func(lists, (GDestroyNotify)copyListingClear);
    g_array_set_size(lists, n);
    for (i = 0; i < n; i++) {
        vmrpPoint *p = g_ptr_array_index(st->plan, i);
        copyListing *l = &g_array_index(lists, copyListing, i);
        /* listed under the collection's lock (copyRun) */
        g_autofree char *dir = vmrpRepoPointDir(st->repo, st->uuid, p->id);

        ids[i] = p->id;
        l->files = g_ptr_array_new_with_free_func(g_free);
        l->bytes = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        l->folders = g_ptr_array_new_with_free_func(g_free);
        if (!copyListFiles(dir, NULL, p->id, l, 0, error))
            return false;
        bytes[i] = l->total;
    }
    if (st->opts->started)
        st->opts->started(ids, bytes, n, st->opts->opaque);
    if (st->opts->bandwidth)
        st->limit = vmrpRateLimitNew(st->opts->bandwidth);
    for (i = 0; i < n; i++) {
        if (!copyOne(st, g_ptr_array_index(st->plan, i), &g_array_index(lists, copyListing, i),
                     error))
            return false;
    }
    return true;
}

static void
copyStateClear(copyState *st)
{
    g_free(st->uuid);
    g_free(st->name);
    g_free(st->points_rel);
    if (st->points)
        g_ptr_array_unref(st->points);
    if (st->at_dest)
        g_hash_table_unref(st->at_dest);
    if (st->plan)
        g_ptr_array_unref(st->plan);
    vmrpRateLimitFree(st->limit);
    vmrpDestFree(st->dest);
    vmrpCopyResultFree(st->res);
}

static vmrpCopyResult *
copyRun(vmrpRepo *repo, const char *uuid, const char *name, const char *id, const char *dest,
        const vmrpCopyOptions *opts, GError **error)
{
    vmrpCopyOptions defaults = { 0 };
    copyState st = { repo, opts ? opts : &defaults };
    vmrpCopyResult *ret = NULL;
    g_autofree char *lock_rel = NULL;
    int src_lock = -1;
    int dst_lock = -1;

    st.uuid = g_strdup(uuid);
    st.name = g_strdup(name);
    st.points_rel = g_build_filename("collections", uuid, "points", NULL);
    st.res = copyResultNew();
    st.plan = g_ptr_array_new();
    lock_rel = g_build_filename("collections", uuid, ".lock", NULL);

    if ((src_lock = vmrpRepoLockCollection(repo, uuid, error)) < 0)
        goto cleanup;
    if (!(st.points = vmrpRepoListPoints(repo, uuid, error)) ||
        !copyOpenDest(&st, dest, error) ||
        (dst_lock = st.dest->ops->lock(st.dest, lock_rel, error)) < 0 ||
        !copyScanDest(&st, error))
        goto cleanup;

    if (id) {
        vmrpPoint *point = findIn(st.points, id);
        if (!point) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "no restore point '%s'", id);
            goto cleanup;
        }
        if (!copyPlanChain(&st, point, error))
            goto cleanup;
    } else if (!copyPlanSync(&st, error)) {
        goto cleanup;
    }
    if (!copyPlanned(&st, error))
        goto cleanup;
    ret = g_steal_pointer(&st.res);

 cleanup:
    if (dst_lock >= 0)
        st.dest->ops->unlock(st.dest, dst_lock);
    if (src_lock >= 0)
        close(src_lock);
    copyStateClear(&st);
    return ret;
}

vmrpCopyResult *
vmrpCopyPoint(vmrpRepo *repo, const char *id, const char *dest, const vmrpCopyOptions *opts,
              GError **error)
{
    g_autoptr(vmrpPoint) point = NULL;

    if (!(point = vmrpRepoFindPointEntry(repo, id, NULL, error)))
        return NULL;
    return copyRun(repo, point->domain_uuid, point->domain_name, point->id, dest, opts, error);
}

vmrpCopyResult *
vmrpCopySync(vmrpRepo *repo, const char *domain, const char *dest, const vmrpCopyOptions *opts,
             GError **error)
{
    g_autofree char *uuid = NULL;
    g_autoptr(GPtrArray) list = NULL;
    const char *name = domain;
    guint i;

    if (!(uuid = vmrpRepoFindCollection(repo, domain, error)) ||
        !(list = vmrpRepoListCollections(repo, error)))
        return NULL;
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);
        if (g_str_equal(pair[0], uuid) && !pair[2])
            name = pair[1];
    }
    return copyRun(repo, uuid, name, NULL, dest, opts, error);
}
