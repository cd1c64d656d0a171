/*
 * vmrp-nbd-test-util.c: helpers of the nbd unit tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/wait.h>
#include <glib/gstdio.h>

#include <signal.h>

#include "vmrp-nbd-source.h"
#include "vmrp-nbd-test-util.h"

static char *testDir;
static GPtrArray *testExports;
static GArray *testServers;  /* of GPid */


int
vmrpNbdTestInit(void)
{
    g_autoptr(GError) error = NULL;

    if (!(testDir = g_dir_make_tmp("vmrp-nbd-test-XXXXXX", &error))) {
        g_printerr("%s\n", error->message);
        return 1;
    }
    testExports = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpNbdExportFree);
    testServers = g_array_new(FALSE, FALSE, sizeof(GPid));
    return 0;
}


int
vmrpNbdTestCleanup(void)
{
    g_autoptr(GDir) dir = NULL;
    const char *name;

    g_clear_pointer(&testExports, g_ptr_array_unref);
    while (testServers && testServers->len > 0)
        vmrpNbdTestKillServer(g_array_index(testServers, GPid, 0));
    g_clear_pointer(&testServers, g_array_unref);
    if (!testDir)
        return 0;
    if ((dir = g_dir_open(testDir, 0, NULL))) {
        while ((name = g_dir_read_name(dir))) {
            g_autofree char *path = g_build_filename(testDir, name, NULL);

            g_unlink(path);
        }
    }
    g_rmdir(testDir);
    g_clear_pointer(&testDir, g_free);
    return 0;
}


char *
vmrpNbdTestPath(const char *name)
{
    return g_build_filename(testDir, name, NULL);
}


int
vmrpNbdTestRunv(const char * const *argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                      &out, &err, &status, &error)) {
        g_printerr("\n%s: %s\n", argv[0], error->message);
        return -1;
    }
    if (!WIFEXITED(status))
        return -1;
    if (WEXITSTATUS(status) != 0 && err && *err)
        g_printerr("\n%s: %s", argv[0], err);
    return WEXITSTATUS(status);
}


bool
vmrpNbdTestCreate(const char *path, const char *fmt, uint64_t size, const char *backing)
{
    g_autofree char *sz = g_strdup_printf("%" G_GUINT64_FORMAT, size);

    if (backing)
        return vmrpNbdTestRun("qemu-img", "create", "-q", "-f", fmt, "-b", backing,
                              "-F", "qcow2", path, sz) == 0;
    return vmrpNbdTestRun("qemu-img", "create", "-q", "-f", fmt, path, sz) == 0;
}


bool
vmrpNbdTestQemuIov(const char *path, const char *fmt, const char * const *cmds)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    size_t i;

    g_ptr_array_add(argv, (char *)"qemu-io");
    g_ptr_array_add(argv, (char *)"-f");
    g_ptr_array_add(argv, (char *)fmt);
    g_ptr_array_add(argv, (char *)"-d");
    g_ptr_array_add(argv, (char *)"unmap");
    for (i = 0; cmds[i]; i++) {
        g_ptr_array_add(argv, (char *)"-c");
        g_ptr_array_add(argv, (char *)cmds[i]);
    }
    g_ptr_array_add(argv, (char *)path);
    g_ptr_array_add(argv, NULL);
    return vmrpNbdTestRunv((const char * const *)argv->pdata) == 0;
}


bool
vmrpNbdTestWriteRandom(const char *path, uint64_t offset, uint64_t length, guint32 seed)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
    g_autofree guint32 *buf = g_new(guint32, 16384);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    bool ok = fd >= 0;

    while (ok && length > 0) {
        size_t n = MIN(length, 16384 * sizeof(guint32));
        size_t i;

        for (i = 0; i < 16384; i++)
            buf[i] = g_rand_int(rand);
        ok = pwrite(fd, buf, n, offset) == (ssize_t)n;
        offset += n;
        length -= n;
    }
    if (fd >= 0)
        close(fd);
    return ok;
}


vmrpNbdExport *
vmrpNbdTestExport(const char *image, const char *fmt, const char *name, const char *bitmap)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *sockname = g_strdup_printf("%s.sock", name);
    g_autofree char *sock = vmrpNbdTestPath(sockname);
    vmrpNbdExport *exp;

    if (!(exp = vmrpNbdExportStart(image, fmt, sock, name, bitmap, true, &error))) {
        g_printerr("\n%s\n", error->message);
        return NULL;
    }
    g_ptr_array_add(testExports, exp);
    return exp;
}


void
vmrpNbdTestExportStop(vmrpNbdExport *exp)
{
    if (exp)
        g_ptr_array_remove(testExports, exp);
}


int
vmrpNbdTestCompare(const char *a, const char *fmt_a, const char *b, const char *fmt_b)
{
    return vmrpNbdTestRun("qemu-img", "compare", "-q", "-f", fmt_a, "-F", fmt_b, a, b);
}


bool
vmrpNbdTestMapEquals(const vmrpExtentMap *map, const vmrpExtent *expected, guint n)
{
    bool same = vmrpExtentMapCount(map) == n;
    guint i;

    for (i = 0; same && i < n; i++) {
        const vmrpExtent *e = vmrpExtentMapGet(map, i);

        same = e->offset == expected[i].offset && e->length == expected[i].length &&
               e->kind == expected[i].kind;
    }
    if (!same) {
        g_printerr("\nextent map:\n");
        for (i = 0; i < vmrpExtentMapCount(map); i++) {
            const vmrpExtent *e = vmrpExtentMapGet(map, i);

            g_printerr("  %12" G_GUINT64_FORMAT " +%12" G_GUINT64_FORMAT " %s\n",
                       e->offset, e->length, vmrpExtentKindToString(e->kind));
        }
        g_printerr("expected:\n");
        for (i = 0; i < n; i++)
            g_printerr("  %12" G_GUINT64_FORMAT " +%12" G_GUINT64_FORMAT " %s\n",
                       expected[i].offset, expected[i].length,
                       vmrpExtentKindToString(expected[i].kind));
    }
    return same;
}


GPid
vmrpNbdTestSpawnServer(const char * const *argv, const char *socket_path)
{
    g_autoptr(GError) error = NULL;
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    GPid pid = 0;

    if (!g_spawn_async(NULL, (char **)argv, NULL,
                       G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                       &pid, &error)) {
        g_printerr("\n%s: %s\n", argv[0], error->message);
        return 0;
    }
    g_array_append_val(testServers, pid);
    while (g_get_monotonic_time() < deadline) {
        g_autoptr(vmrpNbdSource) src = vmrpNbdSourceOpen(socket_path, "", NULL, NULL);

        if (src)
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            g_printerr("\n%s exited early\n", argv[0]);
            g_array_remove_index(testServers, testServers->len - 1);
            return 0;
        }
        g_usleep(10 * 1000);
    }
    g_printerr("\n%s did not answer on %s\n", argv[0], socket_path);
    vmrpNbdTestKillServer(pid);
    return 0;
}


void
vmrpNbdTestKillServer(GPid pid)
{
    guint i;

    for (i = 0; i < testServers->len; i++) {
        if (g_array_index(testServers, GPid, i) == pid) {
            gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

            g_array_remove_index(testServers, i);
            kill(pid, SIGTERM);
            while (waitpid(pid, NULL, WNOHANG) == 0) {
                if (g_get_monotonic_time() > deadline) {
                    /* nbdkit waits for its clients: do not hang a test */
                    kill(pid, SIGKILL);
                    waitpid(pid, NULL, 0);
                    break;
                }
                g_usleep(10 * 1000);
            }
            return;
        }
    }
}
