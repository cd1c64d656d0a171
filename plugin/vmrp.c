/*
 * vmrp.c: the vmrp command line, in virsh's style
 *
 *   vmrp [-c URI] [--repo DIR] [--json] COMMAND [OPTIONS]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include <libvirt/libvirt.h>

#include "config.h"
#include "vmrp-backup.h"
#include "vmrp-error.h"
#include "vmrp-names.h"
#include "vmrp-repo.h"
#include "vmrp-restore.h"

typedef struct {
    const char *uri;
    const char *repo_path;
    bool json;
    bool tty;                  /* stderr is a terminal: progress bars */
    virConnectPtr conn;
} vmrpCLI;

typedef bool (*vmrpCommandFunc)(vmrpCLI *cli, int argc, char **argv, GError **error);

typedef struct {
    const char *name;
    vmrpCommandFunc func;
    const char *args;
    const char *summary;
} vmrpCommand;

static bool
cliConnect(vmrpCLI *cli, GError **error)
{
    if (cli->conn)
        return true;
    if (!(cli->conn = virConnectOpen(cli->uri))) {
        g_autofree char *what = g_strdup_printf("cannot connect to %s", cli->uri);
        vmrpErrorFromLibvirt(error, what);
        return false;
    }
    return true;
}

static virDomainPtr
cliLookupDomain(vmrpCLI *cli, const char *name, GError **error)
{
    virDomainPtr dom;

    if (!cliConnect(cli, error))
        return NULL;
    if ((dom = virDomainLookupByName(cli->conn, name)) ||
        (g_uuid_string_is_valid(name) && (dom = virDomainLookupByUUIDString(cli->conn, name))))
        return dom;
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "domain '%s' not found", name);
    return NULL;
}

static vmrpRepo *
cliOpenRepo(vmrpCLI *cli, bool create, GError **error)
{
    return vmrpRepoOpen(cli->repo_path, create, error);
}

/* Parses a command's options; --help prints and exits. */
static bool
cliParse(const char *command, const char *args, const char *summary,
         GOptionEntry *entries, int *argc, char ***argv,
         int nargs_min, int nargs_max, GError **error)
{
    g_autofree char *prgname = g_strdup_printf("vmrp %s", command);
    g_autoptr(GOptionContext) ctx = g_option_context_new(args);

    g_set_prgname(prgname);
    g_option_context_set_summary(ctx, summary);
    if (entries)
        g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, argc, argv, error))
        return false;
    /* argv[0] is the command */
    if (*argc - 1 < nargs_min || *argc - 1 > nargs_max) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "%s: expected %s (see 'vmrp %s --help')", command,
                    *args ? args : "no arguments", command);
        return false;
    }
    return true;
}

static char *
humanBytes(uint64_t bytes)
{
    return g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
}

static void
printJSON(json_object *obj)
{
    printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_SPACED));
    json_object_put(obj);
}

static json_object *
pointToJSONObject(const vmrpPoint *point)
{
    g_autofree char *text = vmrpPointToJSON(point);
    return json_tokener_parse(text);
}

/* ---- progress ------------------------------------------------------------ */

typedef struct {
    vmrpCLI *cli;
    int last_percent;
    char *last_target;
    gint64 last_print;
} cliProgress;

