/*
 * test-point.c: the point manifest, written and read back, and rejected
 * when damaged
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-test.h"
#include "vmrp-point.h"
#include "vmrp-names.h"
#include "vmrp-point-digest.h"
#include "vmrp-digest.h"

static vmrpPoint *
samplePoint(void)
{
    vmrpPoint *point = vmrpPointNew("vm1", "6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11");
    vmrpPointDisk *disk;

    point->requested = VMRP_CONSISTENCY_APPLICATION;
    point->achieved = VMRP_CONSISTENCY_CRASH;
    point->fallback_reason = g_strdup("guest agent is not connected");
    point->checkpoint = g_strdup_printf("vmrp-%s", point->id);
    point->freeze_ms = 17;
    disk = vmrpPointAddDisk(point, "vda");
    disk->source = g_strdup("/var/lib/libvirt/images/vm1 \"quoted\".qcow2");
    disk->format = g_strdup("qcow2");
    disk->image = g_strdup("vda.qcow2");
    disk->size = 1ULL << 40;
    disk->bytes_total = 3ULL << 30;
    disk->bytes_done = 1ULL << 30;
    disk = vmrpPointAddDisk(point, "vdb");
    disk->excluded = true;
    return point;
}

static void
testRoundTrip(void)
{
    g_autoptr(vmrpPoint) point = samplePoint();
    g_autofree char *text = vmrpPointToJSON(point);
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpPoint) back = vmrpPointFromJSON(text, &error);
    vmrpPointDisk *disk;

    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_TRUE(vmrpNameCheckPoint(point->id, NULL));
    CU_ASSERT_STRING_EQUAL(back->id, point->id);
    CU_ASSERT_STRING_EQUAL(back->domain_uuid, point->domain_uuid);
    CU_ASSERT_EQUAL(back->state, VMRP_POINT_CREATING);
    CU_ASSERT_EQUAL(back->requested, VMRP_CONSISTENCY_APPLICATION);
    CU_ASSERT_EQUAL(back->achieved, VMRP_CONSISTENCY_CRASH);
    CU_ASSERT_STRING_EQUAL(back->fallback_reason, point->fallback_reason);
    CU_ASSERT_EQUAL(back->freeze_ms, 17);
    CU_ASSERT_PTR_NULL(back->parent);
    CU_ASSERT_EQUAL(back->disks->len, 2);
    disk = vmrpPointFindDisk(back, "vda");
    CU_ASSERT_PTR_NOT_NULL_FATAL(disk);
    CU_ASSERT_STRING_EQUAL(disk->source, "/var/lib/libvirt/images/vm1 \"quoted\".qcow2");
    CU_ASSERT_EQUAL(disk->size, 1ULL << 40);
    CU_ASSERT_EQUAL(vmrpPointDiskPercent(disk), 33);
    disk = vmrpPointFindDisk(back, "vdb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(disk);
    CU_ASSERT_TRUE(disk->excluded);
    CU_ASSERT_PTR_NULL(disk->image);
    CU_ASSERT_EQUAL(vmrpPointBytes(back), 1ULL << 30);
}

#define SHA_A "5d2ac383371b408398accee7ec27c8c09ea5b74a0de0ceea6513388b15be5d1e"

/* The NVRAM and vTPM files: optional, kept through a round trip, and a
 * hostile path or checksum refused. */
