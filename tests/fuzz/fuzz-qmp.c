/*
 * fuzz-qmp.c: one QMP or guest-agent reply as libvirt hands it over
 * (vmrpQmpParse, vmrpQmpReplyGetReturn* and the typed getters)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-fuzz.h"
#include "vmrp-qmp.h"

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    return 0;
}

/* Every getter on every member vmrp reads from a return object. */
static void
readMembers(json_object *obj)
{
    static const char *const keys[] = {
        "status", "running", "exited", "exitcode", "signal", "pid", "count", "buf-b64",
        "eof", "out-data", "err-data", "name", "node-name", "dirty-bitmaps", "granularity",
        "recording", "busy", "persistent", "inconsistent", "mountpoint", "type", "disk",
        "used-bytes", "total-bytes", "dev", "serial", "QMP", "id",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_autoptr(GError) error = NULL;
        long long ival = 0;
        unsigned long long uval = 0;
        bool bval = false;
        json_object *sub;

        if (!vmrpQmpObjectGetInt(obj, keys[i], &ival, &error))
            vmrpFuzzCheckError(error);
        g_clear_error(&error);
        if (!vmrpQmpObjectGetUint(obj, keys[i], &uval, &error))
            vmrpFuzzCheckError(error);
        g_clear_error(&error);
        if (!vmrpQmpObjectGetBool(obj, keys[i], &bval, &error))
            vmrpFuzzCheckError(error);
        g_clear_error(&error);
        if (!vmrpQmpObjectGetString(obj, keys[i], &error))
            vmrpFuzzCheckError(error);
        g_clear_error(&error);
        if (!vmrpQmpObjectGetObject(obj, keys[i], &error))
            vmrpFuzzCheckError(error);
        g_clear_error(&error);
        if ((sub = vmrpQmpObjectGetArray(obj, keys[i], &error))) {
            size_t j;

            for (j = 0; j < json_object_array_length(sub) && j < 8; j++) {
                json_object *elem = json_object_array_get_idx(sub, j);
                (void)vmrpQmpObjectGetStringOpt(elem, "name");
                (void)vmrpQmpObjectGetBoolOpt(elem, "busy", false);
            }
        } else {
            vmrpFuzzCheckError(error);
        }
        (void)vmrpQmpObjectGetStringOpt(obj, keys[i]);
        (void)vmrpQmpObjectGetBoolOpt(obj, keys[i], true);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) reply = vmrpQmpParse(text, &error);
    g_autoptr(json_object) again = NULL;
    json_object *ret;

    if (!reply) {
        vmrpFuzzCheckError(error);
        return 0;
    }
    /* what vmrp would send back or quote parses again */
    /* (not necessarily equal: json-c prints the double 0e0 as 0, an integer, and
     * rounds huge doubles) */
    again = vmrpQmpParse(vmrpQmpToString(reply), &error);
    VMRP_FUZZ_ASSERT(again != NULL);

    if (!(ret = vmrpQmpReplyGetReturn(reply, "fuzz-command", &error))) {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    } else if (json_object_is_type(ret, json_type_object)) {
        readMembers(ret);
    }
    if (!vmrpQmpReplyGetReturnObject(reply, NULL, &error))
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    if (!vmrpQmpReplyGetReturnArray(reply, "fuzz-command", &error))
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    if (json_object_is_type(reply, json_type_object))
        readMembers(reply);
    return 0;
}
