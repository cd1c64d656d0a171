/*
 * vmrp-json.c: reading the repository's JSON files, with errors in words
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-json.h"
#include "vmrp-error.h"

json_object *
vmrpJSONParseObject(const char *text, GError **error)
{
    size_t len = strlen(text);
    json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    const char *rest;

    if (len == 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "empty file");
        return NULL;
    }
    tok = json_tokener_new();
    obj = json_tokener_parse_ex(tok, text, len);
    jerr = json_tokener_get_error(tok);
    if (!obj) {
        /* json-c's word for a text cut short is "continue": say it in words */
        if (jerr == json_tokener_continue || jerr == json_tokener_success)
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "truncated JSON at byte %zu", len);
        else
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "invalid JSON at byte %d: %s",
                        tok->char_offset, json_tokener_error_desc(jerr));
        json_tokener_free(tok);
        return NULL;
    }
    /* trailing white space is fine; anything else is not */
    for (rest = text + tok->char_offset; *rest && g_ascii_isspace(*rest); rest++)
        ;
    if (*rest) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "trailing data after the JSON at byte %d", tok->char_offset);
        json_tokener_free(tok);
        json_object_put(obj);
        return NULL;
    }
    json_tokener_free(tok);
    if (!json_object_is_type(obj, json_type_object)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "not a JSON object");
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

const char *
vmrpJSONGetString(json_object *obj, const char *key)
{
    json_object *val;

    if (!json_object_object_get_ex(obj, key, &val) || !json_object_is_type(val, json_type_string))
        return NULL;
    return json_object_get_string(val);
}