static void
testFiles(void)
{
    g_autoptr(vmrpPoint) point = samplePoint();
    g_autofree char *plain = vmrpPointToJSON(point);
    g_autofree char *text = NULL;
    g_autoptr(vmrpPoint) back = NULL;
    g_autoptr(vmrpPoint) old = NULL;
    vmrpPointFile *file;
    static const char *const bad[][2] = {
        { "nvram", "nvram/../../x" }, { "nvram", "/etc/shadow" }, { "nvram", "nvram/a/b" },
        { "nvram", "tpm/x" }, { "tpm", "tpm/../x" }, { "tpm", "tpm/.lock" }, { "tpm", "tpm" },
        { "tpm", "tpm//x" }, { "disk", "disk/x" }, { "nvram", "nvram/" },
    };
    size_t i;

    /* a manifest without files (every point before them) reads as none */
    CU_ASSERT_PTR_NULL(strstr(plain, "\"files\""));
    CU_ASSERT_PTR_NOT_NULL_FATAL(old = vmrpPointFromJSON(plain, NULL));
    CU_ASSERT_EQUAL(old->files->len, 0);

    file = vmrpPointAddFile(point, "nvram", "nvram/VARS.fd");
    file->source = g_strdup("/var/lib/libvirt/qemu/nvram/vm1_VARS.fd");
    file->size = 540672;
    file->sha256 = g_strdup(SHA_A);
    file = vmrpPointAddFile(point, "tpm", "tpm/tpm2/tpm2-00.permall");
    file->size = 6170;
    file->sha256 = g_strdup(SHA_A);
    text = vmrpPointToJSON(point);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back = vmrpPointFromJSON(text, NULL));
    CU_ASSERT_EQUAL_FATAL(back->files->len, 2);
    file = g_ptr_array_index(back->files, 0);
    CU_ASSERT_STRING_EQUAL(file->kind, "nvram");
    CU_ASSERT_STRING_EQUAL(file->source, "/var/lib/libvirt/qemu/nvram/vm1_VARS.fd");
    CU_ASSERT_EQUAL(file->size, 540672);
    CU_ASSERT_STRING_EQUAL(file->sha256, SHA_A);
    CU_ASSERT_TRUE(vmrpPointHasFiles(back, "tpm"));
    CU_ASSERT_FALSE(vmrpPointHasFiles(old, "nvram"));

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(vmrpPoint) p = samplePoint();
        g_autofree char *t = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpPoint) r = NULL;

        file = vmrpPointAddFile(p, bad[i][0], bad[i][1]);
        file->sha256 = g_strdup(SHA_A);
        t = vmrpPointToJSON(p);
        r = vmrpPointFromJSON(t, &error);
        if (r)
            fprintf(stderr, "accepted hostile file path #%zu: %s\n", i, bad[i][1]);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NULL(error ? strchr(error->message, '\n') : NULL);
    }
    {
        g_autoptr(vmrpPoint) p = samplePoint();
        g_autofree char *t = NULL;

        file = vmrpPointAddFile(p, "nvram", "nvram/VARS.fd");
        file->sha256 = g_strdup("../../etc");
        t = vmrpPointToJSON(p);
        CU_ASSERT_PTR_NULL(vmrpPointFromJSON(t, NULL));
    }
}

