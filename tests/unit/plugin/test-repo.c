/*
 * test-repo.c: the repository on disk: creation, refusal of what is not
 * ours, atomic commit of points, stale cleanup, locking, permissions
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
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
    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL));
    dir = vmrpRepoPointBegin(repo, point, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_EQUAL(modeOf(dir), 0700);
    image = g_build_filename(dir, "vda.qcow2", NULL);
    g_file_set_contents(image, "data", 4, NULL);

    /* while being created it is not a point */
    list = vmrpRepoListPoints(repo, UUID, NULL);
    CU_ASSERT_EQUAL(list->len, 0);
    g_clear_pointer(&list, g_ptr_array_unref);
    creating = vmrpRepoListCreating(repo, UUID, NULL);
    CU_ASSERT_EQUAL(creating->len, 1);
    CU_ASSERT_PTR_NULL(vmrpRepoFindPoint(repo, point->id, NULL, &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND));
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

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL));
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

    /* a damaged manifest is reported, not skipped */
    manifest = g_build_filename(good_dir, "point.json", NULL);
    g_file_set_contents(manifest, "{\"format\": 1, \"id\": 3}", -1, NULL);
    list = vmrpRepoListPoints(repo, UUID, &error);
    CU_ASSERT_PTR_NULL(list);
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error->message, "point.json") : NULL);
}

static void
testLock(void)
{
    g_autofree char *path = sub("repo-lock");
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(path, true, NULL);
    g_autoptr(GError) error = NULL;
    int first;
    int second;

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL));
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

    CU_ASSERT_TRUE_FATAL(vmrpRepoEnsureCollection(repo, "vm1", UUID, NULL));
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

static const vmrpTestCase cases[] = {
    VMRP_TEST(testCreate),
    VMRP_TEST(testRefuse),
    VMRP_TEST(testPointLifecycle),
    VMRP_TEST(testStaleAndDamaged),
    VMRP_TEST(testLock),
    VMRP_TEST(testRemoveCollection),
    VMRP_TEST(testUnwritable),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("repo", cases, setup, teardown);
}
