/*
 * vmrp-nbd-error.h: the error domain of the nbd module
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#define VMRP_NBD_ERROR vmrp_nbd_error_quark()
GQuark vmrp_nbd_error_quark(void);

typedef enum {
    VMRP_NBD_ERROR_FAILED,       /* a libnbd call or an NBD command failed */
    VMRP_NBD_ERROR_UNSUPPORTED,  /* the server lacks a meta context or feature */
    VMRP_NBD_ERROR_PROTOCOL,     /* the server's replies make no sense */
    VMRP_NBD_ERROR_SPAWN,        /* qemu-nbd could not be started */
    VMRP_NBD_ERROR_INVALID,      /* bad arguments (missing image, bad format) */
} vmrpNbdErrorCode;

/* Cancellation is reported as G_IO_ERROR / G_IO_ERROR_CANCELLED. */
