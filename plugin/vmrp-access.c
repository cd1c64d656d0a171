/*
 * vmrp-access.c: time-limited read access to a disk restore point (rp-access)
 *
 * rp-access writes the grant's record (REPO/access/<grant>.json, pid 0),
 * then starts the supervisor (vmrp __access-serve REPO GRANT) in a session
 * of its own, reparented to init at once, and waits for its first line:
 * "ready" once qemu-nbd answers, or "error: ...".  The supervisor owns the
 * export from then on: it waits for the expiry or a revoke (SIGTERM), stops
 * qemu-nbd, removes its files and the record.  qemu-nbd dies with it
 * (PR_SET_PDEATHSIG), so no export ever outlives its supervisor.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmrp-access.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-json.h"
#include "vmrp-names.h"
#include "vmrp-nbd-export.h"
#include "vmrp-state.h"

#define ACCESS_RECORD_MAX (64 * 1024)
#define ACCESS_MAX_SECONDS (30 * 24 * 3600)
#define ACCESS_START_GRACE_S 60   /* a record without supervisor, this young, is starting */
#define ACCESS_KILL_AFTER_S 30    /* a supervisor this late past expiry is killed */
#define ACCESS_TLS_USER "vmrp"
#define ACCESS_KEY_LINE_LEN (sizeof(ACCESS_TLS_USER ":") - 1 + 64 + 1)

void
vmrpAccessGrantFree(vmrpAccessGrant *grant)
{
    if (!grant)
        return;
    g_free(grant->id);
    g_free(grant->point);
    g_free(grant->target);
    g_free(grant->domain_uuid);
    g_strfreev(grant->chain);
    g_free(grant->socket);
    g_free(grant->tcp);
    g_free(grant->psk_file);
    g_free(grant->tls_dir);
    g_free(grant->uri);
    g_free(grant);
}

bool
vmrpAccessParseDuration(const char *text, int64_t *ret_seconds, GError **error)
{
    const char *units = "smhd";
    static const int64_t scale[] = { 1, 60, 3600, 86400 };
    g_autofree char *shown = g_strescape(text ? text : "", NULL);
    const char *unit;
    char *end = NULL;
    guint64 n;

    if (!text || !g_ascii_isdigit(*text) ||
        (n = g_ascii_strtoull(text, &end, 10), !end || !*end || end[1]) ||
        !(unit = strchr(units, *end)) || n == 0 ||
        n > (guint64)ACCESS_MAX_SECONDS / scale[unit - units] + 1 ||
        (int64_t)n * scale[unit - units] > ACCESS_MAX_SECONDS) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "invalid duration '%s': expected a number and a unit (s, m, h, d), "
                    "from 1s to 30d", shown);
        return false;
    }
    *ret_seconds = (int64_t)n * scale[unit - units];
    return true;
}

static bool
accessIdValid(const char *id)
{
    size_t i;

    for (i = 0; id[i]; i++) {
        if (!g_ascii_isxdigit(id[i]) || g_ascii_isupper(id[i]))
            return false;
    }
    return i == 16;
}

static char *
accessDir(vmrpRepo *repo)
{
    return g_build_filename(vmrpRepoGetPath(repo), "access", NULL);
}

static char *
accessRecordPath(vmrpRepo *repo, const char *id)
{
    g_autofree char *name = g_strdup_printf("%s.json", id);

    return g_build_filename(vmrpRepoGetPath(repo), "access", name, NULL);
}

/* The supervisor's own folder: root's, 0700 (key, default socket). */
static char *
accessServeDir(const char *id)
{
    g_autofree char *name = g_strdup_printf("access-%s", id);

    return g_build_filename(vmrpStateDir(), name, NULL);
}

static int64_t
recordInt(json_object *obj, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    return json_object_get_int64(v);
}

