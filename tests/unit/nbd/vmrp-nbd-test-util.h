/*
 * vmrp-nbd-test-util.h: helpers of the nbd unit tests: a temporary
 * directory, images made with qemu-img and qemu-io, exports
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <CUnit/CUnit.h>

#include "vmrp-extents.h"
#include "vmrp-nbd-export.h"

#define MiB (1024ULL * 1024)
#define KiB 1024ULL

/* Asserts and returns from the test on failure: g_auto cleanups still run
 * (CU_ASSERT_FATAL would longjmp past them). */
#define NBD_TEST_CHECK(expr) \
    do { \
        if (!CU_assertImplementation(!!(expr), __LINE__, #expr, __FILE__, "", \
                                     CU_FALSE)) \
            return; \
    } while (0)

/* Same, printing @err's message when it is set. */
#define NBD_TEST_CHECK_OK(expr, err) \
    do { \
        bool nbd_test_ok_ = !!(expr); \
        if (!nbd_test_ok_ && (err)) \
            g_printerr("\n%s:%d: %s\n", __FILE__, __LINE__, (err)->message); \
        NBD_TEST_CHECK(nbd_test_ok_ && #expr); \
    } while (0)

/* Suite init/cleanup: a private temporary directory, removed with what is
 * in it; exports started by vmrpNbdTestExport are stopped at cleanup. */
int vmrpNbdTestInit(void);
int vmrpNbdTestCleanup(void);

/* TMPDIR/NAME, newly allocated. */
char *vmrpNbdTestPath(const char *name);

/* Runs argv (NULL-terminated) and returns its exit status (-1 when it did
 * not run or died by a signal); prints its stderr when not 0. */
int vmrpNbdTestRunv(const char * const *argv);
#define vmrpNbdTestRun(...) vmrpNbdTestRunv((const char * const []){ __VA_ARGS__, NULL })

/* qemu-img create -f FMT PATH SIZE, optionally with a backing file. */
bool vmrpNbdTestCreate(const char *path, const char *fmt, uint64_t size,
                       const char *backing);

/* qemu-io -f FMT -d unmap PATH -c CMD ...; @cmds NULL-terminated. */
bool vmrpNbdTestQemuIov(const char *path, const char *fmt, const char * const *cmds);
#define vmrpNbdTestQemuIo(path, fmt, ...) \
    vmrpNbdTestQemuIov(path, fmt, (const char * const []){ __VA_ARGS__, NULL })

/* Writes @length pseudo-random bytes (from @seed) at @offset of the raw
 * file @path, creating it. */
bool vmrpNbdTestWriteRandom(const char *path, uint64_t offset, uint64_t length,
                            guint32 seed);

/* Serves @image read-only (bitmap nullable) on TMPDIR/NAME.sock as export
 * NAME; stopped at suite cleanup at the latest. Returns a borrowed pointer. */
vmrpNbdExport *vmrpNbdTestExport(const char *image, const char *fmt,
                                 const char *name, const char *bitmap);

/* Stops and forgets an export of vmrpNbdTestExport (before the image is
 * used again for writing). */
void vmrpNbdTestExportStop(vmrpNbdExport *exp);

/* Runs a server in the foreground (@argv NULL-terminated) and waits until
 * the default export on @socket_path answers; it is killed at suite
 * cleanup at the latest. Returns its pid, or 0. */
GPid vmrpNbdTestSpawnServer(const char * const *argv, const char *socket_path);

/* Kills (SIGTERM) and reaps a server of vmrpNbdTestSpawnServer. */
void vmrpNbdTestKillServer(GPid pid);

/* True when the two images read the same (qemu-img compare exit 0). */
int vmrpNbdTestCompare(const char *a, const char *fmt_a, const char *b,
                       const char *fmt_b);

/* True when @map holds exactly @expected (n extents). */
bool vmrpNbdTestMapEquals(const vmrpExtentMap *map, const vmrpExtent *expected, guint n);
