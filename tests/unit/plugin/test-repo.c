/*
 * test-repo.c: the repository on disk: creation, refusal of what is not
 * ours, atomic commit of points, stale cleanup, locking, permissions
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmrp-test.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-repo.h"

#define UUID "6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11"

static char *tmpdir;

static int
setup(void)
{
    tmpdir = g_dir_make_tmp("vmrp-test-repo-XXXXXX", NULL);
    return tmpdir ? 0 : -1;
}

static int
teardown(void)
{
    vmrpFileRemoveTree(tmpdir, NULL);
    g_free(tmpdir);
    return 0;
}

static char *
sub(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static mode_t
modeOf(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (sb.st_mode & 07777) : 0;
}

static void
testCreate(void)
{
    g_autofree char *path = sub("repo-create");
    g_autofree char *manifest = g_build_filename(path, "repository.json", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpRepo) none = vmrpRepoOpen(path, false, &error);
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpRepo) again = NULL;

    CU_ASSERT_PTR_NULL(none);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND));
    CU_ASSERT_FALSE(g_file_test(path, G_FILE_TEST_EXISTS));

    repo = vmrpRepoOpen(path, true, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(repo);
    CU_ASSERT_EQUAL(modeOf(path), 0700);
    CU_ASSERT_EQUAL(modeOf(manifest), 0600);
    again = vmrpRepoOpen(path, false, NULL);
    CU_ASSERT_PTR_NOT_NULL(again);
}

static void
testRefuse(void)
{
    g_autofree char *file = sub("a-file");
    g_autofree char *foreign = sub("foreign");
    g_autofree char *foreign_file = g_build_filename(foreign, "photo.jpg", NULL);
    g_autofree char *foreign_collections = g_build_filename(foreign, "collections", NULL);
    g_autofree char *future = sub("future");
    g_autofree char *future_manifest = g_build_filename(future, "repository.json", NULL);
    g_autofree char *garbage = sub("garbage");
    g_autofree char *garbage_manifest = g_build_filename(garbage, "repository.json", NULL);
    g_autoptr(GError) error = NULL;

    g_file_set_contents(file, "x", 1, NULL);
    CU_ASSERT_PTR_NULL(vmrpRepoOpen(file, true, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    g_clear_error(&error);

    g_mkdir(foreign, 0700);
    g_file_set_contents(foreign_file, "x", 1, NULL);
    CU_ASSERT_PTR_NULL(vmrpRepoOpen(foreign, true, &error));
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error->message, "not a vmrp repository") : NULL);
    g_clear_error(&error);
    /* nothing was written into the foreign folder */
    CU_ASSERT_FALSE(g_file_test(foreign_collections, G_FILE_TEST_EXISTS));

    g_mkdir(future, 0700);
    g_file_set_contents(future_manifest, "{\"format\": 99}", -1, NULL);
    CU_ASSERT_PTR_NULL(vmrpRepoOpen(future, false, &error));
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error->message, "unsupported format 99") : NULL);
    g_clear_error(&error);

    g_mkdir(garbage, 0700);
    g_file_set_contents(garbage_manifest, "{\"format\": 1", -1, NULL);
    CU_ASSERT_PTR_NULL(vmrpRepoOpen(garbage, false, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
}

static vmrpPoint *
newPoint(void)
{
    vmrpPoint *point = vmrpPointNew("vm1", UUID);
    vmrpPointDisk *disk = vmrpPointAddDisk(point, "vda");

    disk->image = g_strdup("vda.qcow2");
    disk->source = g_strdup("/images/vm1.qcow2");
    disk->format = g_strdup("qcow2");
    return point;
}

static void
writeFile(const char *dir, const char *name, const char *text)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    CU_ASSERT_TRUE(g_file_set_contents(path, text, -1, NULL));
}

/* A committed point with its files; @parent (may be NULL) is the point its
 * image is backed by. */