static bool
accessSave(vmrpRepo *repo, const vmrpAccessGrant *g, GError **error)
{
    g_autofree char *path = accessRecordPath(repo, g->id);
    json_object *obj = json_object_new_object();
    json_object *chain = json_object_new_array();
    const char *text;
    bool ok;
    size_t i;

    for (i = 0; g->chain && g->chain[i]; i++)
        json_object_array_add(chain, json_object_new_string(g->chain[i]));
#define ADD_STR(k, v) json_object_object_add(obj, k, (v) ? json_object_new_string(v) : NULL)
    json_object_object_add(obj, "format", json_object_new_int(1));
    ADD_STR("id", g->id);
    ADD_STR("point", g->point);
    ADD_STR("target", g->target);
    ADD_STR("domain_uuid", g->domain_uuid);
    json_object_object_add(obj, "chain", chain);
    ADD_STR("socket", g->socket);
    ADD_STR("tcp", g->tcp);
    ADD_STR("psk_file", g->psk_file);
    ADD_STR("tls_dir", g->tls_dir);
    ADD_STR("uri", g->uri);
#undef ADD_STR
    json_object_object_add(obj, "created", json_object_new_int64(g->created));
    json_object_object_add(obj, "expires", json_object_new_int64(g->expires));
    json_object_object_add(obj, "pid", json_object_new_int(g->pid));
    text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                               JSON_C_TO_STRING_SPACED);
    ok = vmrpFileWriteAtomic(path, text, strlen(text), 0600, error);
    json_object_put(obj);
    return ok;
}

static vmrpAccessGrant *
accessLoad(vmrpRepo *repo, const char *id, GError **error)
{
    g_autofree char *path = accessRecordPath(repo, id);
    g_autofree char *text = NULL;
    g_autoptr(vmrpAccessGrant) g = g_new0(vmrpAccessGrant, 1);
    g_autoptr(GStrvBuilder) chain = g_strv_builder_new();
    json_object *obj;
    json_object *arr;
    size_t i;

    if (!accessIdValid(id)) {
        g_autofree char *shown = g_strescape(id, NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "invalid access grant '%s': expected 16 hex digits", shown);
        return NULL;
    }
    if (access(path, F_OK) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "no access grant %s (it ended, or was never made)", id);
        return NULL;
    }
    if (!(text = vmrpFileRead(path, ACCESS_RECORD_MAX, NULL, error)))
        return NULL;
    if (!(obj = vmrpJSONParseObject(text, error))) {
        g_prefix_error(error, "access grant %s is damaged: ", id);
        return NULL;
    }
    g->id = g_strdup(id);
    g->point = g_strdup(vmrpJSONGetString(obj, "point"));
    g->target = g_strdup(vmrpJSONGetString(obj, "target"));
    g->domain_uuid = g_strdup(vmrpJSONGetString(obj, "domain_uuid"));
    g->socket = g_strdup(vmrpJSONGetString(obj, "socket"));
    g->tcp = g_strdup(vmrpJSONGetString(obj, "tcp"));
    g->psk_file = g_strdup(vmrpJSONGetString(obj, "psk_file"));
    g->tls_dir = g_strdup(vmrpJSONGetString(obj, "tls_dir"));
    g->uri = g_strdup(vmrpJSONGetString(obj, "uri"));
    g->created = recordInt(obj, "created");
    g->expires = recordInt(obj, "expires");
    g->pid = (int)recordInt(obj, "pid");
    if (json_object_object_get_ex(obj, "chain", &arr) &&
        json_object_is_type(arr, json_type_array)) {
        for (i = 0; i < json_object_array_length(arr); i++) {
            json_object *v = json_object_array_get_idx(arr, i);
            if (json_object_is_type(v, json_type_string))
                g_strv_builder_add(chain, json_object_get_string(v));
        }
    }
    g->chain = g_strv_builder_end(chain);
    json_object_put(obj);
    if (!g->point || !vmrpNameCheckPoint(g->point, NULL) || !g->target ||
        !vmrpNameCheckTarget(g->target, NULL) || g->expires < 0 || g->pid < 0 ||
        (g->socket && !g_path_is_absolute(g->socket)) ||
        (g->psk_file && !g_path_is_absolute(g->psk_file))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "access grant %s is damaged: a field is missing or wrong", id);
        return NULL;
    }
    return g_steal_pointer(&g);
}

