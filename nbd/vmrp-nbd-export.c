/*
 * vmrp-nbd-export.c: serves an image over a UNIX socket with qemu-nbd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <stdlib.h>
#include <libnbd.h>

#include "vmrp-nbd-export.h"

#define VMRP_NBD_EXPORT_START_TIMEOUT_US (30 * G_USEC_PER_SEC)
#define VMRP_NBD_EXPORT_STOP_TIMEOUT_US (10 * G_USEC_PER_SEC)
#define VMRP_NBD_EXPORT_POLL_US (10 * 1000)
/* For the writer's qemu-nbd, which allocates a buffer for each request and
 * frees it after: with glibc's defaults a 2 MiB buffer is a fresh mmap,
 * faulted in and zeroed page by page, then unmapped (one page fault per 4 KiB
 * copied). These keep such buffers in the heap and the heap untrimmed. Setting
 * either also turns glibc's dynamic mmap threshold off; 32 MiB is the highest
 * threshold glibc accepts on 64-bit. */
#define VMRP_NBD_EXPORT_WRITER_TUNABLES \
    "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456:" \
    "glibc.malloc.arena_max=1"

struct _vmrpNbdExport {
    GPid pid;          /* 0 once reaped */
    int log_fd;        /* qemu-nbd's stderr, an unlinked temporary file */
    char *socket_path;
    char *export_name;
    char *tcp_host;    /* a TCP export: probed there, with TLS when ... */
    char *tcp_port;
    char *psk_file;    /* ... this key file (user tls_user) is set */
    char *tls_user;
    bool x509;         /* TLS that needs a client certificate: probed by a TCP connect */
};


const char *
vmrpNbdExportGetSocket(vmrpNbdExport *exp)
{
    return exp->socket_path;
}


const char *
vmrpNbdExportGetName(vmrpNbdExport *exp)
{
    return exp->export_name;
}


pid_t
vmrpNbdExportGetPid(vmrpNbdExport *exp)
{
    return exp->pid;
}


/* Waits at most @timeout_us for the child to exit; true once reaped. */
static bool
vmrpNbdExportReap(vmrpNbdExport *exp, gint64 timeout_us, int *ret_status)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;
    int status = 0;

    for (;;) {
        pid_t r = waitpid(exp->pid, &status, WNOHANG);

        if (r == exp->pid || (r < 0 && errno != EINTR)) {
            exp->pid = 0;
            if (ret_status)
                *ret_status = status;
            return true;
        }
        if (g_get_monotonic_time() >= deadline)
            return false;
        g_usleep(VMRP_NBD_EXPORT_POLL_US);
    }
}


void
vmrpNbdExportStop(vmrpNbdExport *exp)
{
    if (!exp)
        return;
    if (exp->pid > 0) {
        kill(exp->pid, SIGTERM);
        if (!vmrpNbdExportReap(exp, VMRP_NBD_EXPORT_STOP_TIMEOUT_US, NULL)) {
            kill(exp->pid, SIGKILL);
            vmrpNbdExportReap(exp, G_MAXINT64 / 2, NULL);
        }
    }
    if (exp->socket_path)
        g_unlink(exp->socket_path);
    if (exp->log_fd >= 0)
        close(exp->log_fd);
    g_free(exp->socket_path);
    g_free(exp->export_name);
    g_free(exp->tcp_host);
    g_free(exp->tcp_port);
    g_free(exp->psk_file);
    g_free(exp->tls_user);
    g_free(exp);
}


void
vmrpNbdExportFree(vmrpNbdExport *exp)
{
    vmrpNbdExportStop(exp);
}


/* The first line qemu-nbd wrote on its stderr, or "". */
static char *
vmrpNbdExportReadLog(vmrpNbdExport *exp)
{
    char buf[1024];
    ssize_t n = pread(exp->log_fd, buf, sizeof(buf) - 1, 0);
    char *nl;

    if (n <= 0)
        return g_strdup("");
    buf[n] = '\0';
    if ((nl = strchr(buf, '\n')))
        *nl = '\0';
    return g_strdup(buf);
}


