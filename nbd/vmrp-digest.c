/*
 * vmrp-digest.c: XXH3-128 digests with libxxhash, SHA-256 with libcrypto
 *
 * XXH3-128 hashes 66 GB/s from the cache on the test host with AVX-512
 * (libxxhash's run-time dispatch, as xxhsum -b11 uses it), 16 GB/s with
 * the SSE2 that libxxhash's plain functions are built for; SHA-256
 * (libcrypto, with the CPU's SHA extensions) 1.7 GB/s, GLib's GChecksum
 * 150 MB/s: with SHA-256 the digest of a full point cost a fourth of its
 * time whenever the host had no CPU to spare (bench-chain.sh --also).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <xxhash.h>
#if VMRP_XXH_DISPATCH
/* XXH3_128bits_update becomes XXH3_128bits_update_dispatch: the same
 * digests, with AVX2 or AVX-512 where the CPU has them */
# include <xxh_x86dispatch.h>
#endif

#include "vmrp-digest.h"
#include "vmrp-nbd-error.h"

struct _vmrpDigest {
    EVP_MD_CTX *ctx;             /* SHA-256, or ... */
    XXH3_state_t *xxh;           /* ... XXH3-128 */
    GArray *extents;
};

static const char *const algorithmNames[] = {
    [VMRP_DIGEST_SHA256] = "sha256",
    [VMRP_DIGEST_XXH128] = "xxh128",
};

const char *
vmrpDigestAlgorithmName(vmrpDigestAlgorithm algorithm)
{
    return algorithmNames[algorithm];
}

bool
vmrpDigestAlgorithmParse(const char *name, vmrpDigestAlgorithm *ret)
{
    size_t i;

    for (i = 0; name && i < G_N_ELEMENTS(algorithmNames); i++) {
        if (g_str_equal(name, algorithmNames[i])) {
            *ret = i;
            return true;
        }
    }
    return false;
}

vmrpDigest *
vmrpDigestNew(vmrpDigestAlgorithm algorithm)
{
    vmrpDigest *dg = g_new0(vmrpDigest, 1);

    if (algorithm == VMRP_DIGEST_SHA256) {
        dg->ctx = EVP_MD_CTX_new();
        if (!dg->ctx || EVP_DigestInit_ex(dg->ctx, EVP_sha256(), NULL) != 1)
            g_error("libcrypto: cannot start a SHA-256 digest");
    } else {
        dg->xxh = XXH3_createState();
        if (!dg->xxh || XXH3_128bits_reset(dg->xxh) != XXH_OK)
            g_error("libxxhash: cannot start an XXH3-128 digest");
    }
    dg->extents = g_array_new(FALSE, FALSE, sizeof(vmrpDigestExtent));
    return dg;
}

void
vmrpDigestFree(vmrpDigest *dg)
{
    if (!dg)
        return;
    EVP_MD_CTX_free(dg->ctx);
    XXH3_freeState(dg->xxh);
    g_array_unref(dg->extents);
    g_free(dg);
}

void
vmrpDigestAddBytes(vmrpDigest *dg, const void *buf, size_t length)
{
    if (dg->ctx)
        EVP_DigestUpdate(dg->ctx, buf, length);
    else
        XXH3_128bits_update(dg->xxh, buf, length);
}

void
vmrpDigestAddPiece(vmrpDigest *dg, uint64_t offset, const void *buf, size_t length)
{
    vmrpDigestExtent *last = dg->extents->len ?
        &g_array_index(dg->extents, vmrpDigestExtent, dg->extents->len - 1) : NULL;

    if (length == 0)
        return;
    if (last && last->offset + last->length == offset) {
        last->length += length;
    } else {
        vmrpDigestExtent e = { offset, length };
        guint64 be = GUINT64_TO_BE(offset);

        g_array_append_val(dg->extents, e);
        vmrpDigestAddBytes(dg, &be, sizeof(be));
    }
    vmrpDigestAddBytes(dg, buf, length);
}

char *
vmrpDigestFinish(vmrpDigest *dg, GArray **ret_extents)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    GString *hex = g_string_sized_new(64);
    unsigned int i;

    if (dg->ctx) {
        EVP_DigestFinal_ex(dg->ctx, md, &len);
    } else {
        /* big-endian, as xxhsum -H2 prints it */
        XXH128_canonical_t canon;

        XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(dg->xxh));
        G_STATIC_ASSERT(sizeof(canon.digest) <= sizeof(md));
        len = sizeof(canon.digest);
        memcpy(md, canon.digest, len);
    }
    for (i = 0; i < len; i++)
        g_string_append_printf(hex, "%02x", md[i]);
    if (ret_extents)
        *ret_extents = g_array_ref(dg->extents);
    return g_string_free(hex, FALSE);
}

char *
vmrpDigestFile(const char *path, vmrpDigestAlgorithm algorithm, GError **error)
{
    g_autoptr(vmrpDigest) dg = vmrpDigestNew(algorithm);
    g_autofree char *buf = g_malloc(1024 * 1024);
    int fd;
    ssize_t n;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED, "cannot read %s: %s",
                    path, g_strerror(errno));
        return NULL;
    }
    while ((n = read(fd, buf, 1024 * 1024)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED, "cannot read %s: %s",
                        path, g_strerror(errno));
            close(fd);
            return NULL;
        }
        vmrpDigestAddBytes(dg, buf, n);
    }
    close(fd);
    return vmrpDigestFinish(dg, NULL);
}

bool
vmrpDigestIsHex(const char *text, vmrpDigestAlgorithm algorithm)
{
    size_t len = algorithm == VMRP_DIGEST_SHA256 ? 64 : 32;
    size_t i;

    if (!text || strlen(text) != len)
        return false;
    for (i = 0; i < len; i++) {
        if (!g_ascii_isdigit(text[i]) && !(text[i] >= 'a' && text[i] <= 'f'))
            return false;
    }
    return true;
}