/* Whether @pid is the supervisor of grant @id (not a process that reused
 * the pid). */
static bool
accessSupervisorAlive(const vmrpAccessGrant *g)
{
    g_autofree char *path = NULL;
    g_autofree char *cmdline = NULL;
    gsize len = 0;
    bool serve = false, id = false;
    gsize i;

    if (g->pid <= 0)
        return false;
    path = g_strdup_printf("/proc/%d/cmdline", g->pid);
    if (!g_file_get_contents(path, &cmdline, &len, NULL))
        return false;
    for (i = 0; i < len; i += strlen(cmdline + i) + 1) {
        serve |= g_str_equal(cmdline + i, "__access-serve");
        id |= g_str_equal(cmdline + i, g->id);
    }
    return serve && id;
}

/* A file that accessWriteKey wrote: root's, "vmrp:" and 64 hex digits.
 * The record names it, but a path from the repository is never removed
 * on its word alone. */
static bool
accessIsKeyFile(const char *path)
{
    char buf[72] = "";
    struct stat sb;
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return false;
    n = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == 0 &&
        sb.st_size == ACCESS_KEY_LINE_LEN ? read(fd, buf, sizeof(buf) - 1) : -1;
    close(fd);
    return n == ACCESS_KEY_LINE_LEN && g_str_has_prefix(buf, ACCESS_TLS_USER ":") &&
           strspn(buf + strlen(ACCESS_TLS_USER ":"), "0123456789abcdef") == 64;
}

/* What a supervisor that is gone left: its folder, the client's key and the
 * socket it served outside that folder, and the record. */
static void
accessRemoveLeftovers(vmrpRepo *repo, const vmrpAccessGrant *g)
{
    g_autofree char *dir = accessServeDir(g->id);
    g_autofree char *record = accessRecordPath(repo, g->id);
    g_autofree char *inside = g_strconcat(dir, "/", NULL);
    struct stat sb;

    if (g->socket && !g_str_has_prefix(g->socket, inside) &&
        lstat(g->socket, &sb) == 0 && S_ISSOCK(sb.st_mode))
        unlink(g->socket);
    if (g->psk_file && !g_str_has_prefix(g->psk_file, inside) && accessIsKeyFile(g->psk_file))
        unlink(g->psk_file);
    vmrpFileRemoveTree(dir, NULL);
    unlink(record);
}

/* The ids of every record in the access folder. */
static GPtrArray *
accessListIds(vmrpRepo *repo)
{
    g_autofree char *dir = accessDir(repo);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *id = NULL;

        if (!g_str_has_suffix(name, ".json"))
            continue;
        id = g_strndup(name, strlen(name) - strlen(".json"));
        if (accessIdValid(id))
            g_ptr_array_add(ids, g_steal_pointer(&id));
    }
    return ids;
}

/* Whether grant @g still lasts, as far as its record and process tell;
 * ends what is over. */
static bool
accessSweepOne(vmrpRepo *repo, const vmrpAccessGrant *g, int64_t now)
{
    if (g->pid == 0) {
        if (now - g->created < ACCESS_START_GRACE_S && now >= g->created)
            return true;   /* being granted */
        accessRemoveLeftovers(repo, g);
        return false;
    }
    if (!accessSupervisorAlive(g)) {
        accessRemoveLeftovers(repo, g);
        return false;
    }
    if (now > g->expires + ACCESS_KILL_AFTER_S) {
        /* a supervisor that does not end: its qemu-nbd dies with it */
        kill(g->pid, SIGKILL);
        accessRemoveLeftovers(repo, g);
        return false;
    }
    if (now > g->expires + 1)
        kill(g->pid, SIGTERM);
    return true;
}

void
vmrpAccessSweep(vmrpRepo *repo)
{
    g_autoptr(GPtrArray) ids = accessListIds(repo);
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    size_t i;

    for (i = 0; i < ids->len; i++) {
        g_autoptr(vmrpAccessGrant) g = accessLoad(repo, g_ptr_array_index(ids, i), NULL);

        if (g)
            accessSweepOne(repo, g, now);
    }
}

