/*
 * vmrp-rate.h: a bandwidth limit (--bandwidth RATE) for copies through any
 * destination backend
 *
 * The copying thread reports the bytes it moved (from its progress callback)
 * and sleeps there until they are due at the rate: a token bucket that holds
 * no credit, so an idle moment (a check between two points) never lets a
 * burst through, and N bytes never take less than N / RATE seconds.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

/* the lowest rate accepted (bytes per second) */
#define VMRP_RATE_MIN 1024

/* A rate in bytes per second: a number, optionally with K, M or G (1024,
 * 1024^2, 1024^3; either case), e.g. "50M". */
bool vmrpRateParse(const char *text, uint64_t *ret_rate, GError **error);

typedef struct _vmrpRateLimit vmrpRateLimit;

/* A limit of @rate bytes per second, starting now. */
vmrpRateLimit *vmrpRateLimitNew(uint64_t rate);
void vmrpRateLimitFree(vmrpRateLimit *limit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpRateLimit, vmrpRateLimitFree)

/* @bytes were moved: sleeps until they are due at the rate, or until
 * @cancel (nullable) is cancelled. */
void vmrpRateLimitTake(vmrpRateLimit *limit, uint64_t bytes, GCancellable *cancel);