static void
progressShow(cliProgress *p, const char *what, uint64_t done, uint64_t total)
{
    int percent = total ? (int)(done * 100 / total) : 100;
    g_autofree char *hdone = humanBytes(done);
    g_autofree char *htotal = humanBytes(total);

    if (p->cli->tty) {
        int width = 30;
        int fill = percent * width / 100;
        fprintf(stderr, "\r%-6s [%.*s%*s] %3d%%  %s / %s   ", what, fill,
                "##############################", width - fill, "", percent, hdone, htotal);
        if (percent == 100)
            fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    /* plain lines: each disk at its start, every 10 %, and at its end */
    if (g_strcmp0(p->last_target, what) != 0) {
        g_free(p->last_target);
        p->last_target = g_strdup(what);
        p->last_percent = -1;
    }
    if (percent / 10 == p->last_percent / 10 && percent != 100)
        return;
    if (percent == p->last_percent)
        return;
    p->last_percent = percent;
    fprintf(stderr, "%s: %d%% (%s of %s)\n", what, percent, hdone, htotal);
}

static void
backupProgress(const vmrpPoint *point G_GNUC_UNUSED, const vmrpPointDisk *disk, void *opaque)
{
    progressShow(opaque, disk->target, disk->bytes_done, disk->bytes_total);
}

static void
restoreProgress(const char *target, uint64_t done, uint64_t total, void *opaque)
{
    progressShow(opaque, target, done, total);
}

/* ---- commands -------------------------------------------------------------- */

static bool
cmdRpCreate(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autofree char *consistency = NULL;
    g_autofree char *exclude = NULL;
    gboolean allow_fallback = FALSE;
    int timeout = 10;
    GOptionEntry entries[] = {
        { "consistency", 0, 0, G_OPTION_ARG_STRING, &consistency,
          "application (default), filesystem or crash", "MODE" },
        { "allow-fallback", 0, 0, G_OPTION_ARG_NONE, &allow_fallback,
          "take a crash-consistent point when the guest agent cannot freeze the guest", NULL },
        { "exclude-disk", 0, 0, G_OPTION_ARG_STRING, &exclude,
          "leave these disks out of the point", "T,..." },
        { "agent-timeout", 0, 0, G_OPTION_ARG_INT, &timeout,
          "seconds to wait for each guest agent call (default 10)", "S" },
        { NULL }
    };
    g_auto(GStrv) excluded = NULL;
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(vmrpBackup) backup = NULL;
    vmrpBackupOptions opts = { VMRP_CONSISTENCY_APPLICATION };
    cliProgress progress = { cli, -1 };
    virDomainPtr dom;

    if (!cliParse("rp-create", "DOMAIN", "Take a restore point of a running domain: "
                  "the first is full, the next ones are increments.",
                  entries, &argc, &argv, 1, 1, error))
        return false;
    if (consistency && !vmrpConsistencyFromString(consistency, &opts.consistency, error))
        return false;
    if (exclude && !(excluded = vmrpNameParseTargetList(exclude, error)))
        return false;
    if (timeout <= 0 || timeout > 3600) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--agent-timeout must be between 1 and 3600 seconds");
        return false;
    }
    if (!(dom = cliLookupDomain(cli, argv[1], error)))
        return false;
    opts.allow_fallback = allow_fallback;
    opts.exclude = (const char *const *)excluded;
    opts.agent_timeout_s = timeout;
    opts.progress = backupProgress;
    opts.opaque = &progress;

    backup = vmrpBackupPrepare(dom, &opts, error);
    virDomainFree(dom);
    if (backup && (repo = cliOpenRepo(cli, true, error)))
        point = vmrpBackupRun(backup, repo, error);
    g_free(progress.last_target);
    if (!point)
        return false;

    if (point->fallback_reason)
        fprintf(stderr, "warning: point %s is %s-consistent, not %s: %s\n", point->id,
                vmrpConsistencyToString(point->achieved),
                vmrpConsistencyToString(point->requested), point->fallback_reason);
    if (cli->json) {
        printJSON(pointToJSONObject(point));
    } else {
        g_autofree char *size = humanBytes(vmrpPointBytes(point));
        g_autofree char *freeze = point->freeze_ms >= 0 ?
            g_strdup_printf(", frozen %" G_GINT64_FORMAT " ms", point->freeze_ms) : g_strdup("");
        printf("Restore point %s of %s created: %s, %s-consistent%s, %s copied in %.1f s\n",
               point->id, point->domain_name, point->kind,
               vmrpConsistencyToString(point->achieved), freeze, size,
               point->duration_ms / 1000.0);
    }
    return true;
}

static void
printPointRow(const vmrpPoint *point)
{
    g_autofree char *size = humanBytes(vmrpPointBytes(point));

    printf("%-24s %-22s %-12s %-12s %-10s %10s\n", point->id, point->created, point->kind,
           vmrpConsistencyToString(point->achieved), vmrpPointStateToString(point->state), size);
}

