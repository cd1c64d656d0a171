/*
 * test-verify-data.c: the digest of an image's data read from the qcow2 file
 * equals the one read through qemu-nbd, on real images made by qemu-img
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <glib/gstdio.h>

#include "vmrp-test.h"
#include "vmrp-digest.h"
#include "vmrp-nbd-digest.h"
#include "vmrp-verify-data.h"

static char *tmpdir;

static int
setUp(void)
{
    tmpdir = g_dir_make_tmp("vmrp-test-verify-XXXXXX", NULL);
    return tmpdir ? 0 : 1;
}

static int
tearDown(void)
{
    const char *argv[] = { "rm", "-rf", tmpdir, NULL };

    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                 NULL, NULL);
    g_free(tmpdir);
    return 0;
}

static bool
run(const char *const *argv)
{
    int status = -1;

    return g_spawn_sync(NULL, (char **)argv, NULL,
                        G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                        NULL, &status, NULL) && g_spawn_check_wait_status(status, NULL);
}

static GArray *
extents(const uint64_t *pairs, guint n)
{
    GArray *arr = g_array_new(FALSE, FALSE, sizeof(vmrpDigestExtent));
    guint i;

    for (i = 0; i < n; i++) {
        vmrpDigestExtent e = { pairs[2 * i], pairs[2 * i + 1] };
        g_array_append_val(arr, e);
    }
    return arr;
}

static void
checkSame(const char *image, GArray *ext)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *fast = vmrpVerifyDataDigest(image, ext, NULL, &error);
    g_autofree char *slow = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(fast);
    slow = vmrpNbdDigestImage(image, "qcow2", ext, NULL, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(slow);
    CU_ASSERT_STRING_EQUAL(fast, slow);
}

static void
testSameAsNbd(void)
{
    g_autofree char *base = g_build_filename(tmpdir, "base.qcow2", NULL);
    g_autofree char *ovl = g_build_filename(tmpdir, "ovl.qcow2", NULL);
    const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", base, "16M", NULL };
    const char *io[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M",
                         "-c", "write -P 0x22 3M 192k", "-c", "write -z 5M 64k",
                         "-c", "write -P 0 6M 64k", base, NULL };
    const char *mko[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F",
                          "qcow2", ovl, NULL };
    const char *ioo[] = { "qemu-io", "-f", "qcow2", "-d", "unmap", "-c", "write -P 0x33 64k 64k",
                          "-c", "write -z -u 3M 64k", "-c", "write -P 0x44 8M 4k", ovl, NULL };
    static const uint64_t full[] = { 0, 1 << 20, 3 << 20, 192 << 10, 5 << 20, 64 << 10,
                                     6 << 20, 64 << 10, 10 << 20, 4096 };
    static const uint64_t own[] = { 64 << 10, 64 << 10, 3 << 20, 64 << 10, 8 << 20, 4096 };
    static const uint64_t mixed[] = { 0, 2 << 20 };   /* partly in the backing file */
    g_autoptr(GArray) e1 = extents(full, 5);
    g_autoptr(GArray) e2 = extents(own, 3);
    g_autoptr(GArray) e3 = extents(mixed, 1);

    CU_ASSERT_TRUE_FATAL(run(mk) && run(io) && run(mko) && run(ioo));
    checkSame(base, e1);    /* data, zero clusters, zeroes written, never written */
    checkSame(ovl, e2);     /* the overlay's own data and zero clusters */
    checkSame(ovl, e3);     /* data in the backing file: read through qemu-nbd */
}

/* one byte changed in a data cluster changes the digest read from the file */
static void
testSeesChange(void)
{
    g_autofree char *img = g_build_filename(tmpdir, "flip.qcow2", NULL);
    const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", img, "4M", NULL };
    const char *io[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x55 0 1M", img, NULL };
    const char *io2[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x56 4096 1", img, NULL };
    static const uint64_t one[] = { 0, 1 << 20 };
    g_autoptr(GArray) e = extents(one, 1);
    g_autofree char *a = NULL;
    g_autofree char *b = NULL;

    CU_ASSERT_TRUE_FATAL(run(mk) && run(io));
    a = vmrpVerifyDataDigest(img, e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(run(io2));
    b = vmrpVerifyDataDigest(img, e, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testSameAsNbd),
        VMRP_TEST(testSeesChange),
        { NULL, NULL },
    };

    return vmrpTestMain("verify-data", cases, setUp, tearDown);
}