static gint
accessCompare(gconstpointer a, gconstpointer b)
{
    const vmrpAccessGrant *ga = *(vmrpAccessGrant *const *)a;
    const vmrpAccessGrant *gb = *(vmrpAccessGrant *const *)b;

    return ga->created < gb->created ? -1 : ga->created > gb->created;
}

GPtrArray *
vmrpAccessList(vmrpRepo *repo, GError **error G_GNUC_UNUSED)
{
    g_autoptr(GPtrArray) ids = accessListIds(repo);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpAccessGrantFree);
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    size_t i;

    for (i = 0; i < ids->len; i++) {
        vmrpAccessGrant *g = accessLoad(repo, g_ptr_array_index(ids, i), NULL);

        if (g && accessSweepOne(repo, g, now) && g->pid > 0)
            g_ptr_array_add(out, g);
        else
            vmrpAccessGrantFree(g);
    }
    g_ptr_array_sort(out, accessCompare);
    return out;
}

int
vmrpAccessPointInUse(vmrpRepo *repo, const char *id, char **ret_grant, GError **error)
{
    g_autoptr(GPtrArray) ids = accessListIds(repo);
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    size_t i;

    for (i = 0; i < ids->len; i++) {
        const char *gid = g_ptr_array_index(ids, i);
        g_autoptr(GError) local_error = NULL;
        g_autoptr(vmrpAccessGrant) g = accessLoad(repo, gid, &local_error);

        /* a record that cannot be read might serve any point: no guess */
        if (!g && !g_error_matches(local_error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "%s: cannot tell which points it serves ('vmrp rp-access-revoke "
                        "%s' removes it)", local_error->message, gid);
            return -1;
        }
        if (g && g->chain && g_strv_contains((const char *const *)g->chain, id) &&
            accessSweepOne(repo, g, now)) {
            if (ret_grant)
                *ret_grant = g_strdup(g->id);
            return 1;
        }
    }
    return 0;
}

bool
vmrpAccessRevoke(vmrpRepo *repo, const char *id, GError **error)
{
    g_autoptr(GError) local_error = NULL;
    g_autoptr(vmrpAccessGrant) g = accessLoad(repo, id, &local_error);
    int i;

    if (!g && accessIdValid(id) && local_error->code == VMRP_ERROR_INVALID) {
        /* its export, if one still runs, ends at its expiry */
        g_autofree char *path = accessRecordPath(repo, id);

        if (unlink(path) < 0 && errno != ENOENT) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot remove %s: %s", path,
                        g_strerror(errno));
            return false;
        }
        return true;
    }
    if (!g) {
        g_propagate_error(error, g_steal_pointer(&local_error));
        return false;
    }
    if (accessSupervisorAlive(g)) {
        kill(g->pid, SIGTERM);
        /* it stops qemu-nbd and removes its files (10 s at most) */
        for (i = 0; i < 150 && accessSupervisorAlive(g); i++)
            g_usleep(100 * 1000);
        if (accessSupervisorAlive(g))
            kill(g->pid, SIGKILL);
    }
    accessRemoveLeftovers(repo, g);
    return true;
}

/* HOST:PORT, [V6]:PORT: the parts, checked. */
static bool
accessParseTCP(const char *tcp, char **ret_host, char **ret_port, GError **error)
{
    g_autofree char *shown = g_strescape(tcp, NULL);
    const char *colon = strrchr(tcp, ':');
    g_autofree char *host = NULL;
    guint64 port = 0;

    if (colon && colon > tcp) {
        host = tcp[0] == '[' && colon[-1] == ']' ? g_strndup(tcp + 1, colon - tcp - 2)
                                                 : g_strndup(tcp, colon - tcp);
        if (!g_ascii_string_to_unsigned(colon + 1, 10, 1, 65535, &port, NULL))
            port = 0;
    }
    if (!host || !*host || !port || strspn(host, "0123456789abcdefABCDEF.:-"
                                             "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ") !=
                                    strlen(host)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "invalid --tcp '%s': expected HOST:PORT (port 1 to 65535)", shown);
        return false;
    }
    *ret_host = g_steal_pointer(&host);
    *ret_port = g_strdup_printf("%" G_GUINT64_FORMAT, port);
    return true;
}

