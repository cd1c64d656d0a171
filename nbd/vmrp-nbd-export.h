/*
 * vmrp-nbd-export.h: serves an image over a UNIX socket with qemu-nbd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>

#include "vmrp-nbd-error.h"

typedef struct _vmrpNbdExport vmrpNbdExport;

/* Runs qemu-nbd --socket=SOCKET --export-name=NAME -f FORMAT [-r]
 * [-B BITMAP] --persistent --shared=8 IMAGE and waits (at most 30 s) until
 * the export answers a handshake. When qemu-nbd exits early, the error
 * (VMRP_NBD_ERROR_SPAWN) carries the first line it wrote on stderr. A
 * persistent bitmap exported from a qcow2 while it is enabled needs
 * @readonly. @export_name NULL means "". qemu-nbd gets SIGTERM when the
 * calling thread ends (a SIGKILLed vmrp leaves no export holding the image's
 * lock). */
vmrpNbdExport *vmrpNbdExportStart(const char *image,
                                  const char *format,
                                  const char *socket_path,
                                  const char *export_name,
                                  const char *bitmap,
                                  bool readonly,
                                  GError **error);

/* Runs qemu-nbd on @image for writing, as vmrpNbdCopyToImage does, with
 * the default export name "": --cache=none --aio=native (O_DIRECT; when
 * @image cannot be opened so, --cache=writeback) --discard=unmap
 * --detect-zeroes=unmap --persistent --shared=2, and glibc malloc tunables
 * that keep its request buffers in the heap. Waits as above. The
 * client must flush (NBD_CMD_FLUSH) before the export is stopped. Unlike
 * vmrpNbdExportStart's, this qemu-nbd gets SIGTERM when the calling thread
 * ends (PR_SET_PDEATHSIG): stop it from the thread that started it. */
vmrpNbdExport *vmrpNbdExportStartWriter(const char *image,
                                        const char *format,
                                        const char *socket_path,
                                        GError **error);

/* Where vmrpNbdExportServe listens: a UNIX socket, or a TCP address with
 * TLS from a pre-shared key (qemu-nbd's tls-creds-psk folder, holding
 * keys.psk with a line USER:HEXKEY). */
typedef struct {
    const char *socket_path;    /* or: */
    const char *host;
    const char *port;
    const char *tls_psk_dir;    /* NULL: no TLS, or: */
    const char *tls_username;
    const char *tls_x509_dir;   /* x509 (ca-cert.pem, server-cert.pem, server-key.pem),
                                 * a client certificate from that CA required */
} vmrpNbdServeAddress;

/* Serves @image read-only to any number of clients (--read-only
 * --persistent --shared=16) as @export_name at @addr, waiting until a
 * handshake (over TLS when set) succeeds, as vmrpNbdExportStart does.
 * qemu-nbd gets SIGTERM when the calling thread ends. */
vmrpNbdExport *vmrpNbdExportServe(const char *image,
                                  const char *format,
                                  const char *export_name,
                                  const vmrpNbdServeAddress *addr,
                                  GError **error);

/* Stops qemu-nbd (SIGTERM, then waits for it) and removes the socket;
 * accepts NULL. Same as vmrpNbdExportFree. */
void vmrpNbdExportStop(vmrpNbdExport *exp);
void vmrpNbdExportFree(vmrpNbdExport *exp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpNbdExport, vmrpNbdExportFree);

const char *vmrpNbdExportGetSocket(vmrpNbdExport *exp);
const char *vmrpNbdExportGetName(vmrpNbdExport *exp);
pid_t vmrpNbdExportGetPid(vmrpNbdExport *exp);
