/*
 * vmrp-files.h: file-level reads of a disk restore point (file-list,
 * file-restore), inside libguestfs's appliance: the guest's file systems are
 * never parsed by the host's kernel
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "vmrp-repo.h"

/* One disk of one point, opened read-only in a running appliance. */
typedef struct _vmrpFiles vmrpFiles;

typedef enum {
    VMRP_FILE_REGULAR,
    VMRP_FILE_DIRECTORY,
    VMRP_FILE_SYMLINK,
    VMRP_FILE_OTHER,          /* device, fifo, socket: listed, never restored */
    VMRP_FILE_FILESYSTEM,     /* a file system of the disk (PATH "/" of a partitioned disk) */
} vmrpFileType;

typedef struct {
    char *name;               /* a file's name; a file system's: vda1, vg/lv */
    vmrpFileType type;
    char *fstype;             /* VMRP_FILE_FILESYSTEM: ext4, xfs, ... */
    uint32_t mode;            /* st_mode, type bits included */
    int64_t uid;
    int64_t gid;
    int64_t size;
    int64_t mtime;            /* seconds */
    int64_t mtime_ns;
    int64_t atime;
    int64_t atime_ns;
    char *link;               /* a symlink's target */
} vmrpFileEntry;

void vmrpFileEntryFree(vmrpFileEntry *entry);

/* The appliance's folder: $VMRP_APPLIANCE_DIR or the configured one.  Its
 * kernel/ (prepare-host.sh) is used when the host has no /boot kernel; its
 * cache/ keeps the built appliance, so that only the first launch builds it. */
const char *vmrpFilesApplianceDir(void);

/* Opens disk @target of point @id (its image and the backing chain in the
 * repository) read-only and starts the appliance.  Cancelling @cancel (may
 * be NULL) ends a transfer under way. */
vmrpFiles *vmrpFilesOpen(vmrpRepo *repo, const char *id, const char *target,
                         GCancellable *cancel, GError **error);
void vmrpFilesFree(vmrpFiles *files);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpFiles, vmrpFilesFree)

/* The entries at @path ("/etc", "vda1:/etc", "vg/lv:/"): a folder's
 * children sorted by name, or the file itself; the disk's file systems for
 * "/" on a disk without one file system on the whole disk.  @ret_fs gets the
 * file system's name that was read (NULL for the list of file systems). */
GPtrArray *vmrpFilesList(vmrpFiles *files, const char *path, char **ret_fs, GError **error);

typedef struct {
    /* bytes of file data written, of @total (the regular files' sizes) */
    void (*progress)(void *opaque, uint64_t done, uint64_t total);
    void *opaque;
    GCancellable *cancel;     /* checked between files; NULL: none */
} vmrpFilesRestoreOptions;

typedef struct {
    char *dest;               /* the restored file or folder */
    uint64_t files;           /* regular files */
    uint64_t dirs;
    uint64_t symlinks;
    uint64_t skipped;         /* devices, fifos, sockets: not restored */
    uint64_t bytes;
} vmrpFilesRestoreResult;

void vmrpFilesRestoreResultClear(vmrpFilesRestoreResult *res);

/* Restores @path (a file, a symlink or a folder, recursively) into the
 * existing folder @outdir as @outdir/<its name> (the file system's name for
 * a file system's root), with modes, owners and times.  That name must not
 * exist yet.  The tree is written under a temporary name and renamed into
 * place when complete; nothing is written outside @outdir. */
bool vmrpFilesRestore(vmrpFiles *files, const char *path, const char *outdir,
                      const vmrpFilesRestoreOptions *opts, vmrpFilesRestoreResult *ret_res,
                      GError **error);

/* internal: shared by vmrp-files.c and vmrp-files-restore.c */
typedef struct guestfs_h guestfs_h;
guestfs_h *vmrpFilesHandle(vmrpFiles *files);
/* Mounts the file system @path names and returns the path inside it. */
char *vmrpFilesResolve(vmrpFiles *files, const char *path, char **ret_fs, GError **error);
/* The entry @path names; NULL without an error (and @ret_fs NULL) when it
 * names the disk's several file systems.  @ret_inner: the path inside. */
vmrpFileEntry *vmrpFilesLookup(vmrpFiles *files, const char *path, char **ret_fs,
                               char **ret_inner, GError **error);
/* The names in a guest folder (NULL-terminated, "." and ".." left out). */
char **vmrpFilesReadDir(vmrpFiles *files, const char *dir, GError **error);
/* The error of the last failed libguestfs call, as one line. */
void vmrpFilesSetError(vmrpFiles *files, GError **error, int code, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
bool vmrpFilesStat(vmrpFiles *files, const char *dir, char **names, GPtrArray *ret_entries,
                   GError **error);