static char *
commitPoint(vmrpRepo *repo, vmrpPoint *point, const vmrpPoint *parent)
{
    vmrpPointDisk *disk = vmrpPointFindDisk(point, "vda");
    char *dir;

    if (parent) {
        point->parent = g_strdup(parent->id);
        disk->backing = g_strdup_printf("../%s/vda.qcow2", parent->id);
    }
    dir = vmrpRepoPointBegin(repo, point, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    writeFile(dir, "vda.qcow2", "data");
    writeFile(dir, "domain.xml", "<domain/>");
    CU_ASSERT_TRUE_FATAL(vmrpRepoPointCommit(repo, point, &dir, NULL));
    return dir;
}

static void
testPointLifecycle(void)
{
    g_autofree char *path = sub("repo-points");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(vmrpPoint) point = newPoint();
    g_autoptr(vmrpPoint) found = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GPtrArray) creating = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *image = NULL;
    g_autofree char *found_dir = NULL;
    g_autofree char *uuid = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(repo);
    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    dir = vmrpRepoPointBegin(repo, point, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_EQUAL(modeOf(dir), 0700);
    image = g_build_filename(dir, "vda.qcow2", NULL);
    g_file_set_contents(image, "data", 4, NULL);
    writeFile(dir, "domain.xml", "<domain/>");

    /* while being created it is not a point */
    list = vmrpRepoListPoints(repo, UUID, NULL);
    CU_ASSERT_EQUAL(list->len, 0);
    g_clear_pointer(&list, g_ptr_array_unref);
    creating = vmrpRepoListCreating(repo, UUID, NULL);
    CU_ASSERT_EQUAL(creating->len, 1);
    /* (no vmrp holds the lock here: its creator is gone) */
    CU_ASSERT_PTR_NULL(vmrpRepoFindPoint(repo, point->id, NULL, &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_INVALID));
    g_clear_error(&error);

    CU_ASSERT_TRUE_FATAL(vmrpRepoPointCommit(repo, point, &dir, NULL));
    CU_ASSERT_TRUE(g_str_has_suffix(dir, point->id));
    list = vmrpRepoListPoints(repo, UUID, NULL);
    CU_ASSERT_EQUAL(list->len, 1);
    found = vmrpRepoFindPoint(repo, point->id, &found_dir, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(found);
    CU_ASSERT_EQUAL(found->state, VMRP_POINT_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(found_dir, dir);

    uuid = vmrpRepoFindCollection(repo, "vm1", NULL);
    CU_ASSERT_STRING_EQUAL(uuid, UUID);
    CU_ASSERT_PTR_NULL(vmrpRepoFindCollection(repo, "vm2", NULL));

    /* hostile ids never reach the file system */
    CU_ASSERT_PTR_NULL(vmrpRepoFindPoint(repo, "../../repository.json", NULL, &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID) ||
                   error != NULL);
}

static void
testStaleAndDamaged(void)
{
    g_autofree char *path = sub("repo-stale");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(vmrpPoint) good = newPoint();
    g_autoptr(vmrpPoint) crashed = newPoint();
    g_autofree char *good_dir = NULL;
    g_autofree char *crashed_dir = NULL;
    g_autofree char *manifest = NULL;
    g_auto(GStrv) stale = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    good_dir = vmrpRepoPointBegin(repo, good, NULL);
    CU_ASSERT_TRUE_FATAL(vmrpRepoPointCommit(repo, good, &good_dir, NULL));
    crashed_dir = vmrpRepoPointBegin(repo, crashed, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(crashed_dir);

    stale = vmrpRepoCleanStale(repo, UUID, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stale);
    CU_ASSERT_EQUAL(g_strv_length(stale), 1);
    CU_ASSERT_STRING_EQUAL(stale[0], crashed->id);
    CU_ASSERT_FALSE(g_file_test(crashed_dir, G_FILE_TEST_EXISTS));
    CU_ASSERT_TRUE(g_file_test(good_dir, G_FILE_TEST_IS_DIR));

    /* a damaged manifest is listed as such, with the reason */
    manifest = g_build_filename(good_dir, "point.json", NULL);
    g_file_set_contents(manifest, "{\"format\": 1, \"id\": 3}", -1, NULL);
    list = vmrpRepoListPoints(repo, UUID, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_EQUAL_FATAL(list->len, 1);
    CU_ASSERT_EQUAL(((vmrpPoint *)g_ptr_array_index(list, 0))->state, VMRP_POINT_DAMAGED);
    CU_ASSERT_STRING_EQUAL(((vmrpPoint *)g_ptr_array_index(list, 0))->message,
                           "point.json: field 'id' is not a string");
}

static char *
replaceOnce(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);

    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    return g_strdup_printf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

/* The reason a damaged point's manifest gives, in words. */
static char *
damageOf(vmrpRepo *repo, const char *id)
{
    g_autoptr(GPtrArray) list = vmrpRepoListPoints(repo, UUID, NULL);
    size_t i;

    for (i = 0; list && i < list->len; i++) {
        vmrpPoint *p = g_ptr_array_index(list, i);
        if (g_str_equal(p->id, id))
            return p->state == VMRP_POINT_DAMAGED ? g_strdup(p->message) : g_strdup("-");
    }
    return g_strdup("not listed");
}

/* One damaged point never hides the others; each damage says what it is. */
static void
testDamagedPoints(void)
{
    g_autofree char *path = sub("repo-damaged");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(vmrpPoint) p1 = newPoint();
    g_autoptr(vmrpPoint) p2 = newPoint();
    g_autoptr(vmrpPoint) p3 = newPoint();
    g_autoptr(vmrpPoint) found = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *d1 = NULL, *d2 = NULL, *d3 = NULL;
    g_autofree char *text = NULL;
    g_autofree char *manifest = NULL;
    g_autofree char *image = NULL;
    g_autofree char *found_dir = NULL;
    static const struct {
        const char *edit;       /* "truncate:N", or the new manifest */
        const char *reason;
    } cases[] = {
        { "truncate:40", "point.json: truncated JSON at byte 40" },
        { "", "point.json: empty file" },
        { "{\"format\": 7}", "point.json: unsupported manifest format 7 (this vmrp reads 1)" },
        { "[1, 2]", "point.json: not a JSON object" },
        { "{\"format\": 1} x", "point.json: trailing data after the JSON at byte 14" },
        { "size", NULL },   /* the disk's size as a string */
        { "nodisks", NULL },
    };
    size_t i;

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    d1 = commitPoint(repo, p1, NULL);
    d2 = commitPoint(repo, p2, p1);
    d3 = commitPoint(repo, p3, p2);
    manifest = g_build_filename(d2, "point.json", NULL);
    CU_ASSERT_TRUE_FATAL(g_file_get_contents(manifest, &text, NULL, NULL));

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *reason = NULL;
        g_autofree char *edited = NULL;
        const char *want;

        if (g_str_has_prefix(cases[i].edit, "truncate:"))
            edited = g_strndup(text, atoi(cases[i].edit + strlen("truncate:")));
        else if (g_str_equal(cases[i].edit, "size"))
            edited = replaceOnce(text, "\"size\"", "\"size\": \"0\", \"old_size\"");
        else if (g_str_equal(cases[i].edit, "nodisks"))
            edited = replaceOnce(text, "\"disks\"", "\"dusks\"");
        else
            edited = g_strdup(cases[i].edit);
        CU_ASSERT_TRUE_FATAL(g_file_set_contents(manifest, edited, -1, NULL));
        reason = damageOf(repo, p2->id);
        want = cases[i].reason;
        if (!want && g_str_equal(cases[i].edit, "size"))
            want = "point.json: disk vda: field 'size' is not a number (a non-negative integer)";
        else if (!want)
            want = "point.json: missing field 'disks'";
        CU_ASSERT_STRING_EQUAL(reason, want);
        /* the others are listed, whole */
        g_free(reason);
        reason = damageOf(repo, p1->id);
        CU_ASSERT_STRING_EQUAL(reason, "-");
        g_free(reason);
        reason = damageOf(repo, p3->id);
        CU_ASSERT_STRING_EQUAL(reason, "-");
    }

    /* restores refuse it, with the reason; rp-info and rp-delete see it */
    CU_ASSERT_PTR_NULL(vmrpRepoFindPoint(repo, p2->id, NULL, &error));
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error->message, "is damaged: point.json: ") : NULL);
    found = vmrpRepoFindPointEntry(repo, p2->id, &found_dir, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(found);
    CU_ASSERT_EQUAL(found->state, VMRP_POINT_DAMAGED);
    CU_ASSERT_TRUE(g_str_has_prefix(found->checkpoint, "vmrp-") &&
                   g_str_equal(found->checkpoint + 5, p2->id));
    CU_ASSERT_STRING_EQUAL(found_dir, d2);

    /* a missing image: that point and the ones built on it */
    CU_ASSERT_TRUE_FATAL(g_file_set_contents(manifest, text, -1, NULL));
    image = g_build_filename(d1, "vda.qcow2", NULL);
    CU_ASSERT_EQUAL(unlink(image), 0);
    {
        g_autofree char *r1 = damageOf(repo, p1->id);
        g_autofree char *r2 = damageOf(repo, p2->id);
        g_autofree char *r3 = damageOf(repo, p3->id);
        g_autofree char *want = g_strdup_printf("backing image ../%s/vda.qcow2 of disk vda "
                                                "is missing", p1->id);
        g_autofree char *want3 = g_strdup_printf("it builds on damaged point %s", p2->id);

        CU_ASSERT_STRING_EQUAL(r1, "image vda.qcow2 is missing");
        CU_ASSERT_STRING_EQUAL(r2, want);
        CU_ASSERT_STRING_EQUAL(r3, want3);
    }
}

/* Names read from the folder are checked as ids before a path is built:
 * .creating-.. or .creating- never make the cleanup reach out of its folder. */
static void
testHostileNames(void)
{
    g_autofree char *path = sub("repo-hostile");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autofree char *points = g_build_filename(path, "collections", UUID, "points", NULL);
    g_autofree char *dots = g_build_filename(points, ".creating-..", NULL);
    g_autofree char *empty = g_build_filename(points, ".creating-", NULL);
    g_autofree char *del = g_build_filename(points, "...deleting", NULL);
    g_auto(GStrv) stale = NULL;
    g_autoptr(GPtrArray) list = NULL;

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    CU_ASSERT_EQUAL(g_mkdir(dots, 0700), 0);
    CU_ASSERT_EQUAL(g_mkdir(empty, 0700), 0);
    CU_ASSERT_EQUAL(g_mkdir(del, 0700), 0);
    stale = vmrpRepoCleanStale(repo, UUID, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stale);
    /* no id reaches a caller (who builds the state folder's path from it) */
    CU_ASSERT_EQUAL(g_strv_length(stale), 0);
    CU_ASSERT_TRUE(g_file_test(dots, G_FILE_TEST_IS_DIR));
    list = vmrpRepoListCreating(repo, UUID, NULL);
    CU_ASSERT_TRUE(list && list->len == 0);
}

/* A half point whose creator holds the lock is Creating; one whose creator is
 * gone is Failed, and cannot be found as a point. */
static void
testInterrupted(void)
{
    g_autofree char *path = sub("repo-interrupted");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(vmrpPoint) point = newPoint();
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = NULL;
    int lock;

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    lock = vmrpRepoLockCollection(repo, UUID, NULL);
    CU_ASSERT_TRUE_FATAL(lock >= 0);
    dir = vmrpRepoPointBegin(repo, point, NULL);
    list = vmrpRepoListCreating(repo, UUID, NULL);
    CU_ASSERT_TRUE_FATAL(list && list->len == 1);
    CU_ASSERT_EQUAL(((vmrpPoint *)g_ptr_array_index(list, 0))->state, VMRP_POINT_CREATING);
    CU_ASSERT_PTR_NULL(vmrpRepoFindPoint(repo, point->id, NULL, &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_BUSY));
    g_clear_error(&error);
    g_clear_pointer(&list, g_ptr_array_unref);

    close(lock);
    list = vmrpRepoListCreating(repo, UUID, NULL);
    CU_ASSERT_TRUE_FATAL(list && list->len == 1);
    CU_ASSERT_EQUAL(((vmrpPoint *)g_ptr_array_index(list, 0))->state, VMRP_POINT_FAILED);
    CU_ASSERT_STRING_EQUAL(((vmrpPoint *)g_ptr_array_index(list, 0))->message,
                           "interrupted: the creating process ended");
    CU_ASSERT_PTR_NULL(vmrpRepoFindPoint(repo, point->id, NULL, &error));
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error->message,
                                          "is not complete: interrupted") : NULL);
}

/* A damaged collection.json hides no other collection, and rp-create's
 * EnsureCollection sets it aside and goes on. */
static void
testDamagedCollection(void)
{
    g_autofree char *path = sub("repo-damaged-collection");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autofree char *manifest = g_build_filename(path, "collections", UUID,
                                                 "collection.json", NULL);
    g_autofree char *aside = g_strconcat(manifest, ".damaged", NULL);
    g_autofree char *note = NULL;
    g_autoptr(GPtrArray) list = NULL;
    char **pair;

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm2",
                                                  "11111111-2222-3333-4444-555555555555",
                                                  NULL, NULL, NULL, NULL));
    CU_ASSERT_TRUE_FATAL(g_file_set_contents(manifest, "{\"format\": 1, \"na", -1, NULL));
    list = vmrpRepoListCollections(repo, NULL);
    CU_ASSERT_TRUE_FATAL(list && list->len == 2);
    pair = g_ptr_array_index(list, 0);
    if (!g_str_equal(pair[0], UUID))
        pair = g_ptr_array_index(list, 1);
    CU_ASSERT_STRING_EQUAL(pair[0], UUID);
    CU_ASSERT_PTR_NOT_NULL(pair[2] ? strstr(pair[2], "is damaged: truncated JSON at byte 17")
                                   : NULL);
    CU_ASSERT_TRUE(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, &note, NULL));
    CU_ASSERT_PTR_NOT_NULL(note ? strstr(note, "collection.json.damaged") : NULL);
    CU_ASSERT_TRUE(g_file_test(aside, G_FILE_TEST_IS_REGULAR));
    g_clear_pointer(&list, g_ptr_array_unref);
    list = vmrpRepoListCollections(repo, NULL);
    CU_ASSERT_TRUE_FATAL(list && list->len == 2);
    CU_ASSERT_PTR_NULL(((char **)g_ptr_array_index(list, 0))[2]);
    CU_ASSERT_PTR_NULL(((char **)g_ptr_array_index(list, 1))[2]);
}