static bool
cmdRpList(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GPtrArray) creating = NULL;
    g_autofree char *uuid = NULL;
    size_t i;

    if (!cliParse("rp-list", "DOMAIN", "List the restore points of a domain, oldest first.",
                  NULL, &argc, &argv, 1, 1, error))
        return false;
    if (!(repo = cliOpenRepo(cli, false, error)) ||
        !(uuid = vmrpRepoFindCollection(repo, argv[1], error)) ||
        !(points = vmrpRepoListPoints(repo, uuid, error)) ||
        !(creating = vmrpRepoListCreating(repo, uuid, error)))
        return false;
    g_ptr_array_extend_and_steal(points, g_steal_pointer(&creating));

    if (cli->json) {
        json_object *arr = json_object_new_array();
        for (i = 0; i < points->len; i++)
            json_object_array_add(arr, pointToJSONObject(g_ptr_array_index(points, i)));
        printJSON(arr);
        return true;
    }
    printf("%-24s %-22s %-12s %-12s %-10s %10s\n", "ID", "CREATED", "KIND",
           "CONSISTENCY", "STATE", "SIZE");
    for (i = 0; i < points->len; i++)
        printPointRow(g_ptr_array_index(points, i));
    return true;
}

/* A committed point, or one being created (for --instance-view). */
static vmrpPoint *
findAnyPoint(vmrpRepo *repo, const char *id, GError **error)
{
    g_autoptr(GPtrArray) collections = NULL;
    g_autoptr(GError) local = NULL;
    vmrpPoint *point;
    size_t i, j;

    if ((point = vmrpRepoFindPoint(repo, id, NULL, &local)))
        return point;
    if (!g_error_matches(local, VMRP_ERROR, VMRP_ERROR_NOT_FOUND) ||
        !(collections = vmrpRepoListCollections(repo, NULL))) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    for (i = 0; i < collections->len; i++) {
        char **pair = g_ptr_array_index(collections, i);
        g_autoptr(GPtrArray) creating = vmrpRepoListCreating(repo, pair[0], NULL);

        for (j = 0; creating && j < creating->len; j++) {
            vmrpPoint *p = g_ptr_array_index(creating, j);
            if (g_str_equal(p->id, id))
                return g_ptr_array_steal_index(creating, j);
        }
    }
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
}

