/*
 * vmrp-disk.h: standalone disk images made from disk restore points
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "vmrp-repo.h"

/* @done and @total in bytes of the disk's virtual size. */
typedef void (*vmrpDiskProgressFunc)(const char *target, uint64_t done, uint64_t total,
                                     void *opaque);

/* How a copy reports and stops; every member may be NULL. */
typedef struct {
    vmrpDiskProgressFunc progress;
    /* before copying several disks one after the other: each one's size, so
     * that a job's percent covers them all from the start */
    void (*planned)(const char *target, uint64_t total, void *opaque);
    void (*started)(void *opaque);   /* the input is checked, the work begins (a job's
                                      * start: see vmrpCLIJobStarted) */
    void *opaque;
    GCancellable *cancel;            /* kills the copy: the call fails with
                                      * G_IO_ERROR_CANCELLED */
} vmrpDiskCopyOptions;

/*
 * Copies the image @src (qcow2; its whole backing chain is read, so the
 * top image of an increment gives the disk as at its point) into a new
 * standalone image @dest of @format ("qcow2" or "raw") with qemu-img
 * convert, reporting progress as it goes (@copy nullable).  @dest is
 * fsync'd; on failure or cancellation it is removed.  @dest must not exist.
 */
bool vmrpDiskConvert(const char *src, const char *dest, const char *format,
                     const char *target, uint64_t size,
                     const vmrpDiskCopyOptions *copy, GError **error);

/* Copies everything @image's backing chain holds into @image (qcow2), which
 * then has no backing file (qemu-img rebase -b ""), with progress.  The
 * chain read is @backing (qcow2) and its own chain, whatever @image's header
 * names; an image with an external data file is refused.  A
 * cancelled flatten leaves @image as good as before: still on its backing
 * chain, which holds the same data. */
bool vmrpDiskFlatten(const char *image, const char *backing, const char *target,
                     const vmrpDiskCopyOptions *copy, GError **error);

/*
 * disk-create: the disk @target of point @id as the standalone image
 * @output of @format (NULL: qcow2).  Refuses an existing @output, a target
 * the point does not hold and an excluded disk, before writing anything.
 */
bool vmrpDiskCreate(vmrpRepo *repo, const char *id, const char *target,
                    const char *output, const char *format,
                    const vmrpDiskCopyOptions *copy, GError **error);
