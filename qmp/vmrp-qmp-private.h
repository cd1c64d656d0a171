/* vmrp-qmp-private.h: helpers shared inside qmp/ only
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "vmrp-qmp.h"

/* Nesting depth allowed in messages (json-c's default of 32 is too little for the
 * backing chains of query-block). */
#define VMRP_QMP_JSON_DEPTH 1024

/* A new tokener with VMRP_QMP_JSON_DEPTH. */
json_tokener *
vmrpQmpTokenerNew(void);

/* @obj serialised, cut to a length that fits in an error message, and made printable
 * (see vmrpQmpPrintable). */
char *
vmrpQmpQuote(json_object *obj);

/* A string from the peer made fit for an error message: valid UTF-8 (invalid bytes become
 * U+FFFD), on one line, without control characters (\n, \t, \r and \uXXXX instead). */
char *
vmrpQmpPrintable(const char *str);
