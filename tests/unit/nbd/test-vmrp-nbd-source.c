/*
 * test-vmrp-nbd-source.c: unit tests of the NBD source and its extent map,
 * against a real qemu-nbd (no VM)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>

#include "vmrp-test.h"
#include "vmrp-nbd-source.h"
#include "vmrp-nbd-export.h"
#include "vmrp-nbd-test-util.h"

#define D VMRP_EXTENT_DATA
#define Z VMRP_EXTENT_ZERO
#define C VMRP_EXTENT_CLEAN


/* A qcow2 with data at known offsets maps to exactly those offsets. */
static void
testMapSparse(void)
{
    g_autofree char *img = vmrpNbdTestPath("sparse.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *buf = g_malloc(64 * KiB);
    vmrpNbdExport *exp;
    const vmrpExtent expected[] = {
        { 0, 1 * MiB, Z },
        { 1 * MiB, 64 * KiB, D },
        { 1 * MiB + 64 * KiB, 4 * MiB - 64 * KiB, Z },
        { 5 * MiB, 1 * MiB, D },
        { 6 * MiB, 10 * MiB, Z },
    };
    size_t i;

    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "qcow2", 16 * MiB, NULL));
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2",
                                     "write -P 0xaa 1M 64k",
                                     "write -P 0xbb 5M 1M",
                                     "write -z 8M 1M"));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "sparse", NULL));

    src = vmrpNbdSourceOpen(vmrpNbdExportGetSocket(exp), "sparse", NULL, &error);
    NBD_TEST_CHECK_OK(src, error);
    CU_ASSERT_EQUAL(vmrpNbdSourceGetSize(src), 16 * MiB);
    CU_ASSERT_PTR_NULL(vmrpNbdSourceGetBitmap(src));
    CU_ASSERT_EQUAL(vmrpNbdSourceGetMaxRequest(src), 32 * MiB);

    map = vmrpNbdSourceMapExtents(src, &error);
    NBD_TEST_CHECK_OK(map, error);
    CU_ASSERT_EQUAL(map->size, 16 * MiB);
    CU_ASSERT_TRUE(vmrpNbdTestMapEquals(map, expected, G_N_ELEMENTS(expected)));
    CU_ASSERT_EQUAL(vmrpExtentMapBytes(map, D), 1 * MiB + 64 * KiB);

    NBD_TEST_CHECK_OK(vmrpNbdSourcePread(src, buf, 64 * KiB, 1 * MiB, &error), error);
    for (i = 0; i < 64 * KiB && buf[i] == 0xaa; i++)
        ;
    CU_ASSERT_EQUAL(i, 64 * KiB);
}


/* Only what was written after the bitmap was added is DATA or ZERO. */
static void
testMapDirtyBitmap(void)
{
    g_autofree char *img = vmrpNbdTestPath("dirty.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpNbdSource) full = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(vmrpExtentMap) fullmap = NULL;
    g_autoptr(GError) error = NULL;
    vmrpNbdExport *exp;
    const vmrpExtent expected[] = {
        { 0, 64 * KiB, Z },                            /* discarded data */
        { 64 * KiB, 2 * MiB - 64 * KiB, C },
        { 2 * MiB, 128 * KiB, D },                     /* rewritten */
        { 2 * MiB + 128 * KiB, 1 * MiB - 128 * KiB, C },
        { 3 * MiB, 64 * KiB, Z },                      /* zeroed data */
        { 3 * MiB + 64 * KiB, 7 * MiB - 64 * KiB, C },
        { 10 * MiB, 64 * KiB, D },                     /* new data */
        { 10 * MiB + 64 * KiB, 2 * MiB - 64 * KiB, C },
        { 12 * MiB, 64 * KiB, Z },                     /* zeroes over zeroes */
        { 12 * MiB + 64 * KiB, 4 * MiB - 64 * KiB, C },
    };
    const vmrpExtent expected_full[] = {
        { 0, 64 * KiB, Z },
        { 64 * KiB, 3 * MiB - 64 * KiB, D },
        { 3 * MiB, 64 * KiB, Z },
        { 3 * MiB + 64 * KiB, 1 * MiB - 64 * KiB, D },
        { 4 * MiB, 6 * MiB, Z },
        { 10 * MiB, 64 * KiB, D },
        { 10 * MiB + 64 * KiB, 6 * MiB - 64 * KiB, Z },
    };

    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "qcow2", 16 * MiB, NULL));
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2", "write -P 0x11 0 4M"));
    NBD_TEST_CHECK(vmrpNbdTestRun("qemu-img", "bitmap", "--add", "--enable",
                                  img, "b0") == 0);
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2",
                                     "write -P 0x22 2M 128k",
                                     "write -z 3M 64k",
                                     "discard 0 64k",
                                     "write -P 0x33 10M 64k",
                                     "write -z 12M 64k"));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "dirty", "b0"));

    src = vmrpNbdSourceOpen(vmrpNbdExportGetSocket(exp), "dirty", "b0", &error);
    NBD_TEST_CHECK_OK(src, error);
    CU_ASSERT_STRING_EQUAL(vmrpNbdSourceGetBitmap(src), "b0");
    map = vmrpNbdSourceMapExtents(src, &error);
    NBD_TEST_CHECK_OK(map, error);
    CU_ASSERT_TRUE(vmrpNbdTestMapEquals(map, expected, G_N_ELEMENTS(expected)));

    /* The same export without the bitmap: everything allocated is DATA. */
    full = vmrpNbdSourceOpen(vmrpNbdExportGetSocket(exp), "dirty", NULL, &error);
    NBD_TEST_CHECK_OK(full, error);
    fullmap = vmrpNbdSourceMapExtents(full, &error);
    NBD_TEST_CHECK_OK(fullmap, error);
    CU_ASSERT_TRUE(vmrpNbdTestMapEquals(fullmap, expected_full,
                                        G_N_ELEMENTS(expected_full)));
}