static void
testFreezeAbsent(void)
{
    g_autoptr(vmrpPoint) point = samplePoint();
    g_autofree char *text = NULL;
    g_autoptr(vmrpPoint) back = NULL;

    point->freeze_ms = -1;
    text = vmrpPointToJSON(point);
    back = vmrpPointFromJSON(text, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_EQUAL(back->freeze_ms, -1);
}

/* Replaces the first @from in the sample's JSON by @to. */
static char *
damaged(const char *from, const char *to)
{
    g_autoptr(vmrpPoint) point = samplePoint();
    g_autofree char *text = vmrpPointToJSON(point);
    char *at = strstr(text, from);

    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    return g_strdup_printf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

static void
testDamaged(void)
{
    static const char *const edits[][2] = {
        { "\"format\": 1", "\"format\": 2" },
        { "\"format\": 1", "\"format\": \"1\"" },
        { "\"state\": \"Creating\"", "\"state\": \"Done\"" },
        { "\"kind\": \"full\"", "\"kind\": \"partial\"" },
        { "\"image\": \"vda.qcow2\"", "\"image\": \"../../../etc/shadow\"" },
        { "\"image\": \"vda.qcow2\"", "\"image\": \".hidden\"" },
        { "\"image\": \"vda.qcow2\"", "\"image\": null" },
        { "\"target\": \"vdb\"", "\"target\": \"vda\"" },
        { "\"target\": \"vdb\"", "\"target\": \"../x\"" },
        { "\"requested\": \"application\"", "\"requested\": \"perfect\"" },
        { "\"size\": 1099511627776", "\"size\": -1" },
        { "\"excluded\": true", "\"excluded\": 1" },
        { "\"disks\": [", "\"disks\": {\"a\": [" },
        { "\"uuid\": \"", "\"uuid\": \"x" },
        { "{", "[" },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(edits); i++) {
        g_autofree char *text = damaged(edits[i][0], edits[i][1]);
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpPoint) point = vmrpPointFromJSON(text, &error);

        if (point)
            fprintf(stderr, "accepted damaged manifest #%zu\n", i);
        CU_ASSERT_PTR_NULL(point);
        CU_ASSERT_PTR_NOT_NULL(error);
    }
}

/* Names from a manifest are joined to the repository's paths: whatever could
 * lead out of the point's folder (or name a file vmrp did not write) is refused. */
static void
testHostileNames(void)
{
    static const char *const edits[][2] = {
        { "\"image\": \"vda.qcow2\"", "\"image\": \"/etc/shadow\"" },
        { "\"image\": \"vda.qcow2\"", "\"image\": \"a/b.qcow2\"" },
        { "\"image\": \"vda.qcow2\"", "\"image\": \"..\"" },
        { "\"image\": \"vda.qcow2\"", "\"image\": \".\"" },
        { "\"image\": \"vda.qcow2\"", "\"image\": \"\"" },
        { "\"image\": \"vda.qcow2\"", "\"image\": \"..\\/x\"" },
        { "\"backing\": null", "\"backing\": \"../../../etc/passwd\"" },
        { "\"backing\": null", "\"backing\": \"/etc/passwd\"" },
        { "\"backing\": null", "\"backing\": \"../20240102-030405-abcdef/../../x\"" },
        { "\"backing\": null", "\"backing\": \"../20240102-030405-abcdef/.hidden\"" },
        { "\"backing\": null", "\"backing\": \"../20240102-030405-abcdef/a/b\"" },
        { "\"backing\": null", "\"backing\": \"../../20240102-030405-abcdef/vda.qcow2\"" },
        { "\"target\": \"vda\"", "\"target\": \"vda/../../x\"" },
        { "\"target\": \"vda\"", "\"target\": \"..\"" },
        { "\"target\": \"vda\"", "\"target\": \"\"" },
        { "\"target\": \"vda\"", "\"target\": \"vd\\u0000a\"" },
        { "\"id\": \"", "\"id\": \"../" },
        { "\"id\": \"", "\"id\": \"/" },
        { "\"parent\": null", "\"parent\": \"../../x\"" },
        { "\"parent\": null", "\"parent\": \"20240102-030405-abcdef/..\"" },
        { "\"uuid\": \"", "\"uuid\": \"../" },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(edits); i++) {
        g_autofree char *text = damaged(edits[i][0], edits[i][1]);
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpPoint) point = vmrpPointFromJSON(text, &error);

        if (point)
            fprintf(stderr, "accepted hostile manifest #%zu: %s\n", i, edits[i][1]);
        CU_ASSERT_PTR_NULL(point);
        CU_ASSERT_PTR_NOT_NULL(error);
        /* one line, whatever the file held */
        CU_ASSERT_PTR_NULL(error ? strchr(error->message, '\n') : NULL);
    }
}

/* A field that holds a newline does not make the error two lines. */
static void
testErrorOneLine(void)
{
    static const char *const edits[][2] = {
        { "\"state\": \"Creating\"", "\"state\": \"Crea\nting\"" },
        { "\"kind\": \"full\"", "\"kind\": \"fu\\nll\"" },
        { "\"requested\": \"application\"", "\"requested\": \"app\\nlication\"" },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(edits); i++) {
        g_autofree char *text = damaged(edits[i][0], edits[i][1]);
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpPoint) point = vmrpPointFromJSON(text, &error);

        CU_ASSERT_PTR_NULL(point);
        CU_ASSERT_PTR_NOT_NULL_FATAL(error);
        if (strchr(error->message, '\n'))
            fprintf(stderr, "two-line error: %s\n", error->message);
        CU_ASSERT_PTR_NULL(strchr(error->message, '\n'));
    }
}

