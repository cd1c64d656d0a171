/* vmrp-qmp.c: QMP and guest-agent messages: command builder, reply parsing
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-qmp.h"

#include <string.h>

#include "vmrp-qmp-private.h"

G_DEFINE_QUARK(vmrp-qmp-error-quark, vmrp_qmp_error)

/* How much of an unexpected message an error message quotes. */
#define VMRP_QMP_QUOTE_MAX 200

/* Adds one typed-key argument to @args; consumes json_object values. */
static bool
vmrpQmpCommandAddArg(json_object *args, const char *cmd, const char *typedkey,
                     va_list *ap, bool *ret_stop, GError **error)
{
    const char *key = typedkey + 2;
    char type;
    json_object *val = NULL;

    if (strlen(typedkey) < 3 || typedkey[1] != ':') {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "%s: invalid argument key '%s'", cmd, typedkey);
        *ret_stop = true;
        return false;
    }
    type = typedkey[0];

    switch (type) {
    case 's':
    case 'S': {
        const char *s = va_arg(*ap, const char *);
        if (!s) {
            if (type == 'S')
                return true;
            g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                        "%s: argument '%s' must not be NULL", cmd, key);
            return false;
        }
        val = json_object_new_string(s);
        break;
    }
    case 'i':
        val = json_object_new_int(va_arg(*ap, int));
        break;
    case 'I':
        val = json_object_new_int64(va_arg(*ap, long long));
        break;
    case 'U':
        val = json_object_new_uint64(va_arg(*ap, unsigned long long));
        break;
    case 'd':
        val = json_object_new_double(va_arg(*ap, double));
        break;
    case 'b':
        val = json_object_new_boolean(va_arg(*ap, int) != 0);
        break;
    case 'a':
    case 'A':
    case 'o':
    case 'O': {
        g_autoptr(json_object) obj = va_arg(*ap, json_object *);
        bool array = type == 'a' || type == 'A';
        json_type want = array ? json_type_array : json_type_object;

        if (!obj) {
            if (type == 'A' || type == 'O')
                return true;
            g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                        "%s: argument '%s' must not be NULL", cmd, key);
            return false;
        }
        if (!json_object_is_type(obj, want)) {
            g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                        "%s: argument '%s' is not a JSON %s", cmd, key,
                        array ? "array" : "object");
            return false;
        }
        val = g_steal_pointer(&obj);
        break;
    }
    default:
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "%s: unknown argument type '%c' in '%s'", cmd, type, typedkey);
        *ret_stop = true;
        return false;
    }

    json_object_object_add(args, key, val);
    return true;
}

json_object *
vmrpQmpCommandNewV(const char *cmd, GError **error, va_list args)
{
    g_autoptr(json_object) obj = NULL;
    g_autoptr(json_object) arguments = json_object_new_object();
    g_autoptr(GError) err = NULL;
    const char *typedkey;
    va_list ap;

    va_copy(ap, args);
    while ((typedkey = va_arg(ap, const char *))) {
        bool stop = false;
        /* After the first error keep walking, to release consumed values. */
        if (!vmrpQmpCommandAddArg(arguments, cmd ? cmd : "(null)", typedkey, &ap, &stop,
                                  err ? NULL : &err) && stop)
            break;
    }
    va_end(ap);

    if (!err && (!cmd || !*cmd)) {
        g_set_error(&err, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "QMP command name is missing");
    }
    if (err) {
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }

    obj = json_object_new_object();
    json_object_object_add(obj, "execute", json_object_new_string(cmd));
    if (json_object_object_length(arguments) > 0)
        json_object_object_add(obj, "arguments", g_steal_pointer(&arguments));
    return g_steal_pointer(&obj);
}

json_object *
vmrpQmpCommandNew(const char *cmd, GError **error, ...)
{
    json_object *obj;
    va_list ap;

    va_start(ap, error);
    obj = vmrpQmpCommandNewV(cmd, error, ap);
    va_end(ap);
    return obj;
}

