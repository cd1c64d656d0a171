/*
 * vmrp-access.h: time-limited read access to a disk restore point (rp-access)
 *
 * A grant serves one disk of one point read-only over NBD (qemu-nbd) until
 * it expires or is revoked.  It is recorded in REPO/access/<grant>.json and
 * kept by a supervisor process of its own (vmrp __access-serve), which ends
 * the export at expiry whatever becomes of the command that granted it; a
 * supervisor that is gone (killed, the host restarted) takes its qemu-nbd
 * with it (PR_SET_PDEATHSIG), and the next vmrp command that opens the
 * repository removes its record (vmrpAccessSweep).  While a grant lasts,
 * its point and every point it builds on cannot be deleted or pruned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "vmrp-repo.h"

typedef struct {
    char *id;             /* 16 hex digits */
    char *point;
    char *target;
    char *domain_uuid;
    GStrv chain;          /* the point and every point it builds on */
    char *socket;         /* the UNIX socket served, or NULL when TCP */
    char *tcp;            /* HOST:PORT served with TLS, or NULL */
    char *psk_file;       /* TCP: the client's copy of the pre-shared key, or */
    char *tls_dir;        /* TCP: x509 (ca-cert.pem, server-cert.pem, server-key.pem) */
    char *uri;            /* what a client connects to (nbdinfo, nbdcopy) */
    int64_t created;      /* Unix seconds */
    int64_t expires;
    int pid;              /* the supervisor; 0 before it runs */
} vmrpAccessGrant;

void vmrpAccessGrantFree(vmrpAccessGrant *grant);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpAccessGrant, vmrpAccessGrantFree)

typedef struct {
    int64_t duration_s;
    const char *socket;   /* a UNIX socket to serve (NULL: one in the state folder) */
    const char *tcp;      /* HOST:PORT instead, always with TLS (a pre-shared key) */
    const char *psk_file; /* TCP: where the client's copy of the key goes (must not
                           * exist; NULL: in the state folder, root's) */
    const char *tls_dir;  /* TCP: x509 instead of a key: the server's certificate and
                           * the CA whose client certificates are let in */
} vmrpAccessOptions;

/* "90s", "15m", "1h", "2d": 1 second to 30 days. */
bool vmrpAccessParseDuration(const char *text, int64_t *ret_seconds, GError **error);

/* Grants access to disk @target of point @id; returns once the export
 * answers (the grant's record has its URI). */
vmrpAccessGrant *vmrpAccessGrantCreate(vmrpRepo *repo, const char *id, const char *target,
                                       const vmrpAccessOptions *opts, GError **error);

/* The grants that last, oldest first (ended ones are swept first). */
GPtrArray *vmrpAccessList(vmrpRepo *repo, GError **error);

/* Ends grant @id now: the export stops, the record goes. */
bool vmrpAccessRevoke(vmrpRepo *repo, const char *id, GError **error);

/* Whether point @id is read by a grant (it or a point built on it): 1 with
 * @ret_grant (nullable) set to the grant's id, 0, or -1 on error. */
int vmrpAccessPointInUse(vmrpRepo *repo, const char *id, char **ret_grant, GError **error);

/* Ends grants whose time is up and removes the records of supervisors that
 * are gone; never fails (what it cannot do, the next call tries again). */
void vmrpAccessSweep(vmrpRepo *repo);

/* The supervisor: "__access-serve GRANT" with the repository at @repo_path. */
int vmrpAccessServeMain(const char *repo_path, int argc, char **argv);
