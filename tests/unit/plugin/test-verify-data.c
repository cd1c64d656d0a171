/*
 * test-verify-data.c: the digest of an image's data read from the qcow2 file
 * equals the one read through qemu-nbd, on real images made by qemu-img
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
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

/* with each algorithm: points of today's vmrp and older ones */
static void
checkSame(const char *image, GArray *ext)
{
    vmrpDigestAlgorithm algo;

    for (algo = VMRP_DIGEST_SHA256; algo <= VMRP_DIGEST_XXH128; algo++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *fast = vmrpVerifyDataDigest(image, ext, algo, NULL, &error);
        g_autofree char *slow = NULL;

        CU_ASSERT_PTR_NOT_NULL_FATAL(fast);
        CU_ASSERT_TRUE(vmrpDigestIsHex(fast, algo));
        slow = vmrpNbdDigestImage(image, "qcow2", ext, algo, NULL, &error);
        CU_ASSERT_PTR_NOT_NULL_FATAL(slow);
        CU_ASSERT_STRING_EQUAL(fast, slow);
    }
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
    a = vmrpVerifyDataDigest(img, e, VMRP_DIGEST_XXH128, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(run(io2));
    b = vmrpVerifyDataDigest(img, e, VMRP_DIGEST_XXH128, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

/* Copies @src to the new file @dst 64 KiB at a time, telling @f each step;
 * the first 4 KiB of pattern @flip (not 0: none) gets one byte changed. */
static void
copyFollowed(const char *src, const char *dst, vmrpDataFollow *f, int flip)
{
    g_autofree char *data = NULL;
    size_t len = 0, pos;
    bool flipped = false;
    int fd;

    CU_ASSERT_TRUE_FATAL(g_file_get_contents(src, &data, &len, NULL));
    CU_ASSERT_TRUE_FATAL((fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
    for (pos = 0; pos < len; pos += 65536) {
        size_t n = MIN(len - pos, (size_t)65536);
        size_t i;

        for (i = 0; flip && !flipped && i + 4096 <= n; i += 4096) {
            if (data[pos + i] == flip && data[pos + i + 4095] == flip) {
                data[pos + i + 100] ^= 1;
                flipped = true;
            }
        }
        CU_ASSERT_EQUAL_FATAL(pwrite(fd, data + pos, n, pos), (ssize_t)n);
        vmrpDataFollowWritten(f, pos + n);
        g_usleep(1000);     /* the reader catches up and waits */
    }
    CU_ASSERT_TRUE(!flip || flipped);
    close(fd);
}

/* A check that sees the whole copy: the size it had. */
static char *
checkSize(const char *image, void *opaque)
{
    GStatBuf sb;

    *(goffset *)opaque = g_stat(image, &sb) == 0 ? sb.st_size : -1;
    return g_strdup("checked");
}

/* The digest taken behind a copy is the source's when the copy is right, not
 * when a byte of data changed on the way, and right again when the copy's
 * layout is not the source's (read again where its own map says). */
static void
testFollow(void)
{
    g_autofree char *base = g_build_filename(tmpdir, "fbase.qcow2", NULL);
    g_autofree char *other = g_build_filename(tmpdir, "fother.qcow2", NULL);
    g_autofree char *c1 = g_build_filename(tmpdir, "c1.qcow2", NULL);
    g_autofree char *c2 = g_build_filename(tmpdir, "c2.qcow2", NULL);
    g_autofree char *c3 = g_build_filename(tmpdir, "c3.qcow2", NULL);
    const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", base, "16M", NULL };
    const char *mk2[] = { "qemu-img", "create", "-q", "-f", "qcow2", other, "16M", NULL };
    const char *io[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M",
                         "-c", "write -P 0x22 3M 192k", "-c", "write -z 5M 64k", base, NULL };
    /* the same data, its clusters in another order in the file */
    const char *io2[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x22 3M 192k",
                          "-c", "write -z 5M 64k", "-c", "write -P 0x11 0 1M", other, NULL };
    static const uint64_t pairs[] = { 0, 1 << 20, 3 << 20, 192 << 10, 5 << 20, 64 << 10 };
    g_autoptr(GArray) e = extents(pairs, 3);
    g_autoptr(GError) error = NULL;
    g_autofree char *problem = NULL;
    g_autofree char *want = NULL;
    g_autofree char *h1 = NULL;
    g_autofree char *h2 = NULL;
    g_autofree char *h3 = NULL;
    g_autoptr(vmrpDataFollow) f1 = NULL;
    g_autoptr(vmrpDataFollow) f2 = NULL;
    g_autoptr(vmrpDataFollow) f3 = NULL;
    g_autoptr(vmrpDataFollow) f4 = NULL;
    g_autoptr(vmrpDataFollow) f5 = NULL;
    g_autofree char *c4 = g_build_filename(tmpdir, "c4.qcow2", NULL);
    g_autofree char *h4 = NULL;
    GStatBuf sb;
    goffset seen = -1;

    CU_ASSERT_TRUE_FATAL(run(mk) && run(io) && run(mk2) && run(io2));
    CU_ASSERT_EQUAL_FATAL(g_stat(base, &sb), 0);
    want = vmrpVerifyDataDigest(base, e, VMRP_DIGEST_XXH128, NULL, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);

    CU_ASSERT_PTR_NOT_NULL_FATAL((f1 = vmrpDataFollowStart(base, c1, e, VMRP_DIGEST_XXH128, NULL, NULL, NULL)));
    copyFollowed(base, c1, f1, 0);
    h1 = vmrpDataFollowFinish(f1, &problem, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h1);
    CU_ASSERT_STRING_EQUAL(h1, want);

    CU_ASSERT_PTR_NOT_NULL_FATAL((f2 = vmrpDataFollowStart(base, c2, e, VMRP_DIGEST_XXH128, NULL, NULL, NULL)));
    copyFollowed(base, c2, f2, 0x22);
    h2 = vmrpDataFollowFinish(f2, &problem, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h2);
    CU_ASSERT_STRING_NOT_EQUAL(h2, want);

    CU_ASSERT_PTR_NOT_NULL_FATAL((f3 = vmrpDataFollowStart(base, c3, e, VMRP_DIGEST_XXH128, NULL, NULL, NULL)));
    copyFollowed(other, c3, f3, 0);
    h3 = vmrpDataFollowFinish(f3, &problem, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h3);
    CU_ASSERT_STRING_EQUAL(h3, want);

    /* the caller's check runs on the whole copy; what it finds is said */
    CU_ASSERT_PTR_NOT_NULL_FATAL((f5 = vmrpDataFollowStart(base, c4, e, VMRP_DIGEST_XXH128,
                                                           checkSize, &seen, NULL)));
    copyFollowed(base, c4, f5, 0);
    h4 = vmrpDataFollowFinish(f5, &problem, &error);
    CU_ASSERT_PTR_NULL(h4);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_STRING_EQUAL(problem, "checked");
    CU_ASSERT_EQUAL(seen, sb.st_size);

    /* a copy that stops half way: the reader is told, nothing hangs */
    CU_ASSERT_PTR_NOT_NULL_FATAL((f4 = vmrpDataFollowStart(base, c1, e, VMRP_DIGEST_XXH128, NULL, NULL, NULL)));
    vmrpDataFollowWritten(f4, 4096);
}

int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testSameAsNbd),
        VMRP_TEST(testSeesChange),
        VMRP_TEST(testFollow),
        { NULL, NULL },
    };

    return vmrpTestMain("verify-data", cases, setUp, tearDown);
}
