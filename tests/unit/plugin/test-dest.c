/*
 * test-dest.c: destination repositories (vmrp-dest.h): ssh:// specs refused
 * before any connection, a local destination made a repository holding a
 * copy, its points scanned (leftovers removed), and its lock honouring an
 * ssh copy's .sftp-lock
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>

#include "vmrp-test.h"
#include "vmrp-dest.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-repo.h"

#define UUID "6f1c1d5e-8f7a-4b53-9a57-1d2f3e4a5b6c"
#define SRC_ID "0c9d8e7f-6a5b-4c3d-8e1f-0a1b2c3d4e5f"

static char *tmpdir;

static int
suiteInit(void)
{
    tmpdir = g_dir_make_tmp("vmrp-test-dest-XXXXXX", NULL);
    return tmpdir ? 0 : 1;
}

static int
suiteCleanup(void)
{
    vmrpFileRemoveTree(tmpdir, NULL);
    g_free(tmpdir);
    return 0;
}

static void
testSpecRefused(void)
{
    static const char *const bad[] = {
        "", "ssh://host", "ssh://host/", "ssh:///srv/vmrp", "ssh://host/a%5Cb",
        "ssh://host/srv/..", "ssh://host/a\\b", "ssh://host/a%0Ab", "ssh://host/x?y=1",
        "ssh://host/x#f", "ssh://host:notaport/x", "ftp://host/x", NULL,
    };
    size_t i;

    for (i = 0; bad[i]; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpDest) dest = vmrpDestOpen(bad[i], &error);

        CU_ASSERT_PTR_NULL(dest);
        if (!g_error_matches(error, VMRP_ERROR, VMRP_ERROR_INVALID))
            fprintf(stderr, "'%s': %s\n", bad[i], error ? error->message : "no error");
        CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_INVALID));
        if (error)
            CU_ASSERT_PTR_NULL(strchr(error->message, '\n'));
    }
    CU_ASSERT_TRUE(vmrpDestIsRemote("ssh://h/x"));
    CU_ASSERT_TRUE(vmrpDestIsRemote("SSH://h/x"));
    CU_ASSERT_FALSE(vmrpDestIsRemote("/srv/ssh://x"));
    CU_ASSERT_FALSE(vmrpDestIsRemote(NULL));
}

static char *
destId(const char *root)
{
    g_autofree char *path = g_build_filename(root, "repository.json", NULL);
    g_autofree char *text = vmrpFileRead(path, 65536, NULL, NULL);

    return text ? vmrpRepoIdFromText(text, NULL) : NULL;
}

static void
testPrepare(void)
{
    g_autofree char *root = g_build_filename(tmpdir, "prepare", NULL);
    g_autofree char *coll = g_build_filename(root, "collections", UUID, "collection.json", NULL);
    g_autofree char *other = g_build_filename(tmpdir, "other", NULL);
    g_autofree char *junk = g_build_filename(other, "file", NULL);
    g_autofree char *text = NULL;
    g_autofree char *id = NULL;
    g_autoptr(vmrpDest) dest = NULL;
    g_autoptr(vmrpDest) busy = NULL;
    g_autoptr(GError) error = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL((dest = vmrpDestOpen(root, &error)));
    CU_ASSERT_TRUE(vmrpDestPrepare(dest, SRC_ID, UUID, "vm1", &error));
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_PTR_NOT_NULL_FATAL((text = vmrpFileRead(coll, 65536, NULL, NULL)));
    CU_ASSERT_TRUE(vmrpRepoCollectionTextIsCopy(text));
    /* again: the same repository, the same copy */
    CU_ASSERT_TRUE(vmrpDestPrepare(dest, SRC_ID, UUID, "vm1", &error));
    /* the destination's own id as source: it is the source itself */
    CU_ASSERT_PTR_NOT_NULL_FATAL((id = destId(root)));
    CU_ASSERT_FALSE(vmrpDestPrepare(dest, id, UUID, "vm1", &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_INVALID));
    g_clear_error(&error);

    /* a folder holding something else */
    CU_ASSERT_TRUE(g_mkdir_with_parents(other, 0700) == 0);
    CU_ASSERT_TRUE(g_file_set_contents(junk, "x", 1, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL((busy = vmrpDestOpen(other, &error)));
    CU_ASSERT_FALSE(vmrpDestPrepare(busy, SRC_ID, UUID, "vm1", &error));
    CU_ASSERT_TRUE(error && strstr(error->message, "not a vmrp repository"));
}

static void
testScanAndLock(void)
{
    g_autofree char *root = g_build_filename(tmpdir, "scan", NULL);
    g_autofree char *points = g_build_filename("collections", UUID, "points", NULL);
    g_autofree char *lock = g_build_filename("collections", UUID, ".lock", NULL);
    g_autofree char *sftp = g_build_filename(root, "collections", UUID, ".sftp-lock", NULL);
    g_autofree char *stale = g_build_filename(root, points, ".creating-20260101-000001-abcdef",
                                              NULL);
    g_autofree char *point = g_build_filename(root, points, "20260101-000000-abcdef", NULL);
    g_autofree char *other = g_build_filename(root, points, "not-a-point", NULL);
    g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(vmrpDest) dest = NULL;
    g_autoptr(GError) error = NULL;
    int fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL((dest = vmrpDestOpen(root, &error)));
    CU_ASSERT_TRUE_FATAL(vmrpDestPrepare(dest, SRC_ID, UUID, "vm1", &error));
    CU_ASSERT_TRUE(g_mkdir_with_parents(stale, 0700) == 0);
    CU_ASSERT_TRUE(g_mkdir_with_parents(point, 0700) == 0);
    CU_ASSERT_TRUE(g_mkdir_with_parents(other, 0700) == 0);
    CU_ASSERT_TRUE(vmrpDestScanPoints(dest, points, ids, &error));
    CU_ASSERT_EQUAL(g_hash_table_size(ids), 1);
    CU_ASSERT_TRUE(g_hash_table_contains(ids, "20260101-000000-abcdef"));
    CU_ASSERT_FALSE(g_file_test(stale, G_FILE_TEST_EXISTS));
    CU_ASSERT_TRUE(g_file_test(other, G_FILE_TEST_EXISTS));

    /* the lock: taken and given back; refused while an ssh copy holds it */
    CU_ASSERT_TRUE((fd = dest->ops->lock(dest, lock, &error)) >= 0);
    dest->ops->unlock(dest, fd);
    CU_ASSERT_TRUE(g_file_set_contents(sftp, "vmrp lock\n", -1, NULL));
    CU_ASSERT_TRUE(dest->ops->lock(dest, lock, &error) < 0);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_BUSY));
}

int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testSpecRefused),
        VMRP_TEST(testPrepare),
        VMRP_TEST(testScanAndLock),
        { NULL, NULL },
    };

    return vmrpTestMain("dest", cases, suiteInit, suiteCleanup);
}