const char *
vmrpQmpCommandGetName(json_object *cmd)
{
    json_object *val;

    if (!cmd || !json_object_is_type(cmd, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(cmd, "execute", &val) &&
        !json_object_object_get_ex(cmd, "exec-oob", &val))
        return NULL;
    if (!json_object_is_type(val, json_type_string))
        return NULL;
    return json_object_get_string(val);
}

json_tokener *
vmrpQmpTokenerNew(void)
{
    json_tokener *tok = json_tokener_new_ex(VMRP_QMP_JSON_DEPTH);

    if (!tok)
        g_error("json_tokener_new_ex: out of memory");
    return tok;
}

json_object *
vmrpQmpParse(const char *str, GError **error)
{
    json_tokener *tok = vmrpQmpTokenerNew();
    size_t len = strlen(str);
    json_object *obj = NULL;
    enum json_tokener_error jerr;
    size_t end;

    /* with the terminating NUL, as json_tokener_parse: it ends a top-level literal */
    obj = json_tokener_parse_ex(tok, str, (int)MIN(len + 1, (size_t)G_MAXINT));
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);

    if (jerr == json_tokener_continue) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed JSON: unexpected end of input");
        return NULL;
    }
    if (!obj && jerr != json_tokener_success) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed JSON: %s at offset %zu", json_tokener_error_desc(jerr), end);
        return NULL;
    }
    while (end < len && g_ascii_isspace(str[end]))
        end++;
    if (end < len) {
        json_object_put(obj);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed JSON: trailing data at offset %zu", end);
        return NULL;
    }
    if (!obj) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed JSON: null");
        return NULL;
    }
    return obj;
}

const char *
vmrpQmpToString(json_object *obj)
{
    return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                               JSON_C_TO_STRING_NOSLASHESCAPE);
}

char *
vmrpQmpPrintable(const char *str)
{
    g_autofree char *valid = g_utf8_make_valid(str ? str : "", -1);
    GString *out = g_string_sized_new(strlen(valid));
    const char *p;

    for (p = valid; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        if (c == '\n')
            g_string_append(out, "\\n");
        else if (c == '\t')
            g_string_append(out, "\\t");
        else if (c == '\r')
            g_string_append(out, "\\r");
        else if (g_unichar_iscntrl(c))
            g_string_append_printf(out, "\\u%04x", c);
        else
            g_string_append_len(out, p, g_utf8_next_char(p) - p);
    }
    return g_string_free(out, FALSE);
}

char *
vmrpQmpQuote(json_object *obj)
{
    const char *s = obj ? vmrpQmpToString(obj) : "null";
    g_autofree char *cut = NULL;

    if (strlen(s) > VMRP_QMP_QUOTE_MAX)
        cut = g_strdup_printf("%.*s...", VMRP_QMP_QUOTE_MAX, s);
    return vmrpQmpPrintable(cut ? cut : s);
}

json_object *
vmrpQmpReplyGetReturn(json_object *reply, const char *cmd, GError **error)
{
    json_object *val;

    if (!cmd)
        cmd = "(unknown command)";

    if (!reply || !json_object_is_type(reply, json_type_object)) {
        g_autofree char *quote = vmrpQmpQuote(reply);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: not a JSON object: %s", cmd, quote);
        return NULL;
    }

    if (json_object_object_get_ex(reply, "error", &val)) {
        const char *klass = vmrpQmpObjectGetStringOpt(val, "class");
        const char *desc = vmrpQmpObjectGetStringOpt(val, "desc");
        int code = VMRP_QMP_ERROR_COMMAND;

        if (g_strcmp0(klass, "CommandNotFound") == 0)
            code = VMRP_QMP_ERROR_NOT_FOUND;
        /* the peer's words, made one printable line: a guest may say anything */
        if (desc && *desc) {
            g_autofree char *shown = vmrpQmpPrintable(desc);
            g_set_error(error, VMRP_QMP_ERROR, code, "%s: %s", cmd, shown);
        } else if (klass) {
            g_autofree char *shown = vmrpQmpPrintable(klass);
            g_set_error(error, VMRP_QMP_ERROR, code, "%s: failed with error class %s",
                        cmd, shown);
        } else {
            g_autofree char *quote = vmrpQmpQuote(val);
            g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                        "%s: malformed reply: error without description: %s", cmd, quote);
        }
        return NULL;
    }

    if (!json_object_object_get_ex(reply, "return", &val)) {
        g_autofree char *quote = vmrpQmpQuote(reply);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: neither return nor error: %s", cmd, quote);
        return NULL;
    }
    if (!val) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: return is null", cmd);
        return NULL;
    }
    return val;
}