static void
testNotJSON(void)
{
    static const char *const texts[] = {
        "", "{", "null", "[]", "{\"format\": 1}", "{} {}", "\xff\xfe", "{\"format\": 1,}",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(texts); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpPoint) point = vmrpPointFromJSON(texts[i], &error);
        CU_ASSERT_PTR_NULL(point);
        CU_ASSERT_PTR_NOT_NULL(error);
    }
}

static void
testUniqueIds(void)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int i;

    for (i = 0; i < 200; i++) {
        g_autoptr(vmrpPoint) point = vmrpPointNew("vm", "6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11");
        CU_ASSERT_FALSE(g_hash_table_contains(seen, point->id));
        g_hash_table_add(seen, g_strdup(point->id));
        /* ids sort in time order; a collection takes one point at a time */
        g_usleep(1100);
    }
}

/* A point made at a given time (run-policies --now) carries it in its id
 * and creation stamp; ids made in one second stay apart. */
static void
testCreatedAt(void)
{
    const char *uuid = "6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11";
    g_autoptr(vmrpPoint) a = vmrpPointNewAt("vm", uuid, 1893456000);   /* 2030-01-01 */
    g_autoptr(vmrpPoint) b = NULL;

    CU_ASSERT_TRUE(g_str_has_prefix(a->id, "20300101-000000-"));
    CU_ASSERT_STRING_EQUAL(a->created, "2030-01-01T00:00:00Z");
    CU_ASSERT_TRUE(vmrpNameCheckPoint(a->id, NULL));
    g_usleep(1100);
    b = vmrpPointNewAt("vm", uuid, 1893456000);
    CU_ASSERT_STRING_NOT_EQUAL(a->id, b->id);
}

#define HEX_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
/* XXH3-128: the first 32 digits */
#define HEX_A32 "0123456789abcdef0123456789abcdef"
#define HEX_B32 "fedcba9876543210fedcba9876543210"

/* A point with digests of @algorithm, as vmrp of today (XXH3-128) or before
 * 2026-12-04 (SHA-256) makes them. */
static vmrpPoint *
digestPointWith(vmrpDigestAlgorithm algorithm)
{
    vmrpPoint *point = samplePoint();
    vmrpPointDisk *disk = vmrpPointFindDisk(point, "vda");
    vmrpDigestExtent e1 = { 0, 65536 }, e2 = { 1 << 20, 4096 };
    size_t len = algorithm == VMRP_DIGEST_SHA256 ? 64 : 32;

    point->digest_algorithm = algorithm;
    disk->data_digest = g_strndup(HEX_A, len);
    disk->data_algorithm = algorithm;
    disk->data_extents = g_array_new(FALSE, FALSE, sizeof(vmrpDigestExtent));
    g_array_append_val(disk->data_extents, e1);
    g_array_append_val(disk->data_extents, e2);
    point->file_digests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_insert(point->file_digests, g_strdup("domain.xml"), g_strndup(HEX_B, len));
    point->manifest_digest = vmrpPointManifestDigest(point);
    return point;
}

static vmrpPoint *
digestPoint(void)
{
    return digestPointWith(VMRP_DIGEST_SHA256);
}

/* New points record XXH3-128, named so in the manifest; it reads back so,
 * and its manifest digest is 32 hex digits. */
static void
testDigestsXxh128(void)
{
    g_autoptr(vmrpPoint) fresh = samplePoint();
    g_autoptr(vmrpPoint) point = digestPointWith(VMRP_DIGEST_XXH128);
    g_autofree char *text = vmrpPointToJSON(point);
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpPoint) back = vmrpPointFromJSON(text, &error);
    vmrpPointDisk *disk;

    CU_ASSERT_EQUAL(fresh->digest_algorithm, VMRP_DIGEST_XXH128);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"algorithm\": \"xxh128\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"data_xxh128\": \"" HEX_A32 "\""));
    CU_ASSERT_PTR_NULL(strstr(text, "data_sha256"));
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_EQUAL(back->digest_algorithm, VMRP_DIGEST_XXH128);
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(back->file_digests, "domain.xml"), HEX_B32);
    CU_ASSERT_TRUE(vmrpDigestIsHex(back->manifest_digest, VMRP_DIGEST_XXH128));
    CU_ASSERT_STRING_EQUAL(back->manifest_digest, point->manifest_digest);
    disk = vmrpPointFindDisk(back, "vda");
    CU_ASSERT_EQUAL(disk->data_algorithm, VMRP_DIGEST_XXH128);
    CU_ASSERT_STRING_EQUAL(disk->data_digest, HEX_A32);
}

