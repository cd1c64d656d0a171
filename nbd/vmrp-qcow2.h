/*
 * vmrp-qcow2.h: writes a new qcow2 image straight from a disk's extent map
 *
 * A point's image is written once, front to back, from an extent map known
 * before the first byte is read.  So its whole layout can be planned up
 * front: header, L1 table, refcount table and blocks, L2 tables, then the
 * data clusters in guest order.  The metadata is written at creation, the
 * data with plain pwrite()s into the file (no qemu-nbd in between), and a
 * cluster whose data reads as zeroes is not written but marked as a zero
 * cluster.  The result is a standard qcow2 (version 3, 64 KiB clusters,
 * 16-bit refcounts) that qemu-img check finds clean.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "vmrp-extents.h"

/* The images' cluster size: the unit of what is read and written. */
#define VMRP_QCOW2_CLUSTER_SIZE (64 * 1024ULL)
/* The alignment of the buffers given to vmrpQcow2WriterWrite (O_DIRECT). */
#define VMRP_QCOW2_ALIGN 4096

typedef struct _vmrpQcow2Writer vmrpQcow2Writer;

/* Plans the image of @map and creates it at @path (which must not exist)
 * with all its metadata; the data is still to be written.  Clusters
 * touched by DATA (or by ZERO and CLEAN together) are allocated; with a
 * @backing (a path relative to the image's folder, in qcow2 format) ZERO
 * clusters are marked as reading zeroes over it, CLEAN ones left to it;
 * without, both are left unallocated. */
vmrpQcow2Writer *vmrpQcow2WriterCreate(const char *path,
                                       const vmrpExtentMap *map,
                                       const char *backing,
                                       GError **error);

/* What must be read from the source and written: the allocated clusters
 * as DATA extents (cluster-aligned, cut at the disk's end), CLEAN
 * elsewhere.  Owned by the writer. */
const vmrpExtentMap *vmrpQcow2WriterPlan(vmrpQcow2Writer *w);

/* Writes the guest's bytes of [offset, offset + length), which must lie
 * inside one DATA extent of the plan, clusters reading all zeroes
 * excepted (they become zero clusters).  @buf is VMRP_QCOW2_ALIGN-aligned
 * and holds @length rounded up to VMRP_QCOW2_ALIGN bytes (past the disk's
 * end they are zeroed there and written too).  Data goes to
 * the disk directly (O_DIRECT) where the file system allows it: the host's
 * page cache is left to its VMs.  Calls for distinct ranges may run in
 * parallel threads. */
bool vmrpQcow2WriterWrite(vmrpQcow2Writer *w,
                          uint64_t offset,
                          void *buf,
                          size_t length,
                          GError **error);

/* Flushes the image to stable storage and closes it. */
bool vmrpQcow2WriterFinish(vmrpQcow2Writer *w, GError **error);

/* Creates an empty image of @size bytes at @path (which must not exist),
 * mode 0600, without a flush: a backup job's scratch image, which QEMU
 * writes and nothing keeps. */
bool vmrpQcow2CreateEmpty(const char *path, uint64_t size, GError **error);

/* Closes the image if still open (without a flush): a caller that failed
 * removes the file itself. */
void vmrpQcow2WriterFree(vmrpQcow2Writer *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpQcow2Writer, vmrpQcow2WriterFree)