static void
testLock(void)
{
    g_autofree char *path = sub("repo-lock");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(GError) error = NULL;
    int first;
    int second;

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    first = vmrpRepoLockCollection(repo, UUID, NULL);
    CU_ASSERT_TRUE_FATAL(first >= 0);
    second = vmrpRepoLockCollection(repo, UUID, &error);
    CU_ASSERT_EQUAL(second, -1);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_BUSY));
    close(first);
    second = vmrpRepoLockCollection(repo, UUID, NULL);
    CU_ASSERT_TRUE(second >= 0);
    close(second);
}

/* A removed collection is gone from the listing and the disk; a name that
 * is not a uuid cannot reach outside the collections' folder. */
static void
testRemoveCollection(void)
{
    g_autofree char *path = sub("repo-remove");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_build_filename(path, "collections", UUID, NULL);

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    CU_ASSERT_FALSE(vmrpRepoRemoveCollection(repo, "..", &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_INVALID));
    CU_ASSERT_TRUE(g_file_test(dir, G_FILE_TEST_IS_DIR));
    CU_ASSERT_TRUE(vmrpRepoRemoveCollection(repo, UUID, NULL));
    CU_ASSERT_FALSE(g_file_test(dir, G_FILE_TEST_EXISTS));
    list = vmrpRepoListCollections(repo, NULL);
    CU_ASSERT_TRUE(list && list->len == 0);
    g_clear_error(&error);
    CU_ASSERT_FALSE(vmrpRepoRemoveCollection(repo, UUID, &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_IO));
}

