/*
 * test-vmrp-nbd-copy.c: unit tests of copying a source into an image,
 * against real qemu-nbd and nbdkit servers (no VM)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <xxhash.h>

#include "vmrp-test.h"
#include "vmrp-nbd-copy.h"
#include "vmrp-nbd-digest.h"
#include "vmrp-nbd-export.h"
#include "vmrp-nbd-test-util.h"
#include "vmrp-qcow2.h"
#include "vmrp-qcow2-read.h"

#define SIZE (64 * MiB)

typedef struct {
    GArray *done;       /* of guint64 */
    uint64_t total;
    bool bad_total;     /* total changed between calls */
    GCancellable *cancel_after_first;
} progressRecord;


/* The export @name (with the bitmap @bitmap) of @exp opened, and its extents. */
static bool
openMapped(vmrpNbdExport *exp, const char *name, const char *bitmap, vmrpNbdSource **ret_src,
           vmrpExtentMap **ret_map)
{
    g_autoptr(GError) error = NULL;

    if (!(*ret_src = vmrpNbdSourceOpen(vmrpNbdExportGetSocket(exp), name, bitmap, &error)) ||
        !(*ret_map = vmrpNbdSourceMapExtents(*ret_src, &error))) {
        g_printerr("\n%s: %s\n", name, error->message);
        return false;
    }
    return true;
}


static void
recordProgress(uint64_t done, uint64_t total, void *opaque)
{
    progressRecord *rec = opaque;

    if (rec->done->len > 0 && rec->total != total)
        rec->bad_total = true;
    rec->total = total;
    g_array_append_val(rec->done, done);
    if (rec->cancel_after_first)
        g_cancellable_cancel(rec->cancel_after_first);
}


static bool
progressMonotone(const progressRecord *rec)
{
    guint i;

    for (i = 1; i < rec->done->len; i++) {
        if (g_array_index(rec->done, guint64, i) <= g_array_index(rec->done, guint64, i - 1))
            return false;
    }
    return !rec->bad_total;
}


/* A 64 MiB qcow2 with random data (some of it unaligned), an explicit run
 * of zero bytes, holes and a zeroed cluster. */
static bool
makeSource(const char *qcow2, guint32 seed)
{
    g_autofree char *raw = g_strconcat(qcow2, ".raw", NULL);
    bool ok;

    ok = vmrpNbdTestCreate(raw, "raw", SIZE, NULL) &&
         vmrpNbdTestWriteRandom(raw, 0, 3 * MiB, seed) &&
         vmrpNbdTestWriteRandom(raw, 10 * MiB + 4 * KiB, 1536 * KiB + 512, seed + 1) &&
         vmrpNbdTestWriteRandom(raw, 40 * MiB, 1 * MiB, seed + 2) &&
         vmrpNbdTestWriteRandom(raw, SIZE - 100 * KiB, 100 * KiB, seed + 3) &&
         vmrpNbdTestRun("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2",
                        raw, qcow2) == 0 &&
         vmrpNbdTestQemuIo(qcow2, "qcow2", "write -P 0 20M 1M", "write -z 41M 64k");
    g_unlink(raw);
    return ok;
}