/* True when the export completes an NBD handshake. */
static bool
vmrpNbdExportProbe(vmrpNbdExport *exp)
{
    struct nbd_handle *nbd = nbd_create();
    bool ok = false;

    if (!nbd)
        return false;
    if (exp->x509) {
        /* no client certificate of our own: listening is all we can see */
        GSocketClient *client = g_socket_client_new();
        GSocketConnection *c = g_socket_client_connect_to_host(client, exp->tcp_host,
                                                               atoi(exp->tcp_port), NULL, NULL);
        nbd_close(nbd);
        if (c)
            g_object_unref(c);
        g_object_unref(client);
        return c != NULL;
    }
    if (exp->psk_file &&
        (nbd_set_tls(nbd, LIBNBD_TLS_REQUIRE) < 0 ||
         nbd_set_tls_username(nbd, exp->tls_user) < 0 ||
         nbd_set_tls_psk_file(nbd, exp->psk_file) < 0)) {
        nbd_close(nbd);
        return false;
    }
    if (nbd_set_export_name(nbd, exp->export_name) == 0 &&
        (exp->tcp_host ? nbd_connect_tcp(nbd, exp->tcp_host, exp->tcp_port)
                       : nbd_connect_unix(nbd, exp->socket_path)) == 0) {
        nbd_shutdown(nbd, 0);
        ok = true;
    }
    nbd_close(nbd);
    return ok;
}


/* In the child: a process group of its own, so that a terminal's Ctrl-C
 * reaches vmrp only, which stops its exports in order; with @die_with_parent
 * (non-NULL), SIGTERM when the thread that spawned it goes away. */
static void
vmrpNbdExportChildSetup(gpointer die_with_parent)
{
    sigset_t none;

    /* a caller that waits for signals with them blocked (an access grant's
     * supervisor) must not hand qemu-nbd a mask that blocks SIGTERM */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (die_with_parent)
        prctl(PR_SET_PDEATHSIG, SIGTERM);
}


/* Runs qemu-nbd with @argv (consumed: NULL-terminated, of g_strdup'ed
 * strings) in the environment @envp (NULL: ours) and waits until
 * @export_name on @socket_path answers. With @die_with_parent qemu-nbd gets
 * SIGTERM if the calling thread ends. */
static vmrpNbdExport *
vmrpNbdExportSpawnAt(vmrpNbdExport *tcp,
                     const char *image,
                     GPtrArray *argv,
                     const char * const *envp,
                     const char *socket_path,
                     const char *export_name,
                     bool die_with_parent,
                     GError **error)
{
    g_autoptr(GPtrArray) args = argv;
    g_autoptr(vmrpNbdExport) exp = tcp ? tcp : g_new0(vmrpNbdExport, 1);
    g_autoptr(GError) local_error = NULL;
    g_autofree char *log_path = NULL;
    const char *where = socket_path ? socket_path : "TCP";
    gint64 deadline;

    exp->log_fd = -1;
    exp->export_name = g_strdup(export_name);

    if (!g_file_test(image, G_FILE_TEST_EXISTS)) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                    "cannot export %s: no such file", image);
        return NULL;
    }
    if ((exp->log_fd = g_file_open_tmp("vmrp-qemu-nbd-XXXXXX.log", &log_path,
                                       &local_error)) < 0) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_SPAWN,
                    "qemu-nbd: %s", local_error->message);
        return NULL;
    }
    g_unlink(log_path);

    if (!g_spawn_async_with_pipes_and_fds(NULL, (const char * const *)args->pdata, envp,
                                          G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                          G_SPAWN_STDOUT_TO_DEV_NULL,
                                          vmrpNbdExportChildSetup,
                                          die_with_parent ? GINT_TO_POINTER(1) : NULL,
                                          -1, -1, exp->log_fd, NULL, NULL, 0,
                                          &exp->pid, NULL, NULL, NULL, &local_error)) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_SPAWN,
                    "qemu-nbd: %s", local_error->message);
        return NULL;
    }
    /* From here on the socket is qemu-nbd's: removed at stop. */
    exp->socket_path = g_strdup(socket_path);

    deadline = g_get_monotonic_time() + VMRP_NBD_EXPORT_START_TIMEOUT_US;
    for (;;) {
        int status = 0;

        if (vmrpNbdExportReap(exp, 0, &status)) {
            g_autofree char *msg = vmrpNbdExportReadLog(exp);

            g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_SPAWN,
                        "qemu-nbd exited with status %d: %s",
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1, msg);
            return NULL;
        }
        if (vmrpNbdExportProbe(exp))
            break;
        if (g_get_monotonic_time() >= deadline) {
            g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_SPAWN,
                        "qemu-nbd: export '%s' on %s did not answer within %d s",
                        exp->export_name, where,
                        (int)(VMRP_NBD_EXPORT_START_TIMEOUT_US / G_USEC_PER_SEC));
            return NULL;
        }
        g_usleep(VMRP_NBD_EXPORT_POLL_US);
    }
    return g_steal_pointer(&exp);
}


