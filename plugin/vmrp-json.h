/*
 * vmrp-json.h: reading the repository's JSON files, with errors in words
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* Parses @text as one JSON object (trailing white space allowed).  A text
 * that is empty, cut short, not JSON or not an object is an error that says
 * so with the byte where it went wrong: "truncated JSON at byte 40".  The
 * caller owns the returned object (json_object_put). */
json_object *vmrpJSONParseObject(const char *text, GError **error);

/* The string member @key of @obj, or NULL when it is missing or not a
 * string (valid as long as @obj). */
const char *vmrpJSONGetString(json_object *obj, const char *key);
