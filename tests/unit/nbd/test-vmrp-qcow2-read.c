/*
 * test-vmrp-qcow2-read.c: the qcow2 header and map read in the process are
 * what `qemu-img info` and `qemu-img map` say, on images made by qemu-img
 * and qemu-io (versions 2 and 3, small clusters over many L2 tables, a
 * backing file, zero and unallocated clusters); what it cannot map is said
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmrp-test.h"
#include "vmrp-qcow2-read.h"
#include "vmrp-nbd-test-util.h"

static char *
run(const char *const *argv)
{
    char *out = NULL;
    int status = -1;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                      &status, NULL) || !g_spawn_check_wait_status(status, NULL)) {
        g_free(out);
        return NULL;
    }
    return out;
}

/* `qemu-img map` of @image: its depth-0 runs, as vmrpQcow2ReadMap gives them. */
static GArray *
qemuMap(const char *image)
{
    const char *argv[] = { "qemu-img", "map", "-f", "qcow2", "--output=json", image, NULL };
    g_autofree char *out = run(argv);
    GArray *map = g_array_new(FALSE, FALSE, sizeof(vmrpQcow2MapEntry));
    json_object *arr;
    size_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL((arr = json_tokener_parse(out)));
    for (i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *v;
        vmrpQcow2MapEntry m = { 0, 0, false, -1 };
        bool data = false;
        int64_t depth = 0;

        json_object_object_get_ex(e, "start", &v);
        m.start = json_object_get_uint64(v);
        json_object_object_get_ex(e, "length", &v);
        m.length = json_object_get_uint64(v);
        if (json_object_object_get_ex(e, "depth", &v))
            depth = json_object_get_int64(v);
        if (json_object_object_get_ex(e, "zero", &v))
            m.zero = json_object_get_boolean(v);
        if (json_object_object_get_ex(e, "data", &v))
            data = json_object_get_boolean(v);
        if (depth == 0 && data && !m.zero &&
            json_object_object_get_ex(e, "offset", &v))
            m.offset = json_object_get_int64(v);
        if (depth != 0)
            m.zero = false;
        /* qemu-img splits runs where vmrp joins them: compare joined */
        if (map->len) {
            vmrpQcow2MapEntry *last = &g_array_index(map, vmrpQcow2MapEntry, map->len - 1);
            if (last->zero == m.zero && last->start + last->length == m.start &&
                ((last->offset < 0 && m.offset < 0) ||
                 (last->offset >= 0 && last->offset + (int64_t)last->length == m.offset))) {
                last->length += m.length;
                continue;
            }
        }
        g_array_append_val(map, m);
    }
    json_object_put(arr);
    return map;
}

static void
checkSameAsQemu(const char *image, const char *backing)
{
    vmrpQcow2Header hdr = { 0 };
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) mine = NULL;
    g_autoptr(GArray) want = qemuMap(image);
    int fd = open(image, O_RDONLY);
    guint i;

    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_TRUE_FATAL(vmrpQcow2ReadHeader(fd, &hdr, &error));
    CU_ASSERT_STRING_EQUAL(hdr.backing ? hdr.backing : "", backing ? backing : "");
    CU_ASSERT_STRING_EQUAL(hdr.backing_format ? hdr.backing_format : "",
                           backing ? "qcow2" : "");
    CU_ASSERT_FALSE(hdr.data_file);
    CU_ASSERT_TRUE(hdr.mappable);
    mine = vmrpQcow2ReadMap(fd, &hdr, &error);
    close(fd);
    vmrpQcow2HeaderClear(&hdr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mine);
    CU_ASSERT_EQUAL_FATAL(mine->len, want->len);
    for (i = 0; i < want->len; i++) {
        const vmrpQcow2MapEntry *a = &g_array_index(mine, vmrpQcow2MapEntry, i);
        const vmrpQcow2MapEntry *b = &g_array_index(want, vmrpQcow2MapEntry, i);

        CU_ASSERT_EQUAL(a->start, b->start);
        CU_ASSERT_EQUAL(a->length, b->length);
        CU_ASSERT_EQUAL(a->zero, b->zero);
        CU_ASSERT_EQUAL(a->offset, b->offset);
    }
}

