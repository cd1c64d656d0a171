/*
 * fuzz-names.c: the name checkers (policy/vmrp-names.c) and the consistency
 * parser: each line of the input is tried as a domain name, a point id, a
 * disk target, a list of targets and a consistency mode
 *
 * Whatever a checker accepts must be safe as one component of a path.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-fuzz.h"
#include "vmrp-names.h"
#include "vmrp-consistency.h"

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    return 0;
}

/* One path component that stays where it is joined. */
static bool
safeComponent(const char *name)
{
    return *name && !strchr(name, '/') && !g_str_equal(name, ".") &&
           !g_str_equal(name, "..") && strlen(name) < 256;
}

static void
tryLine(const char *line)
{
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) list = NULL;
    vmrpConsistency mode = VMRP_CONSISTENCY_LAST;
    size_t i;

    if (vmrpNameCheckDomain(line, &error)) {
        VMRP_FUZZ_ASSERT(safeComponent(line) && line[0] != '-' && line[0] != '.');
    } else {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    }

    if (vmrpNameCheckPoint(line, &error)) {
        VMRP_FUZZ_ASSERT(safeComponent(line) && strlen(line) == 22);
    } else {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    }

    if (vmrpNameCheckTarget(line, &error)) {
        VMRP_FUZZ_ASSERT(safeComponent(line) && line[0] != '.');
    } else {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    }

    if ((list = vmrpNameParseTargetList(line, &error))) {
        for (i = 0; list[i]; i++) {
            size_t j;

            VMRP_FUZZ_ASSERT(vmrpNameCheckTarget(list[i], NULL));
            for (j = 0; j < i; j++)
                VMRP_FUZZ_ASSERT(!g_str_equal(list[i], list[j]));
        }
    } else {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    }

    if (vmrpConsistencyFromString(line, &mode, &error)) {
        VMRP_FUZZ_ASSERT(mode < VMRP_CONSISTENCY_LAST);
        VMRP_FUZZ_ASSERT(g_str_equal(vmrpConsistencyToString(mode), line));
    } else {
        vmrpFuzzCheckError(error);
        VMRP_FUZZ_ASSERT(mode == VMRP_CONSISTENCY_LAST);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    g_auto(GStrv) lines = g_strsplit(text, "\n", 64);
    size_t i;

    for (i = 0; lines[i]; i++)
        tryLine(lines[i]);
    /* the whole input too: a line may not hold a newline, a name might */
    tryLine(text);
    return 0;
}