static void
testCopyFull(void)
{
    g_autofree char *img = vmrpNbdTestPath("full-src.qcow2");
    g_autofree char *tgt = vmrpNbdTestPath("full-tgt.qcow2");
    g_autofree char *tgtraw = vmrpNbdTestPath("full-tgt.raw");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    vmrpNbdCopyOptions opts = { .request_size = 256 * KiB, .max_requests = 8 };
    uint64_t copied = 0;
    vmrpNbdExport *exp;

    NBD_TEST_CHECK(makeSource(img, 1));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "full", NULL));
    NBD_TEST_CHECK(openMapped(exp, "full", NULL, &src, &map));
    CU_ASSERT_TRUE(vmrpExtentMapBytes(map, VMRP_EXTENT_DATA) >= 6 * MiB);
    CU_ASSERT_TRUE(vmrpExtentMapBytes(map, VMRP_EXTENT_DATA) < 8 * MiB);

    /* qcow2, defaults */
    NBD_TEST_CHECK(vmrpNbdTestCreate(tgt, "qcow2", SIZE, NULL));
    NBD_TEST_CHECK_OK(vmrpNbdCopyToImage(src, map, tgt, "qcow2", NULL, &copied, &error),
                      error);
    CU_ASSERT_EQUAL(copied, vmrpExtentMapBytes(map, VMRP_EXTENT_DATA));
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", tgt, "qcow2"), 0);
    CU_ASSERT_EQUAL(vmrpNbdTestRun("qemu-img", "check", "-q", tgt), 0);

    /* raw, small requests */
    copied = 0;
    NBD_TEST_CHECK(vmrpNbdTestCreate(tgtraw, "raw", SIZE, NULL));
    NBD_TEST_CHECK_OK(vmrpNbdCopyToImage(src, map, tgtraw, "raw", &opts, &copied, &error),
                      error);
    CU_ASSERT_EQUAL(copied, vmrpExtentMapBytes(map, VMRP_EXTENT_DATA));
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", tgtraw, "raw"), 0);

    /* and the comparison does see a difference */
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(tgt, "qcow2", "write -P 0x42 40M 512"));
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", tgt, "qcow2"), 1);
}


/* The key property: an increment copied into an overlay of the previous
 * copy gives the source's content, including regions zeroed or discarded
 * since the bitmap. */
static void
testCopyIncrement(void)
{
    g_autofree char *img = vmrpNbdTestPath("inc-src.qcow2");
    g_autofree char *base = vmrpNbdTestPath("inc-base.qcow2");
    g_autofree char *ovl = vmrpNbdTestPath("inc-ovl.qcow2");
    g_autofree char *ovl2 = vmrpNbdTestPath("inc-ovl2.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) done = g_array_new(FALSE, FALSE, sizeof(guint64));
    progressRecord rec = { .done = done };
    vmrpNbdCopyOptions opts = { .write_zeroes = true, .progress = recordProgress,
                                .opaque = &rec };
    uint64_t copied = 0;
    vmrpNbdExport *exp;

    /* the full copy */
    NBD_TEST_CHECK(makeSource(img, 100));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "inc0", NULL));
    NBD_TEST_CHECK(openMapped(exp, "inc0", NULL, &src, &map));
    NBD_TEST_CHECK(vmrpNbdTestCreate(base, "qcow2", SIZE, NULL));
    NBD_TEST_CHECK_OK(vmrpNbdCopyToImage(src, map, base, "qcow2", NULL, NULL, &error),
                      error);
    g_clear_pointer(&src, vmrpNbdSourceFree);
    g_clear_pointer(&map, vmrpExtentMapFree);
    vmrpNbdTestExportStop(exp);

    /* changes since a bitmap */
    NBD_TEST_CHECK(vmrpNbdTestRun("qemu-img", "bitmap", "--add", "--enable",
                                  img, "b0") == 0);
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2",
                                     "write -P 0x5a 1M 256k",       /* over data */
                                     "write -z 0 64k",              /* zeroed data */
                                     "discard 40M 1M",              /* discarded data */
                                     "write -z 10M 1M",             /* unaligned data */
                                     "write -P 0x77 50M 64k",       /* new data */
                                     "write -z 52M 64k",            /* zero over zero */
                                     "write -P 0x78 63M 4k"));      /* in a cluster */
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "inc1", "b0"));
    NBD_TEST_CHECK(openMapped(exp, "inc1", "b0", &src, &map));
    CU_ASSERT_TRUE(vmrpExtentMapBytes(map, VMRP_EXTENT_CLEAN) > SIZE - 4 * MiB);
    CU_ASSERT_TRUE(vmrpExtentMapBytes(map, VMRP_EXTENT_ZERO) >= 2 * MiB);

    NBD_TEST_CHECK(vmrpNbdTestCreate(ovl, "qcow2", SIZE, base));
    NBD_TEST_CHECK_OK(vmrpNbdCopyToImage(src, map, ovl, "qcow2", &opts, &copied, &error),
                      error);
    CU_ASSERT_EQUAL(copied, vmrpExtentMapBytes(map, VMRP_EXTENT_DATA));
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", ovl, "qcow2"), 0);
    CU_ASSERT_EQUAL(vmrpNbdTestRun("qemu-img", "check", "-q", ovl), 0);

    /* progress: monotone, total = DATA + ZERO, ending at total */
    CU_ASSERT_TRUE(progressMonotone(&rec));
    CU_ASSERT_EQUAL(rec.total, vmrpExtentMapBytes(map, VMRP_EXTENT_DATA) +
                               vmrpExtentMapBytes(map, VMRP_EXTENT_ZERO));
    NBD_TEST_CHECK(done->len > 0);
    CU_ASSERT_EQUAL(g_array_index(done, guint64, done->len - 1), rec.total);

    /* Without the zero writes the overlay shows stale backing data: the
     * check above can fail. */
    NBD_TEST_CHECK(vmrpNbdTestCreate(ovl2, "qcow2", SIZE, base));
    opts.write_zeroes = false;
    opts.progress = NULL;
    NBD_TEST_CHECK_OK(vmrpNbdCopyToImage(src, map, ovl2, "qcow2", &opts, NULL, &error),
                      error);
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", ovl2, "qcow2"), 1);
}


