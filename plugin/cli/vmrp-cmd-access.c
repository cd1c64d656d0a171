/*
 * vmrp-cmd-access.c: rp-access, rp-access-list, rp-access-revoke
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>

#include "vmrp-access.h"
#include "vmrp-cli.h"
#include "vmrp-error.h"
#include "vmrp-names.h"

static char *
accessTime(int64_t t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

    return dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

static json_object *
accessToJSON(const vmrpAccessGrant *g)
{
    json_object *obj = json_object_new_object();
    g_autofree char *expires = accessTime(g->expires);

    json_object_object_add(obj, "grant", json_object_new_string(g->id));
    json_object_object_add(obj, "point", json_object_new_string(g->point));
    json_object_object_add(obj, "target", json_object_new_string(g->target));
    json_object_object_add(obj, "uri", g->uri ? json_object_new_string(g->uri) : NULL);
    json_object_object_add(obj, "socket", g->socket ? json_object_new_string(g->socket) : NULL);
    json_object_object_add(obj, "tcp", g->tcp ? json_object_new_string(g->tcp) : NULL);
    json_object_object_add(obj, "tls_psk_file",
                           g->psk_file ? json_object_new_string(g->psk_file) : NULL);
    json_object_object_add(obj, "tls_dir", g->tls_dir ? json_object_new_string(g->tls_dir) : NULL);
    json_object_object_add(obj, "expires", json_object_new_string(expires));
    json_object_object_add(obj, "pid", json_object_new_int(g->pid));
    return obj;
}

bool
vmrpCmdRpAccess(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autofree char *duration = NULL;
    g_autofree char *socket = NULL;
    g_autofree char *tcp = NULL;
    g_autofree char *psk = NULL;
    g_autofree char *tls_dir = NULL;
    GOptionEntry entries[] = {
        { "duration", 'd', 0, G_OPTION_ARG_STRING, &duration,
          "how long the access lasts: 90s, 15m, 1h, 2d (at most 30d; required)", "TIME" },
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &socket,
          "serve on this UNIX socket (default: one in vmrp's state folder)", "PATH" },
        { "tcp", 0, 0, G_OPTION_ARG_STRING, &tcp,
          "serve on TCP instead, always with TLS (a pre-shared key made for the grant)",
          "HOST:PORT" },
        { "tls-psk", 0, 0, G_OPTION_ARG_FILENAME, &psk,
          "with --tcp: write the client's copy of the key here (mode 0600; must not exist)",
          "FILE" },
        { "tls-dir", 0, 0, G_OPTION_ARG_FILENAME, &tls_dir,
          "with --tcp: x509 instead of a key: ca-cert.pem, server-cert.pem, server-key.pem; "
          "clients need a certificate from that CA", "DIR" },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpAccessGrant) g = NULL;
    g_autofree char *expires = NULL;
    vmrpAccessOptions opts = { 0 };

    if (!vmrpCLIParse("rp-access", "POINT TARGET --duration TIME",
                      "Serve disk TARGET of a restore point read-only over NBD until the "
                      "time is up (Azure's grant access).", entries, &argc, &argv, 2, 2, error))
        return false;
    if (!duration) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "--duration TIME is required");
        return false;
    }
    if (!vmrpAccessParseDuration(duration, &opts.duration_s, error) ||
        !vmrpNameCheckPoint(argv[1], error) || !vmrpNameCheckTarget(argv[2], error) ||
        !(repo = vmrpCLIOpenRepo(cli, false, error)))
        return false;
    opts.socket = socket;
    opts.tcp = tcp;
    opts.psk_file = psk;
    opts.tls_dir = tls_dir;
    if (!(g = vmrpAccessGrantCreate(repo, argv[1], argv[2], &opts, error)))
        return false;
    if (cli->json) {
        vmrpCLIPrintJSON(accessToJSON(g));
        return true;
    }
    expires = accessTime(g->expires);
    printf("Access grant %s: disk %s of restore point %s, read-only, until %s\n", g->id,
           g->target, g->point, expires);
    printf("  URI: %s\n", g->uri);
    if (g->psk_file)
        printf("  TLS pre-shared key (user vmrp): %s\n", g->psk_file);
    if (g->tls_dir)
        printf("  TLS x509 (%s): a client adds ?tls-certificates=ITS-FOLDER to the URI\n",
               g->tls_dir);
    printf("  e.g. nbdinfo '%s'; end it with 'vmrp rp-access-revoke %s'\n", g->uri, g->id);
    return true;
}

bool
vmrpCmdRpAccessList(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) grants = NULL;
    size_t i;

    if (!vmrpCLIParse("rp-access-list", "", "List the access grants that last.",
                      NULL, &argc, &argv, 0, 0, error) ||
        !(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(grants = vmrpAccessList(repo, error)))
        return false;
    if (cli->json) {
        json_object *arr = json_object_new_array();
        for (i = 0; i < grants->len; i++)
            json_object_array_add(arr, accessToJSON(g_ptr_array_index(grants, i)));
        vmrpCLIPrintJSON(arr);
        return true;
    }
    printf("%-16s  %-22s  %-6s  %-20s  %s\n", "Grant", "Point", "Disk", "Expires", "URI");
    for (i = 0; i < grants->len; i++) {
        vmrpAccessGrant *g = g_ptr_array_index(grants, i);
        g_autofree char *expires = accessTime(g->expires);

        printf("%-16s  %-22s  %-6s  %-20s  %s\n", g->id, g->point, g->target, expires, g->uri);
    }
    return true;
}

bool
vmrpCmdRpAccessRevoke(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;

    if (!vmrpCLIParse("rp-access-revoke", "GRANT", "End an access grant now: its export "
                      "stops.", NULL, &argc, &argv, 1, 1, error) ||
        !(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !vmrpAccessRevoke(repo, argv[1], error))
        return false;
    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "revoked", json_object_new_string(argv[1]));
        vmrpCLIPrintJSON(obj);
        return true;
    }
    printf("Access grant %s revoked\n", argv[1]);
    return true;
}