static void
testSameAsQemuImg(void)
{
    g_autofree char *base = vmrpNbdTestPath("base.qcow2");
    g_autofree char *ovl = vmrpNbdTestPath("ovl.qcow2");
    g_autofree char *v2 = vmrpNbdTestPath("v2.qcow2");
    g_autofree char *small = vmrpNbdTestPath("small.qcow2");
    const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", base, "16M", NULL };
    const char *io[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 3M 1M",
                         "-c", "write -P 0x22 0 192k", "-c", "write -z 5M 64k",
                         "-c", "write -P 0 6M 64k", base, NULL };
    const char *mko[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F",
                          "qcow2", ovl, NULL };
    const char *ioo[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x33 64k 64k",
                          "-c", "write -z 3M 64k", "-c", "write -P 0x44 8M 4k", ovl, NULL };
    const char *mk2[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10",
                          v2, "8M", NULL };
    const char *io2[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x55 1M 1M", v2, NULL };
    /* 512-byte clusters: an L2 table covers 32 KiB, so many L1 entries */
    const char *mks[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                          "cluster_size=512", small, "1000k", NULL };
    const char *ios[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x66 100k 300k",
                          "-c", "write -P 0x67 20k 1k", "-c", "write -z 500k 64k",
                          "-c", "write -P 0x68 999k 1k", small, NULL };
    g_autofree char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL, *o5 = NULL, *o6 = NULL;
    g_autofree char *o7 = NULL, *o8 = NULL;

    CU_ASSERT_TRUE_FATAL((o1 = run(mk)) && (o2 = run(io)) && (o3 = run(mko)) &&
                         (o4 = run(ioo)) && (o5 = run(mk2)) && (o6 = run(io2)) &&
                         (o7 = run(mks)) && (o8 = run(ios)));
    checkSameAsQemu(base, NULL);
    checkSameAsQemu(ovl, "base.qcow2");
    checkSameAsQemu(v2, NULL);
    checkSameAsQemu(small, NULL);
}

/* an external data file is said, and not mapped; a file that is no qcow2 is an error */
static void
testRefuses(void)
{
    g_autofree char *img = vmrpNbdTestPath("df.qcow2");
    g_autofree char *raw = vmrpNbdTestPath("df.raw");
    g_autofree char *opt = g_strdup_printf("data_file=%s", raw);
    g_autofree char *junk = vmrpNbdTestPath("junk");
    const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", opt, img, "4M",
                         NULL };
    g_autofree char *out = NULL;
    vmrpQcow2Header hdr = { 0 };
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) map = NULL;
    int fd;

    CU_ASSERT_TRUE_FATAL((out = run(mk)) != NULL);
    CU_ASSERT_TRUE_FATAL((fd = open(img, O_RDONLY)) >= 0);
    CU_ASSERT_TRUE_FATAL(vmrpQcow2ReadHeader(fd, &hdr, &error));
    CU_ASSERT_TRUE(hdr.data_file);
    CU_ASSERT_FALSE(hdr.mappable);
    map = vmrpQcow2ReadMap(fd, &hdr, &error);
    CU_ASSERT_PTR_NULL(map);
    CU_ASSERT_PTR_NOT_NULL(error);
    close(fd);
    vmrpQcow2HeaderClear(&hdr);
    g_clear_error(&error);

    CU_ASSERT_TRUE_FATAL(g_file_set_contents(junk, "QFI\xfb but not a header", -1, NULL));
    CU_ASSERT_TRUE_FATAL((fd = open(junk, O_RDONLY)) >= 0);
    CU_ASSERT_FALSE(vmrpQcow2ReadHeader(fd, &hdr, &error));
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error->message, "not a qcow2 image") : NULL);
    close(fd);
}

int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testSameAsQemuImg),
        VMRP_TEST(testRefuses),
        { NULL, NULL },
    };

    return vmrpTestMain("qcow2-read", cases, vmrpNbdTestInit, vmrpNbdTestCleanup);
}