/* Digests and verification results go through the manifest; an older
 * manifest without them reads as before. */
static void
testDigestsRoundTrip(void)
{
    g_autoptr(vmrpPoint) point = digestPoint();
    g_autofree char *text = NULL;
    g_autofree char *again = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpPoint) back = NULL;
    g_autoptr(vmrpPoint) old = NULL;
    g_autoptr(vmrpPoint) plain = samplePoint();
    g_autofree char *plain_text = vmrpPointToJSON(plain);
    vmrpPointDisk *disk;

    point->verified = g_strdup("2026-12-04T05:00:00Z");
    point->verify_state = g_strdup("Failed");
    point->verify_reason = g_strdup("image vda.qcow2: data digest mismatch");
    text = vmrpPointToJSON(point);
    back = vmrpPointFromJSON(text, &error);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    disk = vmrpPointFindDisk(back, "vda");
    CU_ASSERT_STRING_EQUAL(disk->data_digest, HEX_A);
    CU_ASSERT_EQUAL_FATAL(disk->data_extents->len, 2);
    CU_ASSERT_EQUAL(g_array_index(disk->data_extents, vmrpDigestExtent, 1).offset, 1 << 20);
    CU_ASSERT_EQUAL(g_array_index(disk->data_extents, vmrpDigestExtent, 1).length, 4096);
    CU_ASSERT_PTR_NULL(vmrpPointFindDisk(back, "vdb")->data_digest);
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(back->file_digests, "domain.xml"), HEX_B);
    CU_ASSERT_STRING_EQUAL(back->manifest_digest, point->manifest_digest);
    CU_ASSERT_TRUE(vmrpPointVerifyFailed(back));
    CU_ASSERT_STRING_EQUAL(back->verify_reason, point->verify_reason);
    /* the verification and 'protected' are not part of the manifest digest */
    back->protected_ = true;
    again = vmrpPointManifestDigest(back);
    CU_ASSERT_STRING_EQUAL(again, point->manifest_digest);
    g_free(back->domain_name);
    back->domain_name = g_strdup("vm2");
    g_free(again);
    again = vmrpPointManifestDigest(back);
    CU_ASSERT_STRING_NOT_EQUAL(again, point->manifest_digest);

    old = vmrpPointFromJSON(plain_text, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    CU_ASSERT_PTR_NULL(old->file_digests);
    CU_ASSERT_PTR_NULL(old->manifest_digest);
    CU_ASSERT_PTR_NULL(vmrpPointFindDisk(old, "vda")->data_digest);
    CU_ASSERT_FALSE(vmrpPointVerifyFailed(old));
    CU_ASSERT_PTR_NULL(strstr(plain_text, "digests"));
}