static void
testCopyProgress(void)
{
    g_autofree char *img = vmrpNbdTestPath("prog-src.qcow2");
    g_autofree char *tgt = vmrpNbdTestPath("prog-tgt.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) done = g_array_new(FALSE, FALSE, sizeof(guint64));
    progressRecord rec = { .done = done };
    vmrpNbdCopyOptions opts = { .request_size = 64 * KiB, .max_requests = 4,
                                .progress = recordProgress, .opaque = &rec };
    vmrpNbdExport *exp;

    NBD_TEST_CHECK(makeSource(img, 200));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "prog", NULL));
    NBD_TEST_CHECK(openMapped(exp, "prog", NULL, &src, &map));
    NBD_TEST_CHECK(vmrpNbdTestCreate(tgt, "qcow2", SIZE, NULL));
    NBD_TEST_CHECK_OK(vmrpNbdCopyToImage(src, map, tgt, "qcow2", &opts, NULL, &error),
                      error);

    CU_ASSERT_TRUE(progressMonotone(&rec));
    CU_ASSERT_EQUAL(rec.total, vmrpExtentMapBytes(map, VMRP_EXTENT_DATA));
    /* one call per 64 KiB piece at least */
    CU_ASSERT_TRUE(done->len >= rec.total / (64 * KiB));
    NBD_TEST_CHECK(done->len > 0);
    CU_ASSERT_EQUAL(g_array_index(done, guint64, done->len - 1), rec.total);
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", tgt, "qcow2"), 0);
}


