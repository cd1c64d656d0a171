/*
 * test-disk.c: copies of disk images with the real qemu-img: exact, with
 * progress, failures reported with qemu-img's words, and cancellation that
 * kills qemu-img and leaves nothing half made
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vmrp-test.h"
#include "vmrp-disk.h"
#include "vmrp-error.h"
#include "vmrp-run.h"

#define DISK_SIZE (32 * 1024 * 1024)

static char *tmpdir;
static char *base;      /* qcow2: random data in its first and last MiB */
static char *top;       /* qcow2 over base: other data in its second MiB */

static bool
run(const char *const *argv)
{
    g_autoptr(GError) error = NULL;

    if (!vmrpRun(argv, NULL, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return false;
    }
    return true;
}

static bool
writeRandom(const char *path, goffset offset, size_t len)
{
    g_autofree guint8 *buf = g_malloc(len);
    g_autoptr(GRand) rand = g_rand_new_with_seed((guint32)offset);
    size_t i;
    FILE *f;
    bool ok;

    for (i = 0; i < len; i++)
        buf[i] = g_rand_int(rand) & 0xff;
    if (!(f = fopen(path, "r+")))
        return false;
    ok = fseeko(f, offset, SEEK_SET) == 0 && fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int
suiteInit(void)
{
    g_autofree char *raw = NULL;
    g_autofree char *size = g_strdup_printf("%d", DISK_SIZE);

    if (!(tmpdir = g_dir_make_tmp("vmrp-test-disk-XXXXXX", NULL)))
        return 1;
    raw = g_build_filename(tmpdir, "base.raw", NULL);
    base = g_build_filename(tmpdir, "base.qcow2", NULL);
    top = g_build_filename(tmpdir, "top.qcow2", NULL);
    {
        const char *create_raw[] = { "qemu-img", "create", "-q", "-f", "raw", raw, size, NULL };
        const char *convert[] = { "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2",
                                  raw, base, NULL };
        const char *create_top[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                                     "-b", base, top, NULL };

        if (!run(create_raw) ||
            !writeRandom(raw, 0, 1024 * 1024) ||
            !writeRandom(raw, DISK_SIZE - 1024 * 1024, 1024 * 1024) ||
            !run(convert) || !run(create_top))
            return 1;
    }
    {
        /* the top's own data */
        const char *write[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 1M", top,
                                NULL };
        if (!run(write))
            return 1;
    }
    return unlink(raw) == 0 ? 0 : 1;
}

static int
suiteCleanup(void)
{
    g_autoptr(GDir) dir = g_dir_open(tmpdir, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *path = g_build_filename(tmpdir, name, NULL);
        unlink(path);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
    g_free(base);
    g_free(top);
    return 0;
}

static bool
sameData(const char *a, const char *b)
{
    const char *argv[] = { "qemu-img", "compare", "-q", a, b, NULL };
    return run(argv);
}

static bool
hasBacking(const char *image)
{
    const char *argv[] = { "qemu-img", "info", "--output=json", image, NULL };
    g_autofree char *out = NULL;

    return vmrpRun(argv, &out, NULL) && strstr(out, "\"backing-filename\"");
}

typedef struct {
    uint64_t last;
    uint64_t total;
    unsigned int calls;
    GCancellable *cancel_at_start;   /* cancelled at the first report */
    unsigned int started;
} progressRecord;

static void
recordProgress(const char *target, uint64_t done, uint64_t total, void *opaque)
{
    progressRecord *rec = opaque;

    CU_ASSERT_STRING_EQUAL(target, "vdb");
    CU_ASSERT_TRUE(done >= rec->last);
    rec->last = done;
    rec->total = total;
    if (rec->calls++ == 0 && rec->cancel_at_start)
        g_cancellable_cancel(rec->cancel_at_start);
}

static void
recordStarted(void *opaque)
{
    progressRecord *rec = opaque;
    rec->started++;
}

static void
testConvertExact(void)
{
    g_autofree char *qcow2 = g_build_filename(tmpdir, "out.qcow2", NULL);
    g_autofree char *raw = g_build_filename(tmpdir, "out.raw", NULL);
    g_autoptr(GError) error = NULL;
    progressRecord rec = { 0 };
    vmrpDiskCopyOptions copy = { .progress = recordProgress, .started = recordStarted,
                                 .opaque = &rec };

    CU_ASSERT_TRUE_FATAL(vmrpDiskConvert(top, qcow2, "qcow2", "vdb", DISK_SIZE, &copy, &error));
    CU_ASSERT_TRUE(sameData(top, qcow2));
    CU_ASSERT_FALSE(hasBacking(qcow2));
    CU_ASSERT_EQUAL(rec.last, DISK_SIZE);
    CU_ASSERT_EQUAL(rec.total, DISK_SIZE);
    CU_ASSERT_EQUAL(rec.started, 0);     /* the caller's to report */
    CU_ASSERT_TRUE(vmrpDiskConvert(top, raw, "raw", "vdb", DISK_SIZE, NULL, &error));
    CU_ASSERT_TRUE(sameData(top, raw));
    unlink(qcow2);
    unlink(raw);
}

static void
testConvertFails(void)
{
    g_autofree char *bad = g_build_filename(tmpdir, "bad.qcow2", NULL);
    g_autofree char *out = g_build_filename(tmpdir, "out-bad.qcow2", NULL);
    g_autoptr(GError) error = NULL;

    CU_ASSERT_TRUE_FATAL(g_file_set_contents(bad, "QFI\xfb not an image", -1, NULL));
    CU_ASSERT_FALSE(vmrpDiskConvert(bad, out, "qcow2", "vdb", DISK_SIZE, NULL, &error));
    CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_FAILED));
    CU_ASSERT_TRUE(error && g_str_has_prefix(error->message, "qemu-img convert failed: "));
    CU_ASSERT_PTR_NULL(error ? strchr(error->message, '\n') : NULL);
    CU_ASSERT_FALSE(g_file_test(out, G_FILE_TEST_EXISTS));
    unlink(bad);
}

static void
testConvertCancelled(void)
{
    g_autofree char *out = g_build_filename(tmpdir, "out-cancelled.qcow2", NULL);
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GError) error = NULL;
    progressRecord rec = { .cancel_at_start = cancel };
    vmrpDiskCopyOptions copy = { .progress = recordProgress, .opaque = &rec, .cancel = cancel };

    CU_ASSERT_FALSE(vmrpDiskConvert(top, out, "qcow2", "vdb", DISK_SIZE, &copy, &error));
    CU_ASSERT_TRUE(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    CU_ASSERT_FALSE(g_file_test(out, G_FILE_TEST_EXISTS));
    CU_ASSERT_NOT_EQUAL(rec.last, DISK_SIZE);

    /* cancelled before: qemu-img does not even start */
    g_clear_error(&error);
    CU_ASSERT_FALSE(vmrpDiskConvert(top, out, "qcow2", "vdb", DISK_SIZE, &copy, &error));
    CU_ASSERT_TRUE(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    CU_ASSERT_FALSE(g_file_test(out, G_FILE_TEST_EXISTS));
}

static void
testFlatten(void)
{
    g_autofree char *copy_path = g_build_filename(tmpdir, "flat.qcow2", NULL);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                           "-b", top, copy_path, NULL };
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GError) error = NULL;
    progressRecord rec = { .cancel_at_start = cancel };
    vmrpDiskCopyOptions copy = { .progress = recordProgress, .opaque = &rec, .cancel = cancel };

    CU_ASSERT_TRUE_FATAL(run(argv));
    /* cancelled: still on its backing chain, the same data */
    CU_ASSERT_FALSE(vmrpDiskFlatten(copy_path, top, "vdb", &copy, &error));
    CU_ASSERT_TRUE(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    CU_ASSERT_TRUE(hasBacking(copy_path));
    CU_ASSERT_TRUE(sameData(top, copy_path));

    /* then whole: no backing file, the same data */
    rec = (progressRecord){ 0 };
    copy.cancel = NULL;
    CU_ASSERT_TRUE(vmrpDiskFlatten(copy_path, top, "vdb", &copy, &error));
    CU_ASSERT_FALSE(hasBacking(copy_path));
    CU_ASSERT_TRUE(sameData(top, copy_path));
    CU_ASSERT_EQUAL(rec.last, DISK_SIZE);
    unlink(copy_path);
}

/* issue 16 item 4: the overlay's header (the QEMU user's to write) names
 * another backing file: the flatten reads the chain vmrp gives, never that
 * file; an external data file is refused. */
static void
testHardening4FlattenIgnoresHeader(void)
{
    g_autofree char *secret = g_build_filename(tmpdir, "secret.raw", NULL);
    g_autofree char *ov = g_build_filename(tmpdir, "hostile.qcow2", NULL);
    g_autofree char *df = g_build_filename(tmpdir, "hostile.data", NULL);
    g_autofree char *ov2 = g_build_filename(tmpdir, "hostile-df.qcow2", NULL);
    g_autofree char *size = g_strdup_printf("%d", DISK_SIZE);
    const char *mk_secret[] = { "qemu-img", "create", "-q", "-f", "raw", secret, size, NULL };
    const char *fill[] = { "qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 64k", secret, NULL };
    const char *mk_ov[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                            "-b", secret, ov, size, NULL };
    g_autofree char *dfopt = g_strdup_printf("data_file=%s", df);
    const char *mk_df[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", dfopt,
                            ov2, size, NULL };
    g_autoptr(GError) error = NULL;
    vmrpDiskCopyOptions copy = { 0 };

    CU_ASSERT_TRUE_FATAL(run(mk_secret) && run(fill) && run(mk_ov) && run(mk_df));
    CU_ASSERT_TRUE(vmrpDiskFlatten(ov, top, "vdb", &copy, &error));
    CU_ASSERT_FALSE(hasBacking(ov));
    CU_ASSERT_TRUE(sameData(top, ov));

    CU_ASSERT_FALSE(vmrpDiskFlatten(ov2, top, "vdb", &copy, &error));
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error->message, "external data file") : NULL);
    unlink(secret);
    unlink(ov);
    unlink(ov2);
    unlink(df);
}

int
main(void)
{
    const vmrpTestCase cases[] = {
        VMRP_TEST(testConvertExact),
        VMRP_TEST(testConvertFails),
        VMRP_TEST(testConvertCancelled),
        VMRP_TEST(testFlatten),
        VMRP_TEST(testHardening4FlattenIgnoresHeader),
        { NULL, NULL }
    };

    return vmrpTestMain("disk", cases, suiteInit, suiteCleanup);
}