static vmrpNbdExport *
vmrpNbdExportSpawn(const char *image, GPtrArray *argv, const char * const *envp,
                   const char *socket_path, const char *export_name, bool die_with_parent,
                   GError **error)
{
    return vmrpNbdExportSpawnAt(NULL, image, argv, envp, socket_path, export_name,
                                die_with_parent, error);
}


vmrpNbdExport *
vmrpNbdExportServe(const char *image,
                   const char *format,
                   const char *export_name,
                   const vmrpNbdServeAddress *addr,
                   GError **error)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    vmrpNbdExport *exp = NULL;
    /* a comma in an --object value is written twice */
    g_auto(GStrv) parts = g_strsplit(addr->tls_psk_dir ? addr->tls_psk_dir :
                                     addr->tls_x509_dir ? addr->tls_x509_dir : "", ",", -1);
    g_autofree char *dir = g_strjoinv(",,", parts);

    g_ptr_array_add(argv, g_strdup("qemu-nbd"));
    if (addr->socket_path) {
        g_ptr_array_add(argv, g_strdup_printf("--socket=%s", addr->socket_path));
    } else {
        exp = g_new0(vmrpNbdExport, 1);
        exp->tcp_host = g_strdup(addr->host);
        exp->tcp_port = g_strdup(addr->port);
        g_ptr_array_add(argv, g_strdup_printf("--bind=%s", addr->host));
        g_ptr_array_add(argv, g_strdup_printf("--port=%s", addr->port));
    }
    if (addr->tls_psk_dir) {
        if (exp) {
            exp->psk_file = g_build_filename(addr->tls_psk_dir, "keys.psk", NULL);
            exp->tls_user = g_strdup(addr->tls_username);
        }
        g_ptr_array_add(argv, g_strdup("--object"));
        g_ptr_array_add(argv, g_strdup_printf("tls-creds-psk,id=tls0,endpoint=server,dir=%s",
                                              dir));
        g_ptr_array_add(argv, g_strdup("--tls-creds=tls0"));
    } else if (addr->tls_x509_dir) {
        if (exp)
            exp->x509 = true;
        g_ptr_array_add(argv, g_strdup("--object"));
        g_ptr_array_add(argv, g_strdup_printf("tls-creds-x509,id=tls0,endpoint=server,dir=%s,"
                                              "verify-peer=on", dir));
        g_ptr_array_add(argv, g_strdup("--tls-creds=tls0"));
    }
    g_ptr_array_add(argv, g_strdup_printf("--export-name=%s", export_name));
    g_ptr_array_add(argv, g_strdup("-f"));
    g_ptr_array_add(argv, g_strdup(format));
    g_ptr_array_add(argv, g_strdup("--read-only"));
    g_ptr_array_add(argv, g_strdup("--persistent"));
    g_ptr_array_add(argv, g_strdup("--shared=16"));
    g_ptr_array_add(argv, g_strdup(image));
    g_ptr_array_add(argv, NULL);
    return vmrpNbdExportSpawnAt(exp, image, argv, NULL, addr->socket_path, export_name, true,
                                error);
}