/* The point and every point it builds on, from the collection's list. */
static GStrv
accessChain(vmrpRepo *repo, const vmrpPoint *point, GError **error)
{
    g_autoptr(GPtrArray) points = vmrpRepoListPoints(repo, point->domain_uuid, error);
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    const char *parent = point->parent;
    size_t i;

    if (!points)
        return NULL;
    g_strv_builder_add(b, point->id);
    while (parent) {
        const char *next = NULL;

        g_strv_builder_add(b, parent);
        for (i = 0; i < points->len && !next; i++) {
            vmrpPoint *p = g_ptr_array_index(points, i);
            if (g_str_equal(p->id, parent))
                next = p->parent ? p->parent : "";
        }
        parent = next && *next ? next : NULL;
    }
    return g_strv_builder_end(b);
}

static void
accessChildSetup(gpointer data G_GNUC_UNUSED)
{
    setsid();
}

/* Starts the supervisor and waits for its first line. */
static bool
accessStartSupervisor(vmrpRepo *repo, const char *id, GError **error)
{
    const char *argv[] = { "/proc/self/exe", "__access-serve", vmrpRepoGetPath(repo), id,
                           NULL };
    g_autoptr(GError) local = NULL;
    g_autoptr(GString) line = g_string_new(NULL);
    char buf[512];
    ssize_t n;
    int out = -1;

    /* not reaped by us: glib's intermediate child hands it to init at once,
     * in a session of its own (vmrp's terminal and process group may go) */
    if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                  G_SPAWN_STDERR_TO_DEV_NULL | G_SPAWN_STDIN_FROM_DEV_NULL,
                                  accessChildSetup, NULL, NULL,
                                  NULL, &out, NULL, &local)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "cannot start the access supervisor: %s", local->message);
        return false;
    }
    while ((n = read(out, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
        if (n > 0)
            g_string_append_len(line, buf, n);
    }
    close(out);
    g_strchomp(line->str);
    if (g_str_equal(line->str, "ready"))
        return true;
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "cannot serve the disk: %s",
                g_str_has_prefix(line->str, "error: ") ? line->str + 7 :
                "the access supervisor ended without a word");
    return false;
}