/* A bitmap coarser than the allocation: the two contexts report different
 * boundaries, and the map is their intersection. */
static void
testMapBitmapCoarse(void)
{
    g_autofree char *img = vmrpNbdTestPath("coarse.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    vmrpNbdExport *exp;
    const vmrpExtent expected[] = {
        { 0, 2 * MiB, C },
        { 2 * MiB, 1 * MiB, D },          /* dirty granule, all allocated */
        { 3 * MiB, 5 * MiB, C },
        { 8 * MiB, 128 * KiB, Z },        /* dirty granule, mostly unallocated */
        { 8 * MiB + 128 * KiB, 64 * KiB, D },
        { 8 * MiB + 192 * KiB, 1 * MiB - 192 * KiB, Z },
        { 9 * MiB, 7 * MiB, C },
    };

    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "qcow2", 16 * MiB, NULL));
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2", "write -P 0x11 0 4M"));
    NBD_TEST_CHECK(vmrpNbdTestRun("qemu-img", "bitmap", "--add", "--enable",
                                  "-g", "1M", img, "b1") == 0);
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2",
                                     "write -P 0x22 2112k 64k",
                                     "write -P 0x33 8320k 64k"));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "coarse", "b1"));

    src = vmrpNbdSourceOpen(vmrpNbdExportGetSocket(exp), "coarse", "b1", &error);
    NBD_TEST_CHECK_OK(src, error);
    map = vmrpNbdSourceMapExtents(src, &error);
    NBD_TEST_CHECK_OK(map, error);
    CU_ASSERT_TRUE(vmrpNbdTestMapEquals(map, expected, G_N_ELEMENTS(expected)));
}


/* A disk larger than one block status request (1 GiB): data across the
 * request boundary comes out as one extent. */
static void
testMapLarge(void)
{
    g_autofree char *img = vmrpNbdTestPath("large.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    vmrpNbdExport *exp;
    const uint64_t gib = 1024 * MiB;
    const vmrpExtent expected[] = {
        { 0, gib - 64 * KiB, C },
        { gib - 64 * KiB, 128 * KiB, D },
        { gib + 64 * KiB, gib - 64 * KiB, C },
        { 2 * gib, 64 * KiB, Z },
        { 2 * gib + 64 * KiB, gib + 4 * KiB - 64 * KiB, C },
    };

    /* 3 GiB + 4 KiB: not a multiple of the cluster or of the requests */
    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "qcow2", 3 * gib + 4 * KiB, NULL));
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2", "write -P 0x11 2G 64k"));
    NBD_TEST_CHECK(vmrpNbdTestRun("qemu-img", "bitmap", "--add", "--enable",
                                  img, "b0") == 0);
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2",
                                     "write -P 0x22 1073676288 128k",
                                     "write -z 2G 64k"));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "large", "b0"));

    src = vmrpNbdSourceOpen(vmrpNbdExportGetSocket(exp), "large", "b0", &error);
    NBD_TEST_CHECK_OK(src, error);
    CU_ASSERT_EQUAL(vmrpNbdSourceGetSize(src), 3 * gib + 4 * KiB);
    map = vmrpNbdSourceMapExtents(src, &error);
    NBD_TEST_CHECK_OK(map, error);
    CU_ASSERT_TRUE(vmrpNbdTestMapEquals(map, expected, G_N_ELEMENTS(expected)));
}