/* rp-list, repo-check and the deletion of a collection list committed and
 * half-made points together: a point committed meanwhile is in exactly one
 * of the two lists, and rp-info finds it.  A thread commits points while
 * this one lists. */
#define RACE_POINTS 60

typedef struct {
    vmrpRepo *repo;
    gint begun;
    gint done;
    bool failed;
} raceState;

static char *
raceId(int i)
{
    return g_strdup_printf("20261204-120000-%06x", i);
}

static gpointer
raceCommit(gpointer opaque)
{
    raceState *st = opaque;
    int i;

    for (i = 0; i < RACE_POINTS && !st->failed; i++) {
        g_autoptr(vmrpPoint) point = newPoint();
        g_autofree char *dir = NULL;

        g_free(point->id);
        point->id = raceId(i);
        if (!(dir = vmrpRepoPointBegin(st->repo, point, NULL)))
            st->failed = true;
        g_atomic_int_set(&st->begun, i + 1);
        if (dir && !vmrpRepoPointCommit(st->repo, point, &dir, NULL))
            st->failed = true;
    }
    g_atomic_int_set(&st->done, 1);
    return NULL;
}

static void
testListWhileCommitting(void)
{
    g_autofree char *path = sub("repo-list-race");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    raceState st = { .repo = repo };
    GThread *thread;
    guint lists = 0;
    guint missed = 0;
    guint twice = 0;

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    thread = g_thread_new("commit", raceCommit, &st);
    while (!g_atomic_int_get(&st.done)) {
        gint begun = g_atomic_int_get(&st.begun);
        g_autoptr(GPtrArray) creating = NULL;
        g_autoptr(GPtrArray) points = vmrpRepoListAll(repo, UUID, &creating, NULL);
        g_autoptr(GHashTable) ids = g_hash_table_new(g_str_hash, g_str_equal);
        guint i;

        CU_ASSERT_PTR_NOT_NULL_FATAL(points);
        g_ptr_array_extend_and_steal(points, g_steal_pointer(&creating));
        for (i = 0; i < points->len; i++) {
            if (!g_hash_table_add(ids, ((vmrpPoint *)g_ptr_array_index(points, i))->id))
                twice++;
        }
        if (g_hash_table_size(ids) < (guint)begun)
            missed++;
        /* and the newest is found, half-made or committed */
        if (begun > 0) {
            g_autofree char *id = raceId(begun - 1);
            g_autoptr(vmrpPoint) found = NULL;
            g_autoptr(GError) error = NULL;

            if (!(found = vmrpRepoFindPointEntry(repo, id, NULL, &error)) &&
                g_error_matches(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND))
                missed++;
        }
        lists++;
    }
    g_thread_join(thread);
    CU_ASSERT_FALSE(st.failed);
    CU_ASSERT_TRUE(lists > 0);
    CU_ASSERT_EQUAL(missed, 0);
    CU_ASSERT_EQUAL(twice, 0);
}