static bool
cmdRpInfo(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    gboolean instance_view = FALSE;
    GOptionEntry entries[] = {
        { "instance-view", 0, 0, G_OPTION_ARG_NONE, &instance_view,
          "show each disk's progress (also while the point is being created)", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpPoint) point = NULL;
    size_t i;

    if (!cliParse("rp-info", "POINT", "Show one restore point.",
                  entries, &argc, &argv, 1, 1, error))
        return false;
    if (!(repo = cliOpenRepo(cli, false, error)) ||
        !(point = findAnyPoint(repo, argv[1], error)))
        return false;

    if (cli->json) {
        printJSON(pointToJSONObject(point));
        return true;
    }
    printf("%-18s %s\n", "Id:", point->id);
    printf("%-18s %s (%s)\n", "Domain:", point->domain_name, point->domain_uuid);
    printf("%-18s %s\n", "Created:", point->created);
    printf("%-18s %s\n", "State:", vmrpPointStateToString(point->state));
    printf("%-18s %s\n", "Kind:", point->kind);
    if (point->parent)
        printf("%-18s %s\n", "Parent:", point->parent);
    if (point->checkpoint)
        printf("%-18s %s\n", "Checkpoint:", point->checkpoint);
    printf("%-18s %s (requested %s)\n", "Consistency:",
           vmrpConsistencyToString(point->achieved), vmrpConsistencyToString(point->requested));
    if (point->fallback_reason)
        printf("%-18s %s\n", "Fallback reason:", point->fallback_reason);
    if (point->freeze_ms >= 0)
        printf("%-18s %" G_GINT64_FORMAT " ms\n", "Freeze window:", point->freeze_ms);
    if (point->message)
        printf("%-18s %s\n", "Message:", point->message);
    printf("\n%-8s %-10s %10s %10s", "TARGET", "IMAGE", "SIZE", "COPIED");
    if (instance_view)
        printf(" %8s", "PROGRESS");
    printf("  SOURCE\n");
    for (i = 0; i < point->disks->len; i++) {
        vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        g_autofree char *size = humanBytes(disk->size);
        g_autofree char *done = humanBytes(disk->bytes_done);

        printf("%-8s %-10s %10s %10s", disk->target,
               disk->excluded ? "excluded" : disk->image, size, done);
        if (instance_view)
            printf(" %7u%%", vmrpPointDiskPercent(disk));
        printf("  %s\n", disk->source ? disk->source : "-");
    }
    return true;
}

static bool
cmdRpRestore(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autofree char *name = NULL;
    g_autofree char *disk_dir = NULL;
    gboolean power_on = FALSE;
    gboolean keep_original = FALSE;
    gboolean quick_rollback = FALSE;
    GOptionEntry entries[] = {
        { "name", 0, 0, G_OPTION_ARG_STRING, &name,
          "restore as a new domain NEW beside the original", "NEW" },
        { "keep-original", 0, 0, G_OPTION_ARG_NONE, &keep_original,
          "restore beside the original, under a generated name", NULL },
        { "power-on", 0, 0, G_OPTION_ARG_NONE, &power_on,
          "start the restored domain", NULL },
        { "disk-dir", 0, 0, G_OPTION_ARG_FILENAME, &disk_dir,
          "folder of the restored disks (default: beside the originals)", "DIR" },
        { "quick-rollback", 0, 0, G_OPTION_ARG_NONE, &quick_rollback,
          "write back only what changed since the point (in place)", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpRestoreResult) res = NULL;
    vmrpRestoreOptions opts = { 0 };
    cliProgress progress = { cli, -1 };
    size_t i;

    if (!cliParse("rp-restore", "POINT", "Restore a restore point as a domain.",
                  entries, &argc, &argv, 1, 1, error))
        return false;
    if (quick_rollback && (name || keep_original)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--quick-rollback restores in place: it cannot be combined with "
                    "--name or --keep-original");
        return false;
    }
    if (!name && !keep_original) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restoring in place is not supported yet: use --name NEW or --keep-original");
        return false;
    }
    if (!vmrpNameCheckPoint(argv[1], error) ||
        (name && !vmrpNameCheckDomain(name, error)))
        return false;
    if (!(repo = cliOpenRepo(cli, false, error)) || !cliConnect(cli, error))
        return false;

    opts.name = name;
    opts.disk_dir = disk_dir;
    opts.power_on = power_on;
    opts.progress = restoreProgress;
    opts.opaque = &progress;
    res = vmrpRestoreNew(cli->conn, repo, argv[1], &opts, error);
    g_free(progress.last_target);
    if (!res)
        return false;

    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object *disks = json_object_new_array();
        json_object *excl = json_object_new_array();

        json_object_object_add(obj, "name", json_object_new_string(res->name));
        json_object_object_add(obj, "uuid", res->uuid ? json_object_new_string(res->uuid) : NULL);
        json_object_object_add(obj, "powered_on", json_object_new_boolean(power_on));
        for (i = 0; i < res->disks->len; i++)
            json_object_array_add(disks, json_object_new_string(g_ptr_array_index(res->disks, i)));
        for (i = 0; i < res->excluded->len; i++)
            json_object_array_add(excl, json_object_new_string(g_ptr_array_index(res->excluded, i)));
        json_object_object_add(obj, "disks", disks);
        json_object_object_add(obj, "excluded_disks", excl);
        printJSON(obj);
        return true;
    }
    printf("Restore point %s restored as domain %s%s\n", argv[1], res->name,
           power_on ? " (running)" : "");
    for (i = 0; i < res->disks->len; i++)
        printf("  disk %s\n", (char *)g_ptr_array_index(res->disks, i));
    for (i = 0; i < res->excluded->len; i++)
        printf("  disk %s: excluded from the point, not restored\n",
               (char *)g_ptr_array_index(res->excluded, i));
    return true;
}

static bool
cmdCollectionList(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) list = NULL;
    size_t i;

    if (!cliParse("collection-list", "", "List the collections (one per domain).",
                  NULL, &argc, &argv, 0, 0, error))
        return false;
    if (!(repo = cliOpenRepo(cli, false, error)) ||
        !(list = vmrpRepoListCollections(repo, error)))
        return false;
    if (cli->json) {
        json_object *arr = json_object_new_array();
        for (i = 0; i < list->len; i++) {
            char **pair = g_ptr_array_index(list, i);
            json_object *obj = json_object_new_object();
            g_autoptr(GPtrArray) points = vmrpRepoListPoints(repo, pair[0], NULL);

            json_object_object_add(obj, "uuid", json_object_new_string(pair[0]));
            json_object_object_add(obj, "name", json_object_new_string(pair[1]));
            json_object_object_add(obj, "points", json_object_new_int(points ? points->len : 0));
            json_object_array_add(arr, obj);
        }
        printJSON(arr);
        return true;
    }
    printf("%-36s  %-24s %6s\n", "UUID", "NAME", "POINTS");
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);
        g_autoptr(GPtrArray) points = vmrpRepoListPoints(repo, pair[0], NULL);
        printf("%-36s  %-24s %6u\n", pair[0], pair[1], points ? points->len : 0);
    }
    return true;
}

