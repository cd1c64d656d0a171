/*
 * vmrp-state.h: vmrp's private run-time folders on the host, shared with
 * the QEMU user for NBD sockets and scratch files
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

/* The state folder: $VMRP_STATE_DIR or the configured one. */
const char *vmrpStateDir(void);

/* Makes a folder for one job, owned by the QEMU user (libvirt-qemu) with
 * mode 0700, below the state folder (VMRP_STATE_DIR, 0711 root). */
char *vmrpStateMakeJobDir(const char *name, GError **error);

/* Gives a file of a job's folder to the QEMU user, which opens it. */
bool vmrpStateGiveToQemu(const char *path, GError **error);

/* Makes a folder for one job that only root uses (root's NBD sockets), mode
 * 0700 root, below the state folder.  A leftover folder of that name (left
 * by a killed job) is removed first; @ret_kept says whether it held the file
 * @keep (a mark the killed job left for its retry). */
char *vmrpStateMakeRootJobDir(const char *name, const char *keep, bool *ret_kept,
                              GError **error);
