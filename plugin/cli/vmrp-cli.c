/*
 * vmrp-cli.c: what the commands of the vmrp command line share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vmrp-access.h"
#include "vmrp-cli.h"
#include "vmrp-dest.h"
#include "vmrp-error.h"

bool
vmrpCLIConnect(vmrpCLI *cli, GError **error)
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

virDomainPtr
vmrpCLILookupDomain(vmrpCLI *cli, const char *name, GError **error)
{
    virDomainPtr dom;

    if (!vmrpCLIConnect(cli, error))
        return NULL;
    if ((dom = virDomainLookupByName(cli->conn, name)) ||
        (g_uuid_string_is_valid(name) && (dom = virDomainLookupByUUIDString(cli->conn, name))))
        return dom;
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "domain '%s' not found", name);
    return NULL;
}

vmrpRepo *
vmrpCLIOpenRepo(vmrpCLI *cli, bool create, GError **error)
{
    vmrpRepo *repo;

    if (vmrpDestIsRemote(cli->repo_path)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "an ssh:// repository serves only rp-list, rp-verify and rp-copy (to a "
                    "local folder)");
        return NULL;
    }
    repo = vmrpRepoOpen(cli->repo_path, create, error);

    if (repo) {
        /* every command that opens the repository ends the access grants
         * whose time is up (their supervisors do; this catches what a reboot
         * left) */
        vmrpAccessSweep(repo);
        vmrpRepoSetAllowVerifyFailed(repo, cli->force);
    }
    return repo;
}

/* Parses a command's options; --help prints and exits. */
bool
vmrpCLIParse(const char *command, const char *args, const char *summary,
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

char *
vmrpCLIHumanBytes(uint64_t bytes)
{
    return g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
}

void
vmrpCLIPrintJSON(json_object *obj)
{
    printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_SPACED));
    json_object_put(obj);
}

json_object *
vmrpCLIPointToJSON(const vmrpPoint *point)
{
    g_autofree char *text = vmrpPointToJSON(point);
    return json_tokener_parse(text);
}

json_object *
vmrpCLIStrvToJSON(const char *const *strv)
{
    json_object *arr = json_object_new_array();

    for (; strv && *strv; strv++)
        json_object_array_add(arr, json_object_new_string(*strv));
    return arr;
}

void
vmrpCLIProgressShow(vmrpCLIProgress *p, const char *what, uint64_t done, uint64_t total)
{
    if (p->cli->job) {
        vmrpJobProgress(p->cli->job, what, done, total);
        return;
    }
    int percent = total ? (int)(done * 100 / total) : 100;
    g_autofree char *hdone = vmrpCLIHumanBytes(done);
    g_autofree char *htotal = vmrpCLIHumanBytes(total);

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
    if (p->last_percent >= 0 && percent / 10 == p->last_percent / 10 && percent != 100)
        return;
    if (percent == p->last_percent)
        return;
    p->last_percent = percent;
    fprintf(stderr, "%s: %d%% (%s of %s)\n", what, percent, hdone, htotal);
}

void
vmrpCLIPrintNote(const char *note)
{
    g_auto(GStrv) lines = NULL;
    char **l;

    if (!note || !*note)
        return;
    lines = g_strsplit(note, "\n", -1);
    for (l = lines; *l; l++)
        fprintf(stderr, "note: %s\n", *l);
}