static const vmrpCommand commands[] = {
    { "rp-create", cmdRpCreate, "DOMAIN", "take a restore point" },
    { "rp-list", cmdRpList, "DOMAIN", "list the restore points of a domain" },
    { "rp-info", cmdRpInfo, "POINT", "show a restore point" },
    { "rp-restore", cmdRpRestore, "POINT", "restore a point as a domain" },
    { "collection-list", cmdCollectionList, "", "list the collections" },
};

static void
usage(FILE *out)
{
    size_t i;

    fprintf(out,
            "Usage: vmrp [-c URI] [--repo DIR] [--json] COMMAND [OPTIONS]\n\n"
            "Restore points of libvirt/QEMU virtual machines.\n\n"
            "  -c, --connect URI   libvirt URI (default %s)\n"
            "  --repo DIR          repository (default $VMRP_REPO or %s)\n"
            "  --json              machine-readable output\n"
            "  --version           print the version\n\n"
            "Commands:\n", VMRP_DEFAULT_URI, VMRP_DEFAULT_REPO);
    for (i = 0; i < G_N_ELEMENTS(commands); i++)
        fprintf(out, "  %-16s %-8s %s\n", commands[i].name, commands[i].args,
                commands[i].summary);
    fprintf(out, "\n'vmrp COMMAND --help' shows a command's options.\n");
}

int
main(int argc, char **argv)
{
    vmrpCLI cli = { 0 };
    g_autoptr(GError) error = NULL;
    const vmrpCommand *cmd = NULL;
    int i;
    size_t j;
    bool ok;

    setlocale(LC_ALL, "");
    umask(077);
    cli.uri = g_getenv("VMRP_URI") ? g_getenv("VMRP_URI") : VMRP_DEFAULT_URI;
    cli.repo_path = g_getenv("VMRP_REPO") && *g_getenv("VMRP_REPO") ?
                    g_getenv("VMRP_REPO") : VMRP_DEFAULT_REPO;
    cli.tty = isatty(STDERR_FILENO);

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i];

        if (g_str_equal(arg, "-h") || g_str_equal(arg, "--help")) {
            usage(stdout);
            return 0;
        } else if (g_str_equal(arg, "--version")) {
            printf("vmrp %s\n", VMRP_VERSION);
            return 0;
        } else if (g_str_equal(arg, "--json")) {
            cli.json = true;
        } else if ((g_str_equal(arg, "-c") || g_str_equal(arg, "--connect") ||
                    g_str_equal(arg, "--repo")) && i + 1 < argc) {
            if (g_str_equal(arg, "--repo"))
                cli.repo_path = argv[++i];
            else
                cli.uri = argv[++i];
        } else if (g_str_has_prefix(arg, "--repo=")) {
            cli.repo_path = arg + strlen("--repo=");
        } else if (g_str_has_prefix(arg, "--connect=")) {
            cli.uri = arg + strlen("--connect=");
        } else {
            fprintf(stderr, "error: unknown or incomplete option '%s' (see 'vmrp --help')\n",
                    arg);
            return 1;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 1;
    }
    for (j = 0; j < G_N_ELEMENTS(commands); j++) {
        if (g_str_equal(argv[i], commands[j].name))
            cmd = &commands[j];
    }
    if (!cmd) {
        fprintf(stderr, "error: unknown command '%s' (see 'vmrp --help')\n", argv[i]);
        return 1;
    }

    vmrpErrorSilenceLibvirt();
    ok = cmd->func(&cli, argc - i, argv + i, &error);
    if (cli.conn)
        virConnectClose(cli.conn);
    if (!ok) {
        fprintf(stderr, "error: %s\n", error ? error->message : "unknown error");
        return 1;
    }
    return 0;
}