static void
testCopyTargetErrors(void)
{
    g_autofree char *img = vmrpNbdTestPath("err-src.qcow2");
    g_autofree char *missing = vmrpNbdTestPath("err-missing.qcow2");
    g_autofree char *small = vmrpNbdTestPath("err-small.qcow2");
    g_autofree char *notqcow2 = vmrpNbdTestPath("err-notqcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(vmrpExtentMap) badmap = vmrpExtentMapNew(SIZE);
    g_autoptr(GError) error = NULL;
    uint64_t copied = 12345;
    vmrpNbdExport *exp;

    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "qcow2", SIZE, NULL));
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2", "write -P 0x11 0 1M"));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "err", NULL));
    NBD_TEST_CHECK(openMapped(exp, "err", NULL, &src, &map));

    CU_ASSERT_FALSE(vmrpNbdCopyToImage(src, map, missing, "qcow2", NULL, &copied, &error));
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, missing));
    CU_ASSERT_EQUAL(copied, 12345);
    g_clear_error(&error);

    NBD_TEST_CHECK(vmrpNbdTestCreate(small, "qcow2", 1 * MiB, NULL));
    CU_ASSERT_FALSE(vmrpNbdCopyToImage(src, map, small, "qcow2", NULL, NULL, &error));
    NBD_TEST_CHECK(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "smaller than the source"));
    g_clear_error(&error);

    CU_ASSERT_FALSE(vmrpNbdCopyToImage(src, map, small, "vmdk", NULL, NULL, &error));
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID));
    g_clear_error(&error);

    /* qemu-nbd refuses the image: its reason is in the error */
    NBD_TEST_CHECK(g_file_set_contents(notqcow2, "not a qcow2 image\n", -1, NULL));
    CU_ASSERT_FALSE(vmrpNbdCopyToImage(src, map, notqcow2, "qcow2", NULL, NULL, &error));
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_SPAWN));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "not in qcow2 format"));
    g_clear_error(&error);

    /* an incomplete map */
    CU_ASSERT_FALSE(vmrpNbdCopyToImage(src, badmap, small, "qcow2", NULL, NULL, &error));
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID));

    /* the source is still usable */
    g_clear_pointer(&map, vmrpExtentMapFree);
    g_clear_error(&error);
    map = vmrpNbdSourceMapExtents(src, &error);
    CU_ASSERT_PTR_NOT_NULL(map);
}


/* nbdkit's pattern plugin behind the error filter: reads fail at random;
 * the copy stops with the libnbd call and errno named. */
static void
testCopyReadError(void)
{
    g_autofree char *sock = vmrpNbdTestPath("nbdkit.sock");
    g_autofree char *tgt = vmrpNbdTestPath("readerr-tgt.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    vmrpNbdCopyOptions opts = { .request_size = 64 * KiB, .max_requests = 8 };
    char buf[512];
    GPid pid;

    NBD_TEST_CHECK(pid = vmrpNbdTestSpawnServer(
        (const char * const []){ "nbdkit", "-f", "--exit-with-parent", "-U", sock,
                                 "--filter=error", "pattern", "16M",
                                 "error-pread=EIO", "error-pread-rate=5%", NULL },
        sock));

    src = vmrpNbdSourceOpen(sock, "", NULL, &error);
    if (src)
        map = vmrpNbdSourceMapExtents(src, &error);
    if (map && vmrpNbdTestCreate(tgt, "qcow2", 16 * MiB, NULL)) {
        CU_ASSERT_FALSE(vmrpNbdCopyToImage(src, map, tgt, "qcow2", &opts, NULL, &error));
        CU_ASSERT_PTR_NOT_NULL(error);
        if (error) {
            CU_ASSERT_TRUE(g_error_matches(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED));
            CU_ASSERT_STRING_EQUAL(error->message, "nbd_aio_pread: Input/output error");
        }
        /* the connection survives a failed read: a read that fails (5 % of
         * them) is an error naming the call and EIO, once; one that succeeds
         * has the pattern (big-endian offsets) */
        g_clear_error(&error);
        if (vmrpNbdSourcePread(src, buf, sizeof(buf), 8, &error)) {
            CU_ASSERT_EQUAL(buf[7], 8);
        } else {
            CU_ASSERT_TRUE(g_str_has_prefix(error->message, "nbd_pread: "));
            CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "Input/output error"));
            CU_ASSERT_PTR_NULL(strstr(error->message + 1, "nbd_pread"));
        }
    } else {
        CU_FAIL("no source");
    }
    g_clear_pointer(&src, vmrpNbdSourceFree);
    vmrpNbdTestKillServer(pid);
}


