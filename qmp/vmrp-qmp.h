/* vmrp-qmp.h: QMP and guest-agent messages: command builder, reply parsing
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/* The error domain of the whole qmp/ module (builder, transports, agent). */
#define VMRP_QMP_ERROR (vmrp_qmp_error_quark())
GQuark vmrp_qmp_error_quark(void);

typedef enum {
    VMRP_QMP_ERROR_FAILED,       /* anything else (I/O errors, libvirt errors) */
    VMRP_QMP_ERROR_INVALID,      /* the caller's arguments are invalid */
    VMRP_QMP_ERROR_COMMAND,      /* QEMU or the agent answered with an error */
    VMRP_QMP_ERROR_NOT_FOUND,    /* ... of class CommandNotFound (unknown or disabled command) */
    VMRP_QMP_ERROR_MALFORMED,    /* the peer sent something that is not the expected reply */
    VMRP_QMP_ERROR_TIMEOUT,      /* no (complete) reply within the timeout */
    VMRP_QMP_ERROR_CLOSED,       /* the peer closed the connection */
    VMRP_QMP_ERROR_UNAVAILABLE,  /* no monitor/agent to talk to (not running, not connected,
                                  * not configured) */
} vmrpQmpErrorCode;

/*
 * Builds {"execute": CMD, "arguments": {...}} ("arguments" only when there are any).
 * The variable arguments are pairs of a typed key and a value, ended by NULL:
 *   "s:key", const char *          string (NULL is an error)
 *   "S:key", const char *          optional string: skipped when NULL
 *   "i:key", int
 *   "I:key", long long
 *   "U:key", unsigned long long
 *   "d:key", double
 *   "b:key", int (bool)
 *   "a:key", json_object *         array, consumed (NULL or non-array is an error)
 *   "o:key", json_object *         object, consumed (NULL or non-object is an error)
 *   "A:key"/"O:key", json_object * as "a:"/"o:" but skipped when NULL
 * Values of "a:"/"o:"/"A:"/"O:" are consumed on failure too, except those after an
 * unknown type letter (whose type cannot be known).
 */
json_object *
vmrpQmpCommandNew(const char *cmd, GError **error, ...) G_GNUC_NULL_TERMINATED;

/* As vmrpQmpCommandNew with a va_list. */
json_object *
vmrpQmpCommandNewV(const char *cmd, GError **error, va_list args);

/* The "execute" name of a command built by vmrpQmpCommandNew, or NULL. Borrowed. */
const char *
vmrpQmpCommandGetName(json_object *cmd);

/* Parses one JSON text (for example a reply string from libvirt). New reference. */
json_object *
vmrpQmpParse(const char *str, GError **error);

/* Serialises compactly without escaping '/'. The string belongs to @obj. */
const char *
vmrpQmpToString(json_object *obj);

/*
 * The "return" member of a whole reply, borrowed from @reply.
 * An error reply gives a GError "CMD: DESC" (code VMRP_QMP_ERROR_COMMAND, or
 * VMRP_QMP_ERROR_NOT_FOUND for class CommandNotFound); a reply with neither "return" nor
 * "error" gives "CMD: malformed reply: ..." (VMRP_QMP_ERROR_MALFORMED).
 */
json_object *
vmrpQmpReplyGetReturn(json_object *reply, const char *cmd, GError **error);

/* As vmrpQmpReplyGetReturn, and the return value must be an object / an array. */
json_object *
vmrpQmpReplyGetReturnObject(json_object *reply, const char *cmd, GError **error);
json_object *
vmrpQmpReplyGetReturnArray(json_object *reply, const char *cmd, GError **error);

/*
 * Typed getters of a member of a JSON object. A missing member or one of another type
 * is an error "malformed reply: ..." (VMRP_QMP_ERROR_MALFORMED); the message does not name
 * the command: prefix it with g_prefix_error(error, "%s: ", cmd) when useful.
 * Strings, objects and arrays are borrowed from @obj. ret_* are untouched on failure.
 */
bool
vmrpQmpObjectGetInt(json_object *obj, const char *key, long long *ret, GError **error);
bool
vmrpQmpObjectGetUint(json_object *obj, const char *key, unsigned long long *ret,
                     GError **error);
bool
vmrpQmpObjectGetBool(json_object *obj, const char *key, bool *ret, GError **error);
const char *
vmrpQmpObjectGetString(json_object *obj, const char *key, GError **error);
json_object *
vmrpQmpObjectGetObject(json_object *obj, const char *key, GError **error);
json_object *
vmrpQmpObjectGetArray(json_object *obj, const char *key, GError **error);

/* Optional members: the string, or NULL when absent or not a string. Borrowed. */
const char *
vmrpQmpObjectGetStringOpt(json_object *obj, const char *key);
/* The boolean, or @def when absent or not a boolean. */
bool
vmrpQmpObjectGetBoolOpt(json_object *obj, const char *key, bool def);