static void
testUnwritable(void)
{
    g_autofree char *path = sub("repo-ro");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(vmrpRepo) ro = NULL;
    g_autoptr(GError) error = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(repo);
    if (geteuid() == 0)
        return;  /* root writes anywhere; the integration tests use a read-only mount */
    chmod(path, 0500);
    ro = vmrpRepoOpen(path, true, &error);
    CU_ASSERT_PTR_NULL(ro);
    CU_ASSERT_PTR_NOT_NULL(error);
    chmod(path, 0700);
}

/* The host a collection's domain is reached on: recorded, kept when not
 * given, changed when the domain moves. */
static void
testCollectionURI(void)
{
    g_autofree char *path = sub("repo-uri");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autofree char *uri = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(repo);
    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    CU_ASSERT_PTR_NULL(vmrpRepoGetCollectionURI(repo, UUID));
    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, "qemu+tcp://h1/system",
                                                  "h1", NULL, NULL));
    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    uri = vmrpRepoGetCollectionURI(repo, UUID);
    CU_ASSERT_STRING_EQUAL(uri ? uri : "", "qemu+tcp://h1/system");
    g_clear_pointer(&uri, g_free);
    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, "qemu+ssh://h2/system",
                                                  "h2", NULL, NULL));
    uri = vmrpRepoGetCollectionURI(repo, UUID);
    CU_ASSERT_STRING_EQUAL(uri ? uri : "", "qemu+ssh://h2/system");
    CU_ASSERT_PTR_NULL(vmrpRepoGetCollectionURI(repo, "../../etc"));
}

