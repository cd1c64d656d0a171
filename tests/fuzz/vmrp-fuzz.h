/*
 * vmrp-fuzz.h: what vmrp's libFuzzer harnesses share
 *
 * Each harness is one fuzz-<target>.c defining LLVMFuzzerTestOneInput.  It is
 * linked twice: with clang's -fsanitize=fuzzer (fuzz-<target>, when the
 * `fuzzing` option is on) and with vmrp-fuzz-replay.c (fuzz-<target>-replay,
 * always), which the unit suite runs over the seed corpus and the crashes
 * found so far.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test: a violation aborts, which the fuzzer
 * reports as a crash and the replay as a failed test. */
#define VMRP_FUZZ_ASSERT(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

/* A failure as vmrp reports it: an error is set and its message is one line,
 * since the CLI prints it as the one line of an error. */
static inline void
vmrpFuzzCheckError(const GError *error)
{
    VMRP_FUZZ_ASSERT(error != NULL);
    VMRP_FUZZ_ASSERT(error->message != NULL);
    if (strchr(error->message, '\n'))
        fprintf(stderr, "multi-line error: %s\n", error->message);
    VMRP_FUZZ_ASSERT(strchr(error->message, '\n') == NULL);
}

/* The separator of the parts of an input that holds several files. */
#define VMRP_FUZZ_SEPARATOR "\n----\n"

/* Splits @data at VMRP_FUZZ_SEPARATOR into at most @max parts (NUL-terminated
 * strings; the last part holds the rest). */
static inline GStrv
vmrpFuzzSplit(const uint8_t *data, size_t size, int max)
{
    g_autofree char *text = g_strndup((const char *)data, size);

    return g_strsplit(text, VMRP_FUZZ_SEPARATOR, max);
}