static void
testCopyCancel(void)
{
    g_autofree char *img = vmrpNbdTestPath("cancel-src.qcow2");
    g_autofree char *tgt = vmrpNbdTestPath("cancel-tgt.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GArray) done = g_array_new(FALSE, FALSE, sizeof(guint64));
    progressRecord rec = { .done = done, .cancel_after_first = cancel };
    vmrpNbdCopyOptions opts = { .request_size = 64 * KiB, .max_requests = 4,
                                .progress = recordProgress, .opaque = &rec,
                                .cancel = cancel };
    uint64_t copied = 12345;
    vmrpNbdExport *exp;

    NBD_TEST_CHECK(makeSource(img, 300));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "cancel", NULL));
    NBD_TEST_CHECK(openMapped(exp, "cancel", NULL, &src, &map));
    NBD_TEST_CHECK(vmrpNbdTestCreate(tgt, "qcow2", SIZE, NULL));

    /* cancelled from the progress callback: stops after the first piece */
    CU_ASSERT_FALSE(vmrpNbdCopyToImage(src, map, tgt, "qcow2", &opts, &copied, &error));
    NBD_TEST_CHECK(error);
    CU_ASSERT_TRUE(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    CU_ASSERT_EQUAL(done->len, 1);
    CU_ASSERT_EQUAL(copied, 12345);
    g_clear_error(&error);

    /* already cancelled: nothing starts */
    g_array_set_size(done, 0);
    CU_ASSERT_FALSE(vmrpNbdCopyToImage(src, map, tgt, "qcow2", &opts, NULL, &error));
    CU_ASSERT_TRUE(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    CU_ASSERT_EQUAL(done->len, 0);
    g_clear_error(&error);

    /* and the source still works */
    g_cancellable_reset(cancel);
    rec.cancel_after_first = NULL;
    NBD_TEST_CHECK_OK(vmrpNbdCopyToImage(src, map, tgt, "qcow2", &opts, NULL, &error),
                      error);
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", tgt, "qcow2"), 0);
}


/* XXH3-128 of the stream the digest is defined over (each extent's offset,
 * big-endian, then its data), by libxxhash's one-shot function: the digest
 * is standard XXH3-128 whichever of libxxhash's code paths took it. */
static char *
streamDigest(vmrpNbdSource *src, GArray *extents)
{
    g_autoptr(GByteArray) stream = g_byte_array_new();
    XXH128_canonical_t canon;
    GString *hex = g_string_new(NULL);
    guint i;

    for (i = 0; i < extents->len; i++) {
        const vmrpDigestExtent *e = &g_array_index(extents, vmrpDigestExtent, i);
        guint64 be = GUINT64_TO_BE(e->offset);
        guint at;

        g_byte_array_append(stream, (const guint8 *)&be, sizeof(be));
        at = stream->len;
        g_byte_array_set_size(stream, at + e->length);
        if (!vmrpNbdSourcePread(src, stream->data + at, e->length, e->offset, NULL))
            return g_string_free(hex, TRUE);
    }
    XXH128_canonicalFromHash(&canon, XXH3_128bits(stream->data, stream->len));
    for (i = 0; i < sizeof(canon.digest); i++)
        g_string_append_printf(hex, "%02x", canon.digest[i]);
    return g_string_free(hex, FALSE);
}


/* The digest of a copy: taken of the DATA pieces in offset order, whatever
 * order the reads complete in, with the data extents merged; read again
 * from the written image it is the same, and one byte changed in the
 * image's data changes it; it is XXH3-128 of the defined stream. */
static void
testCopyDigest(void)
{
    g_autofree char *img = vmrpNbdTestPath("dg-src.qcow2");
    g_autofree char *tgt = vmrpNbdTestPath("dg-tgt.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpDigest) dg = vmrpDigestNew(VMRP_DIGEST_XXH128);
    g_autoptr(vmrpDigest) ref = vmrpDigestNew(VMRP_DIGEST_XXH128);
    g_autoptr(GArray) extents = NULL;
    g_autoptr(GArray) ref_extents = NULL;
    g_autofree char *hex = NULL;
    g_autofree char *ref_hex = NULL;
    g_autofree char *again = NULL;
    g_autofree char *bad = NULL;
    g_autofree char *plain = NULL;
    g_autofree guint8 *buf = g_malloc(SIZE);
    vmrpNbdCopyOptions opts = { .request_size = 64 * KiB, .max_requests = 32 };
    vmrpNbdExport *exp;
    guint i;

    NBD_TEST_CHECK(makeSource(img, 7));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "dg", NULL));
    NBD_TEST_CHECK(openMapped(exp, "dg", NULL, &src, &map));

    /* the reference: the DATA extents read one by one, in order */
    for (i = 0; i < vmrpExtentMapCount(map); i++) {
        const vmrpExtent *e = vmrpExtentMapGet(map, i);
        if (e->kind != VMRP_EXTENT_DATA)
            continue;
        NBD_TEST_CHECK_OK(vmrpNbdSourcePread(src, buf, e->length, e->offset, &error), error);
        vmrpDigestAddPiece(ref, e->offset, buf, e->length);
    }
    ref_hex = vmrpDigestFinish(ref, &ref_extents);

    NBD_TEST_CHECK(vmrpNbdTestCreate(tgt, "qcow2", SIZE, NULL));
    opts.digest = dg;
    NBD_TEST_CHECK_OK(vmrpNbdCopyToImage(src, map, tgt, "qcow2", &opts, NULL, &error), error);
    hex = vmrpDigestFinish(dg, &extents);
    CU_ASSERT_TRUE(vmrpDigestIsHex(hex, VMRP_DIGEST_XXH128));
    CU_ASSERT_STRING_EQUAL(hex, ref_hex);
    CU_ASSERT_EQUAL(extents->len, ref_extents->len);
    CU_ASSERT_TRUE(extents->len >= 4);
    for (i = 1; i < extents->len; i++) {
        const vmrpDigestExtent *a = &g_array_index(extents, vmrpDigestExtent, i - 1);
        const vmrpDigestExtent *b = &g_array_index(extents, vmrpDigestExtent, i);
        CU_ASSERT_TRUE(a->offset + a->length < b->offset);   /* merged when touching */
    }
    NBD_TEST_CHECK(plain = streamDigest(src, extents));
    CU_ASSERT_STRING_EQUAL(plain, hex);

    again = vmrpNbdDigestImage(tgt, "qcow2", extents, VMRP_DIGEST_XXH128, NULL, &error);
    NBD_TEST_CHECK_OK(again, error);
    CU_ASSERT_STRING_EQUAL(again, hex);

    NBD_TEST_CHECK(vmrpNbdTestQemuIo(tgt, "qcow2", "write -P 0x42 40M 1"));
    bad = vmrpNbdDigestImage(tgt, "qcow2", extents, VMRP_DIGEST_XXH128, NULL, &error);
    NBD_TEST_CHECK_OK(bad, error);
    CU_ASSERT_STRING_NOT_EQUAL(bad, hex);
}


