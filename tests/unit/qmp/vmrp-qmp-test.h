/* vmrp-qmp-test.h: assertion helpers shared by the qmp unit tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <string.h>

#include "vmrp-test.h"
#include "vmrp-fake-peer.h"
#include "vmrp-qmp.h"

/* Records a CUnit failure with a formatted text (CUnit copies the text). */
static inline void G_GNUC_PRINTF(3, 4)
vmrpQmpTestFail(const char *file, unsigned int line, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    CU_assertImplementation(CU_FALSE, line, msg, file, "", CU_FALSE);
}

/* @err must be VMRP_QMP_ERROR/@code with exactly @msg (or starting with it if @prefix). */
static inline void
vmrpQmpTestCheckError(const char *file, unsigned int line, const GError *err, int code,
                      const char *msg, bool prefix)
{
    if (!err) {
        vmrpQmpTestFail(file, line, "expected error '%s', got success", msg);
        return;
    }
    if (err->domain != VMRP_QMP_ERROR || err->code != code)
        vmrpQmpTestFail(file, line, "expected error code %d, got %s/%d (%s)", code,
                        g_quark_to_string(err->domain), err->code, err->message);
    if (prefix ? !g_str_has_prefix(err->message, msg) : strcmp(err->message, msg) != 0)
        vmrpQmpTestFail(file, line, "expected error%s '%s', got '%s'",
                        prefix ? " starting" : "", msg, err->message);
    CU_PASS("error checked");
}

#define VMRP_ASSERT_ERROR(err, code, msg) \
    vmrpQmpTestCheckError(__FILE__, __LINE__, (err), (code), (msg), false)
#define VMRP_ASSERT_ERROR_PREFIX(err, code, msg) \
    vmrpQmpTestCheckError(__FILE__, __LINE__, (err), (code), (msg), true)

/* No error expected: report it when there is one. */
#define VMRP_ASSERT_NO_ERROR(err) \
    do { \
        if (err) \
            vmrpQmpTestFail(__FILE__, __LINE__, "unexpected error: %s", (err)->message); \
        else \
            CU_PASS("no error"); \
    } while (0)

/* Two strings equal, showing both when not. */
#define VMRP_ASSERT_STR(actual, expected) \
    do { \
        const char *a_ = (actual); \
        const char *e_ = (expected); \
        if (g_strcmp0(a_, e_) != 0) \
            vmrpQmpTestFail(__FILE__, __LINE__, "expected '%s', got '%s'", \
                            e_ ? e_ : "(null)", a_ ? a_ : "(null)"); \
        else \
            CU_PASS("strings equal"); \
    } while (0)

/* JSON @obj serialises to exactly @expected (json-c keeps insertion order). */
#define VMRP_ASSERT_JSON(obj, expected) \
    VMRP_ASSERT_STR((obj) ? json_object_to_json_string_ext((obj), JSON_C_TO_STRING_PLAIN | \
                                                           JSON_C_TO_STRING_NOSLASHESCAPE) \
                          : NULL, (expected))

/* Ends a fake peer: the script must have been followed; returns the commands seen. */
static inline GPtrArray *
vmrpQmpTestPeerFinish(const char *file, unsigned int line, vmrpFakePeer *peer,
                      int *ret_delimiters)
{
    g_autofree char *failures = NULL;
    GPtrArray *cmds = vmrpFakePeerFinish(peer, &failures, ret_delimiters);

    if (failures)
        vmrpQmpTestFail(file, line, "fake peer: %s", failures);
    else
        CU_PASS("fake peer script followed");
    return cmds;
}

#define VMRP_PEER_FINISH(peer) vmrpQmpTestPeerFinish(__FILE__, __LINE__, (peer), NULL)
