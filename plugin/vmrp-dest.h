/*
 * vmrp-dest.h: a destination repository for rp-copy and collection-sync,
 * behind a small interface of file operations so that a remote backend
 * (SFTP) can be added beside the local one
 *
 * Paths are relative to the repository's root, '/'-separated, checked by
 * the caller (names from manifests pass vmrpNameCheck*).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "vmrp-point.h"

typedef struct _vmrpDest vmrpDest;

/* Bytes of a file copy so far, and the offset below which the copy holds all
 * of the file's data (called from the copying thread). */
typedef void (*vmrpDestProgressFunc)(uint64_t done, uint64_t upto, void *opaque);

typedef struct {
    const char *scheme;     /* "file", "ssh" */
    bool (*make_dir)(vmrpDest *dest, const char *rel, GError **error);
    /* a small file, written whole (and fsync'd) under a temporary name then renamed */
    bool (*write_file)(vmrpDest *dest, const char *rel, const char *data, size_t len,
                       GError **error);
    /* a copy of the local file @src: only its allocated data crosses, holes stay
     * holes; fsync'd.  @progress gets the data bytes sent so far at least every
     * 4 MiB (it may sleep there: the bandwidth limit) */
    bool (*copy_file)(vmrpDest *dest, const char *src, const char *rel,
                      vmrpDestProgressFunc progress, void *opaque, GCancellable *cancel,
                      GError **error);
    /* NULL (no error) when it does not exist */
    char *(*read_file)(vmrpDest *dest, const char *rel, size_t max, GError **error);
    /* names in a folder; NULL (no error) when it does not exist */
    GPtrArray *(*list)(vmrpDest *dest, const char *rel, GError **error);
    bool (*rename)(vmrpDest *dest, const char *from, const char *to, GError **error);
    bool (*remove_tree)(vmrpDest *dest, const char *rel, GError **error);
    bool (*sync_dir)(vmrpDest *dest, const char *rel, GError **error);
    /* an exclusive lock on the file @rel, held until vmrpDestUnlock; BUSY when held */
    int (*lock)(vmrpDest *dest, const char *rel, GError **error);
    void (*unlock)(vmrpDest *dest, int handle);
    /* the path of @rel on this host when there is one (local), else NULL: where
     * qemu-img and qemu-nbd can read what was copied */
    char *(*local_path)(vmrpDest *dest, const char *rel);
    void (*close)(vmrpDest *dest);

    /* Where there is no local path (ssh), in place of qemu-img and the data
     * digests (NULL in the local backend): */
    /* the files @files (relative to @dir) that copy_file just wrote, read back
     * and compared with the SHA-256 of what was sent; their digests recorded
     * in @dir/SHA256SUMS.  The first problem found, NULL when all match. */
    char *(*check_copy)(vmrpDest *dest, const char *dir, GPtrArray *files, GError **error);
    /* the digests (hex) of the file @rel in each of the @n @algorithms, in
     * their order, from one read of it whole */
    GStrv (*digest_file)(vmrpDest *dest, const char *rel, guint n,
                         const vmrpDigestAlgorithm *algorithms, GCancellable *cancel,
                         GError **error);
    /* @rel into the new local file @path (holes where it reads zeroes); its
     * SHA-256 into @ret_sha256 */
    bool (*fetch_file)(vmrpDest *dest, const char *rel, const char *path,
                       vmrpDestProgressFunc progress, void *opaque, GCancellable *cancel,
                       char **ret_sha256, GError **error);
    /* the size of the file @rel, -1 (error set) when it cannot be read */
    int64_t (*file_size)(vmrpDest *dest, const char *rel, GError **error);
} vmrpDestOps;

/* The record of a point's files at an ssh destination, in sha256sum's format. */
#define VMRP_DEST_SUMS "SHA256SUMS"
/* The lock of a collection taken over SFTP, beside its .lock (vmrp-dest-ssh.c). */
#define VMRP_DEST_SFTP_LOCK ".sftp-lock"
/* A point being copied, renamed into place once checked. */
#define VMRP_DEST_CREATING ".creating-"

struct _vmrpDest {
    const vmrpDestOps *ops;
    char *spec;             /* as the user gave it, for messages */
    char *root;             /* the backend's root (a local path) */
};

/* A destination from the user's spec: a local folder (made when missing) or
 * ssh://[user@]host[:port]/path (vmrp-dest-ssh.c; its folder is made when
 * first written). */
vmrpDest *vmrpDestOpen(const char *spec, GError **error);
void vmrpDestFree(vmrpDest *dest);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpDest, vmrpDestFree)

/* Whether @spec names a repository on another host (ssh://). */
bool vmrpDestIsRemote(const char *spec);

/* An empty folder @rel at @dest (what a killed copy left there removed),
 * with the subfolders @folders (relative to it: nvram/, tpm/). */
bool vmrpDestMakeEmptyDir(vmrpDest *dest, const char *rel, GPtrArray *folders,
                          GError **error);

/* The last step of a copy of a point: the manifest of @copy, whose files in
 * @tmp_rel were checked just now, records that check as its verification
 * there, and the folder is renamed to @final_rel (its parent synced). */
bool vmrpDestCommitPoint(vmrpDest *dest, vmrpPoint *copy, const char *tmp_rel,
                         const char *final_rel, GError **error);

/* The SFTP backend (vmrp-dest-ssh.c). */
vmrpDest *vmrpDestSshOpen(const char *spec, GError **error);

/* Makes @dest a repository holding a copy of the collection @uuid (@name) of
 * the repository @src_id: repository.json in an empty folder, refused when
 * it is that repository itself, not a repository, or holds the domain's own
 * collection (not a copy). */
bool vmrpDestPrepare(vmrpDest *dest, const char *src_id, const char *uuid, const char *name,
                     GError **error);

/* The committed point ids in @points_rel at @dest into @ret_ids; leftovers of
 * interrupted copies (.creating-*) are removed (hold the collection's lock). */
bool vmrpDestScanPoints(vmrpDest *dest, const char *points_rel, GHashTable *ret_ids,
                        GError **error);
