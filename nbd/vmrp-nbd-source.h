/*
 * vmrp-nbd-source.h: the read side: a connection to an NBD export (the
 * pull-mode backup's export, or any NBD server) and its extent map
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "vmrp-extents.h"
#include "vmrp-nbd-error.h"

/* One connection. Use a source from one thread at a time (a copy runs its
 * own poll loop on it). */
typedef struct _vmrpNbdSource vmrpNbdSource;

/* Connects to the export @export_name ("" is the default export) of the NBD
 * server listening on the UNIX socket @socket_path, asking for the meta
 * contexts base:allocation and, when @bitmap is not NULL,
 * qemu:dirty-bitmap:BITMAP. For a libvirt pull-mode backup, BITMAP is the
 * disk's exportbitmap in the backup XML (vmrp sets it; libvirt's default is
 * "backup-TARGET"), not the checkpoint's name. Fails (VMRP_NBD_ERROR_UNSUPPORTED, message
 * naming the context) when the server does not offer one of them. */
vmrpNbdSource *vmrpNbdSourceOpen(const char *socket_path,
                                 const char *export_name,
                                 const char *bitmap,
                                 GError **error);

/* Where an NBD server listens: a UNIX socket, or TCP, there with TLS from
 * x509 files (libnbd's nbd_set_tls_certificates: ca-cert.pem,
 * client-cert.pem, client-key.pem), the server's certificate checked. */
typedef struct {
    const char *socket_path;   /* or: */
    const char *host;
    const char *port;
    const char *tls_dir;       /* NULL: plain TCP */
} vmrpNbdAddress;

/* vmrpNbdSourceOpen at @addr. */
vmrpNbdSource *vmrpNbdSourceOpenAt(const vmrpNbdAddress *addr,
                                   const char *export_name,
                                   const char *bitmap,
                                   GError **error);

/* Disconnects and frees; accepts NULL. */
void vmrpNbdSourceFree(vmrpNbdSource *src);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpNbdSource, vmrpNbdSourceFree);

/* The export's size in bytes. */
uint64_t vmrpNbdSourceGetSize(vmrpNbdSource *src);

/* The dirty bitmap asked for at open, or NULL. */
const char *vmrpNbdSourceGetBitmap(vmrpNbdSource *src);

/* Whether the server allows several connections to the export (multi-conn). */
bool vmrpNbdSourceCanMultiConn(vmrpNbdSource *src);

/* The server's maximum request size in bytes, 0 when it did not say. */
uint64_t vmrpNbdSourceGetMaxRequest(vmrpNbdSource *src);

/* Maps the whole export: NBD_STATE_ZERO -> ZERO, otherwise DATA (a hole that
 * is not known to read as zeroes is DATA); when a bitmap was asked for,
 * regions it does not mark dirty are CLEAN. Coalesced, covering [0, size). */
vmrpExtentMap *vmrpNbdSourceMapExtents(vmrpNbdSource *src, GError **error);

/* Reads @count bytes at @offset into @buf, synchronously (small reads, tests,
 * verification). */
bool vmrpNbdSourcePread(vmrpNbdSource *src,
                        void *buf,
                        size_t count,
                        uint64_t offset,
                        GError **error);