vmrpNbdExport *
vmrpNbdExportStart(const char *image,
                   const char *format,
                   const char *socket_path,
                   const char *export_name,
                   const char *bitmap,
                   bool readonly,
                   GError **error)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

    if (!export_name)
        export_name = "";
    g_ptr_array_add(argv, g_strdup("qemu-nbd"));
    g_ptr_array_add(argv, g_strdup_printf("--socket=%s", socket_path));
    g_ptr_array_add(argv, g_strdup_printf("--export-name=%s", export_name));
    g_ptr_array_add(argv, g_strdup("-f"));
    g_ptr_array_add(argv, g_strdup(format));
    if (readonly)
        g_ptr_array_add(argv, g_strdup("-r"));
    if (bitmap) {
        g_ptr_array_add(argv, g_strdup("-B"));
        g_ptr_array_add(argv, g_strdup(bitmap));
    }
    g_ptr_array_add(argv, g_strdup("--persistent"));
    g_ptr_array_add(argv, g_strdup("--shared=8"));
    g_ptr_array_add(argv, g_strdup(image));
    g_ptr_array_add(argv, NULL);
    return vmrpNbdExportSpawn(image, argv, NULL, socket_path, export_name, true, error);
}


/* True when @image opens with O_DIRECT, which tmpfs before Linux 6.6 and
 * some FUSE file systems refuse. */
static bool
vmrpNbdExportCanWriteDirect(const char *image)
{
    int fd = open(image, O_RDWR | O_DIRECT | O_CLOEXEC);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}


vmrpNbdExport *
vmrpNbdExportStartWriter(const char *image,
                         const char *format,
                         const char *socket_path,
                         GError **error)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) envp = g_get_environ();
    const char *tunables = g_environ_getenv(envp, "GLIBC_TUNABLES");
    g_autofree char *value = tunables && *tunables ?
        g_strconcat(tunables, ":", VMRP_NBD_EXPORT_WRITER_TUNABLES, NULL) :
        g_strdup(VMRP_NBD_EXPORT_WRITER_TUNABLES);

    /* later settings win: ours, for those two, after the caller's */
    envp = g_environ_setenv(g_steal_pointer(&envp), "GLIBC_TUNABLES", value, TRUE);

    g_ptr_array_add(argv, g_strdup("qemu-nbd"));
    g_ptr_array_add(argv, g_strdup_printf("--socket=%s", socket_path));
    g_ptr_array_add(argv, g_strdup("--export-name="));
    g_ptr_array_add(argv, g_strdup("-f"));
    g_ptr_array_add(argv, g_strdup(format));
    if (vmrpNbdExportCanWriteDirect(image)) {
        /* O_DIRECT: no copy into the page cache, and backup data does not
         * evict the host's working set.  QEMU's thread pool (its default
         * aio=threads) writes 1.5 GiB about a quarter faster here than
         * aio=native, and as fast as qemu-img convert -t none. */
        g_ptr_array_add(argv, g_strdup("--cache=none"));
    } else {
        /* the host's page cache, flushed by the writer at the end */
        g_ptr_array_add(argv, g_strdup("--cache=writeback"));
    }
    /* zero writes may unmap: on qcow2 v3 they become zero clusters, which
     * hide the backing file's data */
    g_ptr_array_add(argv, g_strdup("--discard=unmap"));
    /* data that is all zeroes is stored as zero clusters / holes, as
     * qemu-img convert does */
    g_ptr_array_add(argv, g_strdup("--detect-zeroes=unmap"));
    g_ptr_array_add(argv, g_strdup("--persistent"));
    g_ptr_array_add(argv, g_strdup("--shared=2"));
    g_ptr_array_add(argv, g_strdup(image));
    g_ptr_array_add(argv, NULL);
    return vmrpNbdExportSpawn(image, argv, (const char * const *)envp, socket_path, "",
                              true, error);
}