/* The image vmrp writes itself (vmrp-qcow2.c): a full and an increment over
 * it are clean for qemu-img check, read as the source did at each step, and
 * their digests read back the same; a cluster of zero bytes is not stored. */
static void
testCopyNewQcow2(void)
{
    g_autofree char *img = vmrpNbdTestPath("new-src.qcow2");
    g_autofree char *base = vmrpNbdTestPath("new-base.qcow2");
    g_autofree char *ovl = vmrpNbdTestPath("new-ovl.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) done = g_array_new(FALSE, FALSE, sizeof(guint64));
    progressRecord rec = { .done = done };
    g_autoptr(vmrpDigest) dg = vmrpDigestNew(VMRP_DIGEST_XXH128);
    g_autoptr(GArray) extents = NULL;
    g_autofree char *hex = NULL;
    g_autofree char *again = NULL;
    vmrpNbdCopyOptions opts = { .request_size = 1 * MiB + 4 * KiB, .max_requests = 8,
                                .digest = dg, .progress = recordProgress, .opaque = &rec };
    uint64_t copied = 0;
    vmrpNbdExport *exp;
    GStatBuf st;

    NBD_TEST_CHECK(makeSource(img, 300));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "new0", NULL));
    NBD_TEST_CHECK(openMapped(exp, "new0", NULL, &src, &map));
    NBD_TEST_CHECK_OK(vmrpNbdCopyToNewQcow2(src, map, base, NULL, &opts, &copied, &error),
                      error);
    CU_ASSERT_EQUAL(vmrpNbdTestRun("qemu-img", "check", "-q", base), 0);
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", base, "qcow2"), 0);
    /* whole clusters, the explicit 1 MiB of zero bytes among them, not stored */
    CU_ASSERT_TRUE(copied >= vmrpExtentMapBytes(map, VMRP_EXTENT_DATA));
    CU_ASSERT_EQUAL(copied % (64 * KiB), 0);
    NBD_TEST_CHECK(g_stat(base, &st) == 0);
    CU_ASSERT_TRUE((uint64_t)st.st_blocks * 512 < copied);
    CU_ASSERT_TRUE(progressMonotone(&rec));
    CU_ASSERT_EQUAL(rec.total, copied);
    hex = vmrpDigestFinish(dg, &extents);
    again = vmrpNbdDigestImage(base, "qcow2", extents, VMRP_DIGEST_XXH128, NULL, &error);
    NBD_TEST_CHECK_OK(again, error);
    CU_ASSERT_STRING_EQUAL(again, hex);
    /* it exists now: not overwritten */
    CU_ASSERT_FALSE(vmrpNbdCopyToNewQcow2(src, map, base, NULL, NULL, NULL, &error));
    CU_ASSERT_TRUE(error && strstr(error->message, "File exists"));
    g_clear_error(&error);
    g_clear_pointer(&src, vmrpNbdSourceFree);
    g_clear_pointer(&map, vmrpExtentMapFree);
    vmrpNbdTestExportStop(exp);

    NBD_TEST_CHECK(vmrpNbdTestRun("qemu-img", "bitmap", "--add", "--enable",
                                  img, "b0") == 0);
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2",
                                     "write -P 0x5a 1M 256k",
                                     "write -z 0 64k",
                                     "discard 40M 1M",
                                     "write -z 10M 1M",
                                     "write -P 0x77 50M 64k",
                                     "write -z 52M 64k",
                                     "write -P 0x78 63M 4k",
                                     "write -P 0 2M 128k"));       /* data made zero bytes */
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(img, "qcow2", "new1", "b0"));
    NBD_TEST_CHECK(openMapped(exp, "new1", "b0", &src, &map));
    NBD_TEST_CHECK_OK(vmrpNbdCopyToNewQcow2(src, map, ovl, "new-base.qcow2", NULL, &copied,
                                            &error), error);
    CU_ASSERT_TRUE(copied < 2 * MiB);
    CU_ASSERT_EQUAL(vmrpNbdTestRun("qemu-img", "check", "-q", ovl), 0);
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(img, "qcow2", ovl, "qcow2"), 0);
    g_clear_pointer(&src, vmrpNbdSourceFree);
    vmrpNbdTestExportStop(exp);
}