static void
testDigestsDamaged(void)
{
    static const char *const edits[][2] = {
        { "\"data_sha256\": \"0123", "\"data_sha256\": \"X123" },
        { "\"data_sha256\": \"0123", "\"data_sha256\": 12, \"x\": \"" },
        { "1048576,", "-1048576," },
        { "1048576,", "0," },
        { "1048576,", "1048576, 1," },
        { "1048576,", "1099511627775," },
        { "4096\n", "0\n" },
        { "\"data_extents\": [", "\"data_extentz\": [" },
        { "\"algorithm\": \"sha256\"", "\"algorithm\": \"md5\"" },
        { "\"domain.xml\"", "\"../x\"" },
        { "\"domain.xml\"", "\"domain\\n.xml\"" },
        { "\"domain.xml\": \"fedc", "\"domain.xml\": null, \"x\": \"fedc" },
        { "\"domain.xml\": \"fedc", "\"domain.xml\": \"Fedc" },
        { "\"verify_state\": \"OK\"", "\"verify_state\": \"Maybe\"" },
        { "\"digests\": {", "\"digests\": [ {" },
        /* a SHA-256 is not an XXH3-128, nor the other way round */
        { "\"algorithm\": \"sha256\"", "\"algorithm\": \"xxh128\"" },
        { "\"data_sha256\"", "\"data_xxh128\"" },
        { "x32\"algorithm\": \"xxh128\"", "\"algorithm\": \"sha256\"" },
        { "x32\"data_xxh128\"", "\"data_sha256\"" },
        /* one data digest per disk */
        { "x32\"data_xxh128\": ", "\"data_sha256\": \"" HEX_A "\", \"data_xxh128\": " },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(edits); i++) {
        /* "x32" marks the edits of an XXH3-128 point */
        bool xxh = g_str_has_prefix(edits[i][0], "x32");
        const char *from = edits[i][0] + (xxh ? 3 : 0);
        g_autoptr(vmrpPoint) point = digestPointWith(xxh ? VMRP_DIGEST_XXH128
                                                         : VMRP_DIGEST_SHA256);
        g_autofree char *text = NULL;
        g_autofree char *bad = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpPoint) back = NULL;
        char *at;

        point->verify_state = g_strdup("OK");
        text = vmrpPointToJSON(point);
        at = strstr(text, from);
        if (!at)
            fprintf(stderr, "edit #%zu: '%s' not found in\n%s\n", i, from, text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        bad = g_strdup_printf("%.*s%s%s", (int)(at - text), text, edits[i][1],
                              at + strlen(from));
        back = vmrpPointFromJSON(bad, &error);
        if (back)
            fprintf(stderr, "accepted damaged digests #%zu\n", i);
        CU_ASSERT_PTR_NULL(back);
        CU_ASSERT_PTR_NOT_NULL(error);
    }
}

/* A point is refused when it, or a point it builds on, failed verification. */
static void
testCheckVerified(void)
{
    g_autoptr(GPtrArray) points = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpPointFree);
    g_autoptr(GError) error = NULL;
    vmrpPoint *full = samplePoint();
    vmrpPoint *inc = samplePoint();
    vmrpPoint *other = samplePoint();

    g_free(inc->id);
    inc->id = g_strdup("20261204-050000-000001");
    vmrpPointFindDisk(inc, "vda")->backing = g_strdup_printf("../%s/vda.qcow2", full->id);
    g_free(other->id);
    other->id = g_strdup("20261204-050000-000002");
    g_ptr_array_add(points, full);
    g_ptr_array_add(points, inc);
    g_ptr_array_add(points, other);
    CU_ASSERT_TRUE(vmrpPointCheckVerified(points, inc, NULL));

    full->verify_state = g_strdup("Failed");
    full->verified = g_strdup("2026-12-04T05:00:00Z");
    full->verify_reason = g_strdup("image vda.qcow2: bad");
    CU_ASSERT_FALSE(vmrpPointCheckVerified(points, full, &error));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "image vda.qcow2: bad"));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "--force"));
    g_clear_error(&error);
    CU_ASSERT_FALSE(vmrpPointCheckVerified(points, inc, &error));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "builds on point"));
    CU_ASSERT_TRUE(vmrpPointCheckVerified(points, other, NULL));
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testCheckVerified),
    VMRP_TEST(testDigestsRoundTrip),
    VMRP_TEST(testDigestsDamaged),
    VMRP_TEST(testDigestsXxh128),
    VMRP_TEST(testRoundTrip),
    VMRP_TEST(testFreezeAbsent),
    VMRP_TEST(testFiles),
    VMRP_TEST(testDamaged),
    VMRP_TEST(testHostileNames),
    VMRP_TEST(testErrorOneLine),
    VMRP_TEST(testNotJSON),
    VMRP_TEST(testUniqueIds),
    VMRP_TEST(testCreatedAt),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("point", cases, NULL, NULL);
}
