/*
 * vmrp-remote.h: a libvirt connection to another host
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

/* vmrp's client certificates for NBD over TLS (ca-cert.pem,
 * client-cert.pem, client-key.pem). */
#define VMRP_DEFAULT_TLS_DIR "/etc/pki/vmrp"

/* Where the scratch files of a backup of a domain on another host go
 * (vmrp-POINT-TARGET.scratch): libvirt's own folder, which every host that
 * runs QEMU domains has; libvirt creates them and removes them at the end. */
#define VMRP_REMOTE_SCRATCH_DIR "/var/lib/libvirt/qemu"

/* The folder of vmrp's NBD client certificate: @given (--tls-dir), else
 * $VMRP_TLS_DIR, else VMRP_DEFAULT_TLS_DIR. */
const char *vmrpRemoteTLSDir(const char *given);

/* The host @conn's URI names (qemu+tcp://HOST/system, qemu+ssh://u@HOST/...),
 * or NULL when the connection is to this host (qemu:///system). */
char *vmrpRemoteHost(virConnectPtr conn);

/* An error naming @what when @conn is to another host: for what works on
 * this host's files only. */
bool vmrpRemoteRefuse(virConnectPtr conn, const char *what, GError **error);

/* Checks that @dir holds the three files of an x509 client (readable). */
bool vmrpRemoteCheckTLSDir(const char *dir, GError **error);