/* A disk whose size is no whole number of clusters (nor of 4 KiB): its last
 * cluster's data is written padded, and reads back exact. */
static void
testCopyNewQcow2OddSize(void)
{
    g_autofree char *raw = vmrpNbdTestPath("odd-src.raw");
    g_autofree char *tgt = vmrpNbdTestPath("odd-tgt.qcow2");
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    g_autoptr(GError) error = NULL;
    const uint64_t size = 1 * MiB + 3 * 512;
    vmrpNbdExport *exp;

    NBD_TEST_CHECK(vmrpNbdTestCreate(raw, "raw", size, NULL));
    NBD_TEST_CHECK(vmrpNbdTestWriteRandom(raw, size - 200 * KiB, 200 * KiB, 77));
    NBD_TEST_CHECK(exp = vmrpNbdTestExport(raw, "raw", "odd", NULL));
    NBD_TEST_CHECK(openMapped(exp, "odd", NULL, &src, &map));
    NBD_TEST_CHECK_OK(vmrpNbdCopyToNewQcow2(src, map, tgt, NULL, NULL, NULL, &error), error);
    CU_ASSERT_EQUAL(vmrpNbdTestRun("qemu-img", "check", "-q", tgt), 0);
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(raw, "raw", tgt, "qcow2"), 0);
    g_clear_pointer(&src, vmrpNbdSourceFree);
    vmrpNbdTestExportStop(exp);
}


