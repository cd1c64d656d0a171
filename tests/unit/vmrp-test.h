/*
 * vmrp-test.h: the common runner of vmrp's CUnit unit tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdlib.h>
#include <CUnit/Basic.h>

typedef struct {
    const char *name;
    CU_TestFunc func;
} vmrpTestCase;

#define VMRP_TEST(f) { #f, f }

/* Runs one suite; the exit status is 0 when every test passed. */
static inline int
vmrpTestMain(const char *suite,
             const vmrpTestCase *cases,
             CU_InitializeFunc init,
             CU_CleanupFunc cleanup)
{
    CU_pSuite s;
    unsigned int failed;
    size_t i;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    if (!(s = CU_add_suite(suite, init, cleanup)))
        return EXIT_FAILURE;
    for (i = 0; cases[i].name; i++) {
        if (!CU_add_test(s, cases[i].name, cases[i].func))
            return EXIT_FAILURE;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed() +
             CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