/* Asking for a bitmap the export does not offer fails, naming the context. */
static void
testOpenBitmapUnsupported(void)
{
    g_autofree char *img = vmrpNbdTestPath("nobitmap.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(GError) error = NULL;
    vmrpNbdExport *exp;

    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "qcow2", 1 * MiB, NULL));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "nobitmap", NULL));

    src = vmrpNbdSourceOpen(vmrpNbdExportGetSocket(exp), "nobitmap", "b0", &error);
    CU_ASSERT_PTR_NULL(src);
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_UNSUPPORTED));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "qemu:dirty-bitmap:b0"));
}


static void
testOpenNoServer(void)
{
    g_autofree char *sock = vmrpNbdTestPath("nobody.sock");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(GError) error = NULL;

    src = vmrpNbdSourceOpen(sock, "", NULL, &error);
    CU_ASSERT_PTR_NULL(src);
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED));
    CU_ASSERT_TRUE(g_str_has_prefix(error->message, "nbd_connect_unix: "));
}


static void
testOpenWrongExportName(void)
{
    g_autofree char *img = vmrpNbdTestPath("named.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(GError) error = NULL;
    vmrpNbdExport *exp;

    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "qcow2", 1 * MiB, NULL));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "named", NULL));
    src = vmrpNbdSourceOpen(vmrpNbdExportGetSocket(exp), "other", NULL, &error);
    CU_ASSERT_PTR_NULL(src);
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_str_has_prefix(error->message, "nbd_connect_unix: "));
}


static void
testExportMissingImage(void)
{
    g_autofree char *img = vmrpNbdTestPath("missing.qcow2");
    g_autofree char *sock = vmrpNbdTestPath("missing.sock");
    g_autoptr(vmrpNbdExport) exp = NULL;
    g_autoptr(GError) error = NULL;

    exp = vmrpNbdExportStart(img, "qcow2", sock, "x", NULL, true, &error);
    CU_ASSERT_PTR_NULL(exp);
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, img));
}


/* qemu-nbd refuses the image: its message comes back in the error. */
static void
testExportBadImage(void)
{
    g_autofree char *img = vmrpNbdTestPath("notqcow2");
    g_autofree char *sock = vmrpNbdTestPath("bad.sock");
    g_autoptr(vmrpNbdExport) exp = NULL;
    g_autoptr(GError) error = NULL;

    NBD_TEST_CHECK(g_file_set_contents(img, "not a qcow2 image\n", -1, NULL));
    exp = vmrpNbdExportStart(img, "qcow2", sock, "x", NULL, true, &error);
    CU_ASSERT_PTR_NULL(exp);
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_SPAWN));
    CU_ASSERT_TRUE(g_str_has_prefix(error->message, "qemu-nbd exited with status 1: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "qcow2"));
}


/* Stop kills qemu-nbd and the socket goes away. */
static void
testExportStop(void)
{
    g_autofree char *img = vmrpNbdTestPath("stop.raw");
    g_autofree char *sock = vmrpNbdTestPath("stop.sock");
    g_autoptr(vmrpNbdExport) exp = NULL;
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(GError) error = NULL;
    pid_t pid;

    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "raw", 1 * MiB, NULL));
    exp = vmrpNbdExportStart(img, "raw", sock, "", NULL, false, &error);
    NBD_TEST_CHECK_OK(exp, error);
    CU_ASSERT_STRING_EQUAL(vmrpNbdExportGetSocket(exp), sock);
    pid = vmrpNbdExportGetPid(exp);
    CU_ASSERT_TRUE(pid > 0);
    src = vmrpNbdSourceOpen(sock, "", NULL, &error);
    NBD_TEST_CHECK_OK(src, error);
    CU_ASSERT_EQUAL(vmrpNbdSourceGetSize(src), 1 * MiB);
    g_clear_pointer(&src, vmrpNbdSourceFree);

    g_clear_pointer(&exp, vmrpNbdExportStop);
    CU_ASSERT_FALSE(g_file_test(sock, G_FILE_TEST_EXISTS));
    CU_ASSERT_EQUAL(kill(pid, 0), -1);
}


int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testMapSparse),
        VMRP_TEST(testMapDirtyBitmap),
        VMRP_TEST(testMapBitmapCoarse),
        VMRP_TEST(testMapLarge),
        VMRP_TEST(testOpenBitmapUnsupported),
        VMRP_TEST(testOpenNoServer),
        VMRP_TEST(testOpenWrongExportName),
        VMRP_TEST(testExportMissingImage),
        VMRP_TEST(testExportBadImage),
        VMRP_TEST(testExportStop),
        { NULL, NULL },
    };

    return vmrpTestMain("nbd-source", cases, vmrpNbdTestInit, vmrpNbdTestCleanup);
}