vmrpAccessGrant *
vmrpAccessGrantCreate(vmrpRepo *repo, const char *id, const char *target,
                      const vmrpAccessOptions *opts, GError **error)
{
    g_autoptr(vmrpAccessGrant) g = g_new0(vmrpAccessGrant, 1);
    g_autoptr(vmrpPoint) point = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *image = NULL;
    g_autofree char *adir = accessDir(repo);
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    guint8 rnd[8];
    int lock = -1;
    size_t i;

    if (opts->socket && opts->tcp) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--socket and --tcp exclude each other");
        return NULL;
    }
    if ((opts->psk_file || opts->tls_dir) && !opts->tcp) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--tls-psk and --tls-dir go with --tcp: a UNIX socket needs no TLS");
        return NULL;
    }
    if (opts->psk_file && opts->tls_dir) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--tls-psk and --tls-dir exclude each other");
        return NULL;
    }
    if (opts->tls_dir) {
        static const char *const files[] = { "ca-cert.pem", "server-cert.pem",
                                             "server-key.pem" };
        for (i = 0; i < G_N_ELEMENTS(files); i++) {
            g_autofree char *path = g_build_filename(opts->tls_dir, files[i], NULL);

            if (!g_path_is_absolute(opts->tls_dir) || access(path, R_OK) < 0) {
                g_autofree char *shown = g_strescape(path, NULL);
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "--tls-dir: \"%s\" is missing or unreadable (an absolute folder "
                            "with ca-cert.pem, server-cert.pem and server-key.pem)", shown);
                return NULL;
            }
        }
    }
    if (opts->tcp && !accessParseTCP(opts->tcp, &host, &port, error))
        return NULL;
    for (i = 0; i < 2; i++) {
        const char *path = i == 0 ? opts->socket : opts->psk_file;
        g_autofree char *parent = path ? g_path_get_dirname(path) : NULL;
        g_autofree char *shown = path ? g_strescape(path, NULL) : NULL;

        if (!path)
            continue;
        if (!g_path_is_absolute(path) || strlen(path) > 100 ||
            !g_file_test(parent, G_FILE_TEST_IS_DIR) ||
            g_file_test(path, G_FILE_TEST_EXISTS) || g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "invalid %s \"%s\": expected an absolute path (at most 100 characters) "
                        "that does not exist yet, in a folder that does",
                        i == 0 ? "--socket" : "--tls-psk", shown);
            return NULL;
        }
    }

    /* the record is written under the collection's lock: a delete either
     * sees it, or ended before the point was looked up */
    if (!(point = vmrpRepoFindPoint(repo, id, NULL, error)))
        return NULL;
    g->domain_uuid = g_strdup(point->domain_uuid);
    g_clear_pointer(&point, vmrpPointFree);
    if ((lock = vmrpRepoLockCollection(repo, g->domain_uuid, error)) < 0)
        return NULL;
    if (!(point = vmrpRepoFindPoint(repo, id, &dir, error)) ||
        !(image = vmrpRepoPointImage(dir, point, target, error)) ||
        !(g->chain = accessChain(repo, point, error)) ||
        !vmrpFileMakeDir(adir, 0700, true, error)) {
        close(lock);
        return NULL;
    }
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
        for (i = 0; i < sizeof(rnd); i++)
            rnd[i] = g_random_int_range(0, 256);
    }
    g->id = g_strdup_printf("%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                            rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    g->point = g_strdup(point->id);
    g->target = g_strdup(target);
    g->socket = g_strdup(opts->socket);
    g->tcp = opts->tcp ? g_strdup_printf(strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port)
                       : NULL;
    g->psk_file = g_strdup(opts->psk_file);
    g->tls_dir = g_strdup(opts->tls_dir);
    g->created = g_get_real_time() / G_USEC_PER_SEC;
    g->expires = g->created + opts->duration_s;
    if (!accessSave(repo, g, error)) {
        close(lock);
        return NULL;
    }
    close(lock);

    if (!accessStartSupervisor(repo, g->id, error)) {
        g_autoptr(vmrpAccessGrant) left = accessLoad(repo, g->id, NULL);
        accessRemoveLeftovers(repo, left ? left : g);
        return NULL;
    }
    return accessLoad(repo, g->id, error);
}

/* ---- the supervisor ---- */

/* Writes a new pre-shared key: qemu-nbd's keys.psk in @dir, and the
 * client's copy at @client_copy (created, 0600) when not NULL. */
static bool
accessWriteKey(const char *dir, const char *client_copy, GError **error)
{
    g_autofree char *path = g_build_filename(dir, "keys.psk", NULL);
    g_autoptr(GString) line = g_string_new(ACCESS_TLS_USER ":");
    guint8 key[32];
    size_t i;
    int fd;

    if (getrandom(key, sizeof(key), 0) != sizeof(key)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot make a key: %s",
                    g_strerror(errno));
        return false;
    }
    for (i = 0; i < sizeof(key); i++)
        g_string_append_printf(line, "%02x", key[i]);
    g_string_append_c(line, '\n');
    if (!vmrpFileWriteAtomic(path, line->str, line->len, 0600, error))
        return false;
    if (!client_copy)
        return true;
    fd = open(client_copy, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line->str, line->len) != (ssize_t)line->len || fsync(fd) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot write the key to %s: %s",
                    client_copy, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(client_copy);
        }
        return false;
    }
    close(fd);
    return true;
}

