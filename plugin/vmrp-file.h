/*
 * vmrp-file.h: durable file operations for the repository
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>

/* Writes @len bytes to @path through a temporary file in the same folder,
 * fsync'd and renamed over @path, with @mode. */
bool vmrpFileWriteAtomic(const char *path, const char *data, size_t len,
                         mode_t mode, GError **error);

/* The same without any fsync: a reader sees the old or the new content,
 * never a mix, but a crash may lose the write.  For files that something
 * syncs later (vmrpRepoPointCommit) or that are only progress. */
bool vmrpFileWriteReplace(const char *path, const char *data, size_t len,
                          mode_t mode, GError **error);

/* fsync()s a file or folder. */
bool vmrpFileSync(const char *path, GError **error);

/* Creates @path (not its parents) with @mode; an existing folder is fine
 * when @may_exist, and its mode is then set to @mode. */
bool vmrpFileMakeDir(const char *path, mode_t mode, bool may_exist, GError **error);

/* Creates @path with @mode and its missing parents with @parent_mode. */
bool vmrpFileMakeDirWithParents(const char *path, mode_t parent_mode, mode_t mode,
                                GError **error);

/* Removes @path and everything below it; a missing path is no error.
 * Never follows a symbolic link out of the tree. */
bool vmrpFileRemoveTree(const char *path, GError **error);

/* Reads a whole small file (manifests, XML) of at most @max bytes. */
char *vmrpFileRead(const char *path, size_t max, size_t *ret_len, GError **error);
