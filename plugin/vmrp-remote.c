/*
 * vmrp-remote.c: a libvirt connection to another host
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <unistd.h>

#include "vmrp-remote.h"
#include "vmrp-error.h"

const char *
vmrpRemoteTLSDir(const char *given)
{
    const char *env = g_getenv("VMRP_TLS_DIR");

    return given ? given : env && *env ? env : VMRP_DEFAULT_TLS_DIR;
}

char *
vmrpRemoteHost(virConnectPtr conn)
{
    g_autofree char *uri = virConnectGetURI(conn);
    g_autoptr(GUri) parsed = NULL;
    const char *host;

    if (!uri || !(parsed = g_uri_parse(uri, G_URI_FLAGS_NON_DNS, NULL)))
        return NULL;
    host = g_uri_get_host(parsed);
    return host && *host ? g_strdup(host) : NULL;
}

bool
vmrpRemoteRefuse(virConnectPtr conn, const char *what, GError **error)
{
    g_autofree char *host = vmrpRemoteHost(conn);

    if (!host)
        return true;
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                "%s works on this host's files only, and the connection is to %s: run it on "
                "that host (rp-create works remotely)", what, host);
    return false;
}

bool
vmrpRemoteCheckTLSDir(const char *dir, GError **error)
{
    static const char *const files[] = { "ca-cert.pem", "client-cert.pem", "client-key.pem" };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(dir, files[i], NULL);

        if (access(path, R_OK) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "NBD over TLS needs vmrp's client certificate: %s is missing or "
                        "unreadable (--tls-dir DIR holds ca-cert.pem, client-cert.pem and "
                        "client-key.pem; --no-tls for plain TCP)", path);
            return false;
        }
    }
    return true;
}