static json_object *
vmrpQmpReplyGetReturnType(json_object *reply, const char *cmd, json_type type,
                          GError **error)
{
    json_object *val = vmrpQmpReplyGetReturn(reply, cmd, error);

    if (!val)
        return NULL;
    if (!json_object_is_type(val, type)) {
        g_autofree char *quote = vmrpQmpQuote(val);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: return is not a JSON %s: %s",
                    cmd ? cmd : "(unknown command)", json_type_to_name(type), quote);
        return NULL;
    }
    return val;
}

json_object *
vmrpQmpReplyGetReturnObject(json_object *reply, const char *cmd, GError **error)
{
    return vmrpQmpReplyGetReturnType(reply, cmd, json_type_object, error);
}

json_object *
vmrpQmpReplyGetReturnArray(json_object *reply, const char *cmd, GError **error)
{
    return vmrpQmpReplyGetReturnType(reply, cmd, json_type_array, error);
}

/* The member @key of @obj when it has type @type; else an error. */
static json_object *
vmrpQmpObjectGetType(json_object *obj, const char *key, json_type type, GError **error)
{
    json_object *val = NULL;

    if (!obj || !json_object_is_type(obj, json_type_object)) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed reply: looking up '%s' in a JSON %s, not an object", key,
                    json_type_to_name(json_object_get_type(obj)));
        return NULL;
    }
    if (!json_object_object_get_ex(obj, key, &val)) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed reply: member '%s' is missing", key);
        return NULL;
    }
    if (!json_object_is_type(val, type)) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed reply: member '%s' is of type %s, expected %s", key,
                    json_type_to_name(json_object_get_type(val)), json_type_to_name(type));
        return NULL;
    }
    return val;
}

bool
vmrpQmpObjectGetInt(json_object *obj, const char *key, long long *ret, GError **error)
{
    json_object *val = vmrpQmpObjectGetType(obj, key, json_type_int, error);
    int64_t i;

    if (!val)
        return false;
    i = json_object_get_int64(val);
    if (i == INT64_MAX && json_object_get_uint64(val) > (uint64_t)INT64_MAX) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed reply: member '%s' is out of range", key);
        return false;
    }
    *ret = i;
    return true;
}

bool
vmrpQmpObjectGetUint(json_object *obj, const char *key, unsigned long long *ret,
                     GError **error)
{
    json_object *val = vmrpQmpObjectGetType(obj, key, json_type_int, error);

    if (!val)
        return false;
    if (json_object_get_int64(val) < 0) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "malformed reply: member '%s' is negative", key);
        return false;
    }
    *ret = json_object_get_uint64(val);
    return true;
}

bool
vmrpQmpObjectGetBool(json_object *obj, const char *key, bool *ret, GError **error)
{
    json_object *val = vmrpQmpObjectGetType(obj, key, json_type_boolean, error);

    if (!val)
        return false;
    *ret = json_object_get_boolean(val);
    return true;
}

const char *
vmrpQmpObjectGetString(json_object *obj, const char *key, GError **error)
{
    json_object *val = vmrpQmpObjectGetType(obj, key, json_type_string, error);

    return val ? json_object_get_string(val) : NULL;
}

json_object *
vmrpQmpObjectGetObject(json_object *obj, const char *key, GError **error)
{
    return vmrpQmpObjectGetType(obj, key, json_type_object, error);
}

json_object *
vmrpQmpObjectGetArray(json_object *obj, const char *key, GError **error)
{
    return vmrpQmpObjectGetType(obj, key, json_type_array, error);
}

const char *
vmrpQmpObjectGetStringOpt(json_object *obj, const char *key)
{
    json_object *val;

    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &val) ||
        !json_object_is_type(val, json_type_string))
        return NULL;
    return json_object_get_string(val);
}

bool
vmrpQmpObjectGetBoolOpt(json_object *obj, const char *key, bool def)
{
    json_object *val;

    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &val) ||
        !json_object_is_type(val, json_type_boolean))
        return def;
    return json_object_get_boolean(val);
}