/* A backup job's scratch image: empty, of the disk's size, writable by QEMU */
static void
testCreateEmptyQcow2(void)
{
    g_autofree char *img = vmrpNbdTestPath("scratch.qcow2");
    g_autofree char *raw = vmrpNbdTestPath("scratch-ref.raw");
    g_autoptr(GError) error = NULL;
    const uint64_t size = 1536 * MiB + 3 * 512;   /* past one L2 table, not cluster aligned */
    GStatBuf sb;

    NBD_TEST_CHECK_OK(vmrpQcow2CreateEmpty(img, size, &error), error);
    CU_ASSERT_EQUAL(g_stat(img, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
    CU_ASSERT((uint64_t)sb.st_size < 1 * MiB);
    CU_ASSERT_EQUAL(vmrpNbdTestRun("qemu-img", "check", "-q", img), 0);
    NBD_TEST_CHECK(vmrpNbdTestCreate(raw, "raw", size, NULL));
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(raw, "raw", img, "qcow2"), 0);
    /* QEMU writes it as a job's scratch is written, anywhere */
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(img, "qcow2", "write -P 0x5a 0 64k",
                                     "write -P 0xa5 1000M 1M"));
    NBD_TEST_CHECK(vmrpNbdTestQemuIo(raw, "raw", "write -P 0x5a 0 64k",
                                     "write -P 0xa5 1000M 1M"));
    CU_ASSERT_EQUAL(vmrpNbdTestCompare(raw, "raw", img, "qcow2"), 0);
    CU_ASSERT_EQUAL(vmrpNbdTestRun("qemu-img", "check", "-q", img), 0);

    /* never over an existing file */
    CU_ASSERT_FALSE(vmrpQcow2CreateEmpty(img, size, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
}


/* The size in a qcow2 header, as QEMU sets it (also after a resize) */
static void
testReadQcow2Size(void)
{
    g_autofree char *img = vmrpNbdTestPath("sized.qcow2");
    g_autofree char *raw = vmrpNbdTestPath("sized.raw");
    g_autofree char *missing = vmrpNbdTestPath("no-such.qcow2");
    g_autoptr(GError) error = NULL;
    uint64_t size = 0;

    NBD_TEST_CHECK(vmrpNbdTestCreate(img, "qcow2", 3 * (1024 * MiB) + 512, NULL));
    NBD_TEST_CHECK_OK(vmrpQcow2ReadSize(img, &size, &error), error);
    CU_ASSERT_EQUAL(size, 3 * (1024 * MiB) + 512);
    CU_ASSERT_EQUAL(vmrpNbdTestRun("qemu-img", "resize", "-q", img, "5G"), 0);
    NBD_TEST_CHECK_OK(vmrpQcow2ReadSize(img, &size, &error), error);
    CU_ASSERT_EQUAL(size, 5 * (1024 * MiB));

    /* not qcow2, or not there: an error, the size untouched */
    NBD_TEST_CHECK(vmrpNbdTestCreate(raw, "raw", 1 * MiB, NULL));
    CU_ASSERT_FALSE(vmrpQcow2ReadSize(raw, &size, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    g_clear_error(&error);
    CU_ASSERT_FALSE(vmrpQcow2ReadSize(missing, &size, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    CU_ASSERT_EQUAL(size, 5 * (1024 * MiB));
}


int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testCopyFull),
        VMRP_TEST(testCopyIncrement),
        VMRP_TEST(testCopyProgress),
        VMRP_TEST(testCopyTargetErrors),
        VMRP_TEST(testCopyReadError),
        VMRP_TEST(testCopyCancel),
        VMRP_TEST(testCopyDigest),
        VMRP_TEST(testCopyNewQcow2),
        VMRP_TEST(testCopyNewQcow2OddSize),
        VMRP_TEST(testCreateEmptyQcow2),
        VMRP_TEST(testReadQcow2Size),
        { NULL, NULL },
    };

    return vmrpTestMain("nbd-copy", cases, vmrpNbdTestInit, vmrpNbdTestCleanup);
}
