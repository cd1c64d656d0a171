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

typedef struct _vmrpDest vmrpDest;

/* Bytes of a file copy so far (called from the copying thread). */
typedef void (*vmrpDestProgressFunc)(uint64_t done, void *opaque);

typedef struct {
    const char *scheme;     /* "file" */
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
} vmrpDestOps;

struct _vmrpDest {
    const vmrpDestOps *ops;
    char *spec;             /* as the user gave it, for messages */
    char *root;             /* the backend's root (a local path) */
};

/* A destination from the user's spec: a local folder (made when missing).
 * ssh://... is not supported yet (a clear error). */
vmrpDest *vmrpDestOpen(const char *spec, GError **error);
void vmrpDestFree(vmrpDest *dest);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpDest, vmrpDestFree)
