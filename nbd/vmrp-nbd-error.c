/*
 * vmrp-nbd-error.c: the error domain of the nbd module
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-nbd-error.h"

G_DEFINE_QUARK(vmrp-nbd-error-quark, vmrp_nbd_error)
