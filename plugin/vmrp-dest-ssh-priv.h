/*
 * vmrp-dest-ssh-priv.h: what the SFTP backend's two files share: the
 * connection (vmrp-dest-ssh.c: connect, host key, keys, lock, the ops
 * table) and the file operations (vmrp-dest-sftp.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "vmrp-dest.h"

#define SSH_CHUNK (64 * 1024)           /* one SFTP read or write */
#define SSH_READ_AHEAD 32               /* reads in flight */

typedef struct {
    vmrpDest base;
    char *user;
    char *host;
    int port;
    ssh_session session;
    sftp_session sftp;
    GHashTable *sent;           /* rel -> SHA-256 of what copy_file sent */
    char *lock_rel;             /* the .sftp-lock held */
} vmrpSshDest;

static inline vmrpSshDest *
vmrpSshOf(vmrpDest *dest)
{
    return (vmrpSshDest *)dest;
}

/* The remote path of @rel (the root when empty). */
char *vmrpSftpPath(vmrpDest *dest, const char *rel);
/* Sets @error to "SPEC: cannot WHAT REL: the server's reason"; false. */
bool vmrpSftpFail(vmrpSshDest *d, GError **error, const char *what, const char *rel);

/* vmrpDestOps of the backend (see vmrp-dest.h) */
bool vmrpSftpMakeDir(vmrpDest *dest, const char *rel, GError **error);
bool vmrpSftpWriteFile(vmrpDest *dest, const char *rel, const char *data, size_t len,
                       GError **error);
bool vmrpSftpCopyFile(vmrpDest *dest, const char *src, const char *rel,
                      vmrpDestProgressFunc progress, void *opaque, GCancellable *cancel,
                      GError **error);
char *vmrpSftpReadFile(vmrpDest *dest, const char *rel, size_t max, GError **error);
GPtrArray *vmrpSftpList(vmrpDest *dest, const char *rel, GError **error);
bool vmrpSftpRename(vmrpDest *dest, const char *from, const char *to, GError **error);
bool vmrpSftpRemoveTree(vmrpDest *dest, const char *rel, GError **error);
bool vmrpSftpSyncDir(vmrpDest *dest, const char *rel, GError **error);
char *vmrpSftpCheckCopy(vmrpDest *dest, const char *dir, GPtrArray *files, GError **error);
GStrv vmrpSftpDigestFile(vmrpDest *dest, const char *rel, guint n,
                         const vmrpDigestAlgorithm *algorithms, GCancellable *cancel,
                         GError **error);
bool vmrpSftpFetchFile(vmrpDest *dest, const char *rel, const char *path,
                       vmrpDestProgressFunc progress, void *opaque, GCancellable *cancel,
                       char **ret_sha256, GError **error);
int64_t vmrpSftpFileSize(vmrpDest *dest, const char *rel, GError **error);