/* The manifest of a point being written is replaced whole (readers see
 * one version or the next), without temporary files left behind */
static void
testDraftSave(void)
{
    g_autofree char *path = sub("repo-draft");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(vmrpPoint) point = newPoint();
    g_autoptr(GPtrArray) creating = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) d = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *manifest = NULL;
    g_autofree char *missing = NULL;
    const char *ent;

    CU_ASSERT_PTR_NOT_NULL_FATAL(repo);
    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL, NULL, NULL, NULL));
    dir = vmrpRepoPointBegin(repo, point, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    vmrpPointFindDisk(point, "vda")->bytes_done = 12345;
    CU_ASSERT_TRUE(vmrpRepoPointSaveDraft(dir, point, &error));
    manifest = g_build_filename(dir, "point.json", NULL);
    CU_ASSERT_EQUAL(modeOf(manifest), 0600);
    creating = vmrpRepoListCreating(repo, UUID, NULL);
    CU_ASSERT_EQUAL_FATAL(creating->len, 1);
    CU_ASSERT_EQUAL(vmrpPointFindDisk(g_ptr_array_index(creating, 0), "vda")->bytes_done,
                    12345);
    d = g_dir_open(dir, 0, NULL);
    while (d && (ent = g_dir_read_name(d)))
        CU_ASSERT_FALSE(g_str_has_prefix(ent, ".point.json."));

    /* a folder that is not there: an error, nothing made */
    missing = g_build_filename(path, "no-such-folder", NULL);
    CU_ASSERT_FALSE(vmrpRepoPointSaveDraft(missing, point, &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_IO));
    CU_ASSERT_FALSE(g_file_test(missing, G_FILE_TEST_EXISTS));

    writeFile(dir, "vda.qcow2", "data");
    CU_ASSERT_TRUE(vmrpRepoPointCommit(repo, point, &dir, NULL));
    CU_ASSERT_EQUAL(point->state, VMRP_POINT_SUCCEEDED);
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testCollectionURI),
    VMRP_TEST(testCreate),
    VMRP_TEST(testRefuse),
    VMRP_TEST(testPointLifecycle),
    VMRP_TEST(testDraftSave),
    VMRP_TEST(testStaleAndDamaged),
    VMRP_TEST(testDamagedPoints),
    VMRP_TEST(testHostileNames),
    VMRP_TEST(testInterrupted),
    VMRP_TEST(testDamagedCollection),
    VMRP_TEST(testLock),
    VMRP_TEST(testRemoveCollection),
    VMRP_TEST(testUnwritable),
    VMRP_TEST(testListWhileCommitting),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("repo", cases, setup, teardown);
}
