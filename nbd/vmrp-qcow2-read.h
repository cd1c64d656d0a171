/*
 * vmrp-qcow2-read.h: a qcow2 image's header and the map of its own layer,
 * read in the process
 *
 * What rp-verify and a copy's check asked `qemu-img info` and `qemu-img map`
 * for, without starting a program per image (20 ms each on an idle host, 50
 * under load, four of them per image copied).  Only what those checks need:
 * the backing file the header names, an external data file, and where each
 * guest cluster of the image's own layer lies in the file.  Anything this
 * reader does not know (encryption, extended L2 entries, an external data
 * file for the map, a header it cannot make sense of) is said, never
 * guessed: the callers then fall back to qemu-img or qemu-nbd.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct {
    uint32_t version;           /* 2 or 3 */
    uint32_t cluster_bits;
    uint64_t size;              /* the guest's size */
    char *backing;              /* the backing file named, or NULL */
    char *backing_format;       /* its format extension, or NULL */
    bool data_file;             /* the data lies in an external file */
    bool mappable;              /* vmrpQcow2ReadMap can read its L2 entries */
    uint64_t l1_offset;
    uint32_t l1_size;
} vmrpQcow2Header;

/* The header of the qcow2 file @fd; false (with @error) when it is none. */
bool vmrpQcow2ReadHeader(int fd, vmrpQcow2Header *ret, GError **error);
void vmrpQcow2HeaderClear(vmrpQcow2Header *hdr);

/* The same of the file @path (not followed when a symbolic link); errors
 * name the file. */
bool vmrpQcow2ReadHeaderAt(const char *path, vmrpQcow2Header *ret, GError **error);

/* The virtual size from the header of the qcow2 image at @path (one in use
 * by QEMU too: QEMU writes a new size there when it resizes); @ret_size is
 * left alone on error. */
bool vmrpQcow2ReadSize(const char *path, uint64_t *ret_size, GError **error);

/* A run of guest bytes [start, start + length) of the image's own layer. */
typedef struct {
    uint64_t start;
    uint64_t length;
    bool zero;                  /* reads as zeroes */
    int64_t offset;             /* its data in the file; -1 when none (zero, or
                                 * not in this layer, or compressed) */
} vmrpQcow2MapEntry;

/* The map of the image's own layer, runs in guest order covering its size,
 * as `qemu-img map` gives its depth-0 entries: unallocated clusters read
 * as zeroes when there is no backing file and are elsewhere (offset -1, not
 * zero) when there is one.  NULL (with @error) when @hdr is not mappable
 * or a table cannot be read. */
GArray *vmrpQcow2ReadMap(int fd, const vmrpQcow2Header *hdr, GError **error);