static char *
accessURI(const vmrpAccessGrant *g, const char *host, const char *port)
{
    g_autofree char *target = g_uri_escape_string(g->target, NULL, FALSE);

    if (g->tcp && g->tls_dir) {
        /* the client adds ?tls-certificates=ITS-OWN-FOLDER */
        return g_strdup_printf(strchr(host, ':') ? "nbds://[%s]:%s/%s" : "nbds://%s:%s/%s",
                               host, port, target);
    } else if (g->tcp) {
        g_autofree char *psk = g_uri_escape_string(g->psk_file, "/", FALSE);
        return g_strdup_printf(strchr(host, ':') ? "nbds://%s@[%s]:%s/%s?tls-psk-file=%s"
                                                 : "nbds://%s@%s:%s/%s?tls-psk-file=%s",
                               ACCESS_TLS_USER, host, port, target, psk);
    } else {
        g_autofree char *sock = g_uri_escape_string(g->socket, "/", FALSE);
        return g_strdup_printf("nbd+unix:///%s?socket=%s", target, sock);
    }
}

/* Serves the grant until it expires or SIGTERM/SIGINT/SIGHUP comes, or
 * qemu-nbd ends; says "ready" or "error: ..." on stdout first. */
static bool
accessServe(vmrpRepo *repo, vmrpAccessGrant *g, const sigset_t *wait_for, GError **error)
{
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(vmrpNbdExport) exp = NULL;
    g_autofree char *pdir = NULL;
    g_autofree char *image = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    g_autofree char *name = g_strdup_printf("access-%s", g->id);
    vmrpNbdServeAddress addr = { 0 };
    int devnull;

    if (!(point = vmrpRepoFindPoint(repo, g->point, &pdir, error)) ||
        !(image = vmrpRepoPointImage(pdir, point, g->target, error)) ||
        !(dir = vmrpStateMakeRootJobDir(name, NULL, NULL, error)))
        return false;
    if (g->tcp) {
        if (!accessParseTCP(g->tcp, &host, &port, error))
            return false;
        addr.host = host;
        addr.port = port;
    }
    if (g->tcp && g->tls_dir) {
        addr.tls_x509_dir = g->tls_dir;
    } else if (g->tcp) {
        if (!g->psk_file)
            g->psk_file = g_build_filename(dir, "keys.psk", NULL);
        if (!accessWriteKey(dir, g_str_has_prefix(g->psk_file, dir) ? NULL : g->psk_file,
                            error))
            return false;
        addr.tls_psk_dir = dir;
        addr.tls_username = ACCESS_TLS_USER;
    } else {
        if (!g->socket)
            g->socket = g_build_filename(dir, "nbd.sock", NULL);
        addr.socket_path = g->socket;
    }
    if (!(exp = vmrpNbdExportServe(image, "qcow2", g->target, &addr, error)))
        return false;
    g->uri = accessURI(g, host, port);
    g->pid = getpid();
    if (!accessSave(repo, g, error))
        return false;

    /* ready: from here on nobody reads what we say */
    if (printf("ready\n") < 0 || fflush(stdout) != 0)
        return false;
    if ((devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0) {
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }

    for (;;) {
        int64_t left = g->expires - g_get_real_time() / G_USEC_PER_SEC;
        struct timespec ts = { .tv_sec = MIN(MAX(left, 0), 60) };
        int sig;

        if (left <= 0)
            break;   /* the time is up */
        sig = sigtimedwait(wait_for, NULL, &ts);
        if (sig == SIGCHLD) {
            siginfo_t info = { 0 };

            /* looked at, not reaped: vmrpNbdExportStop reaps it */
            if (waitid(P_PID, vmrpNbdExportGetPid(exp), &info,
                       WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != 0)
                break;   /* qemu-nbd ended: the grant with it */
        } else if (sig > 0) {
            break;       /* revoked */
        }
    }
    return true;
}

int
vmrpAccessServeMain(const char *repo_path, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpAccessGrant) g = NULL;
    sigset_t set;
    bool ok;

    if (argc != 1)
        return 2;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    umask(077);

    if (!(repo = vmrpRepoOpen(repo_path, false, &error)) ||
        !(g = accessLoad(repo, argv[0], &error))) {
        printf("error: %s\n", error->message);
        return 1;
    }
    ok = accessServe(repo, g, &set, &error);
    if (!ok)
        printf("error: %s\n", error ? error->message : "unknown error");
    fflush(stdout);
    /* the export stopped (g_autoptr in accessServe); now its files */
    accessRemoveLeftovers(repo, g);
    return ok ? 0 : 1;
}
