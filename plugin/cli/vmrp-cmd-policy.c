/*
 * vmrp-cmd-policy.c: automation: policy-set, policy-show, prune,
 * run-policies, and the libvirt hook's on-start worker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "vmrp-cli.h"
#include "vmrp-access.h"
#include "vmrp-verify.h"
#include "vmrp-guest.h"
#include "vmrp-backup.h"
#include "vmrp-delete.h"
#include "vmrp-error.h"
#include "vmrp-policy.h"

#define ON_START_WAIT_S 300

/* "__on-start UUID": started by the hook once the domain started: waits
 * for it to run and its agent to answer, then takes a point. */
bool
vmrpCmdOnStart(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + ON_START_WAIT_S * G_USEC_PER_SEC;
    virDomainPtr dom;
    char *create[] = { "rp-create", argv[1], "--allow-fallback", NULL };

    if (argc != 2 || !g_uuid_string_is_valid(argv[1])) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "__on-start: expected a domain uuid");
        return false;
    }
    if (!(dom = vmrpCLILookupDomain(cli, argv[1], error)))
        return false;
    while (!vmrpGuestPing(dom, 5, NULL)) {
        if (g_get_monotonic_time() > deadline ||
            g_cancellable_set_error_if_cancelled(cli->cancel, error))
            break;   /* no agent: the point falls back to crash consistency */
        g_usleep(G_USEC_PER_SEC);
    }
    virDomainFree(dom);
    return vmrpCmdRpCreate(cli, G_N_ELEMENTS(create) - 1, create, error);
}

/* A domain libvirt knows (@dom) gets its repository and collection made; a
 * gone one must have them. */
static char *
collectionOf(vmrpCLI *cli, virDomainPtr dom, const char *domain, vmrpRepo **ret_repo,
             GError **error)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    g_autofree char *note = NULL;
    g_autofree char *uri = NULL;
    g_autofree char *hostname = NULL;

    if (!(*ret_repo = vmrpCLIOpenRepo(cli, dom != NULL, error))) {
        if (!dom)
            g_prefix_error(error, "no domain '%s', and ", domain);
        return NULL;
    }
    if (!dom)
        return vmrpRepoFindCollection(*ret_repo, domain, error);
    if (virDomainGetUUIDString(dom, uuid) < 0) {
        vmrpErrorFromLibvirt(error, "cannot read the domain's uuid");
        return NULL;
    }
    /* the host that run-policies reaches the domain on */
    uri = virConnectGetURI(virDomainGetConnect(dom));
    hostname = virConnectGetHostname(virDomainGetConnect(dom));
    if (!vmrpRepoEnsureCollection(*ret_repo, virDomainGetName(dom), uuid, uri, hostname,
                                  &note, error))
        return NULL;
    if (note)
        fprintf(stderr, "note: %s\n", note);
    return g_strdup(uuid);
}

bool
vmrpCmdPolicySet(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    int keep[VMRP_RETENTION_RULE_LAST];
    g_autofree char *schedule = NULL;
    g_autofree char *consistency = NULL;
    g_autofree char *exclude = NULL;
    g_autofree char *max_chain = NULL;
    g_autofree char *verify = NULL;
    gboolean keep_all = FALSE, allow_fallback = FALSE, on_start = FALSE, remove = FALSE;
    GOptionEntry entries[] = {
        { "keep-last", 0, 0, G_OPTION_ARG_INT, &keep[VMRP_RETENTION_KEEP_LAST], "keep the N newest points", "N" },
        { "keep-hourly", 0, 0, G_OPTION_ARG_INT, &keep[VMRP_RETENTION_KEEP_HOURLY], "keep the newest point of N hours", "N" },
        { "keep-daily", 0, 0, G_OPTION_ARG_INT, &keep[VMRP_RETENTION_KEEP_DAILY], "... of N days", "N" },
        { "keep-weekly", 0, 0, G_OPTION_ARG_INT, &keep[VMRP_RETENTION_KEEP_WEEKLY], "... of N ISO weeks", "N" },
        { "keep-monthly", 0, 0, G_OPTION_ARG_INT, &keep[VMRP_RETENTION_KEEP_MONTHLY], "... of N months", "N" },
        { "keep-yearly", 0, 0, G_OPTION_ARG_INT, &keep[VMRP_RETENTION_KEEP_YEARLY], "... of N years", "N" },
        { "keep-all", 0, 0, G_OPTION_ARG_NONE, &keep_all, "prune nothing", NULL },
        { "schedule", 0, 0, G_OPTION_ARG_STRING, &schedule,
          "'every 15m', 'every 6h', 'daily 02:30' or 'none'", "WHEN" },
        { "consistency", 0, 0, G_OPTION_ARG_STRING, &consistency,
          "application (default), filesystem or crash", "MODE" },
        { "allow-fallback", 0, 0, G_OPTION_ARG_NONE, &allow_fallback,
          "crash-consistent points when the agent cannot freeze", NULL },
        { "exclude-disk", 0, 0, G_OPTION_ARG_STRING, &exclude, "disks left out", "T,..." },
        { "max-chain", 0, 0, G_OPTION_ARG_STRING, &max_chain,
          "increments after which the next point is a full (default unlimited)", "N" },
        { "verify", 0, 0, G_OPTION_ARG_STRING, &verify,
          "run-policies verifies each point again after this: 'every 7d', 'every 12h' or "
          "'none' (default)", "WHEN" },
        { "on-start", 0, 0, G_OPTION_ARG_NONE, &on_start,
          "take a point when the domain starts (the libvirt hook)", NULL },
        { "remove", 0, 0, G_OPTION_ARG_NONE, &remove, "remove the policy", NULL },
        { NULL }
    };
    g_autoptr(vmrpPolicy) policy = vmrpPolicyNew();
    g_autoptr(vmrpRepo) repo = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *text = NULL;
    virDomainPtr dom = NULL;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(keep); i++)
        keep[i] = 0;
    if (!vmrpCLIParse("policy-set", "DOMAIN", "Set the retention and schedule of a domain's "
                      "points (Proxmox Backup Server's prune rules).",
                      entries, &argc, &argv, 1, 1, error))
        return false;
    for (i = 0; i < G_N_ELEMENTS(keep); i++)
        policy->retention.keep[i] = keep[i];
    policy->retention.keep_all = keep_all;
    policy->allow_fallback = allow_fallback;
    if ((schedule && !vmrpScheduleParse(schedule, &policy->schedule, error)) ||
        (consistency && !vmrpConsistencyFromString(consistency, &policy->consistency, error)) ||
        (exclude && !vmrpPolicySetExcludeDisks(policy, exclude, error)) ||
        (verify && !vmrpPolicyParseVerify(verify, &policy->verify_every_s, error)))
        return false;
    if (max_chain && !g_str_equal(max_chain, "unlimited")) {
        guint64 n;
        if (!g_ascii_string_to_unsigned(max_chain, 10, 0, VMRP_POLICY_CHAIN_MAX, &n, NULL)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "--max-chain: expected 'unlimited' or 0 to %d", VMRP_POLICY_CHAIN_MAX);
            return false;
        }
        policy->max_chain = n;
    }
    if (!remove && !vmrpPolicyValidate(policy, error))
        return false;
    if (vmrpCLIConnect(cli, NULL))
        dom = vmrpCLILookupDomain(cli, argv[1], NULL);
    uuid = collectionOf(cli, dom, argv[1], &repo, error);
    if (dom)
        virDomainFree(dom);
    if (!uuid)
        return false;
    text = remove ? NULL : vmrpPolicyFormat(policy);
    if (!vmrpRepoSetPolicy(repo, uuid, text, on_start, error))
        return false;
    if (!cli->json)
        printf(remove ? "Policy of %s removed\n" : "Policy of %s set\n", argv[1]);
    return true;
}

bool
vmrpCmdPolicyShow(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *text = NULL;
    bool on_start;

    if (!vmrpCLIParse("policy-show", "DOMAIN", "Show a domain's policy.",
                      NULL, &argc, &argv, 1, 1, error) ||
        !(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(uuid = vmrpRepoFindCollection(repo, argv[1], error)) ||
        !vmrpRepoGetPolicy(repo, uuid, &text, &on_start, error))
        return false;
    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "policy", text ? json_object_new_string(text) : NULL);
        json_object_object_add(obj, "on_start", json_object_new_boolean(on_start));
        vmrpCLIPrintJSON(obj);
    } else if (text) {
        printf("%son-start=%s\n", text, on_start ? "yes" : "no");
    } else {
        printf("no policy\n");
    }
    return true;
}

/* Applies the retention of @policy to the collection; with @dry_run only says. */
static bool
pruneCollection(vmrpCLI *cli, virConnectPtr conn, vmrpRepo *repo, const char *uuid,
                const vmrpPolicy *policy, bool dry_run, GError **error)
{
    g_autoptr(GPtrArray) points = NULL;
    g_autofree vmrpRetentionPoint *rp = NULL;
    g_autofree vmrpRetentionDecision *dec = NULL;
    g_autoptr(GTimeZone) tz = g_time_zone_new_local();
    json_object *arr = NULL;
    size_t i;
    bool ok = true;
    int use;

    if (!(points = vmrpRepoListPoints(repo, uuid, error)))
        return false;
    arr = cli->json ? json_object_new_array() : NULL;
    /* a damaged point is neither kept nor pruned: it is reported, for a
     * person to look at (rp-info) and delete (rp-delete) */
    for (i = 0; i < points->len; i++) {
        vmrpPoint *p = g_ptr_array_index(points, i);

        if (p->state != VMRP_POINT_DAMAGED)
            continue;
        if (arr) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_string(p->id));
            json_object_object_add(o, "damaged", json_object_new_string(p->message));
            json_object_array_add(arr, o);
        } else {
            printf("%-24s %-13s %s\n", p->id, "damaged", p->message);
        }
        g_ptr_array_remove_index(points, i--);
    }
    rp = g_new0(vmrpRetentionPoint, points->len + 1);
    for (i = 0; i < points->len; i++) {
        vmrpPoint *p = g_ptr_array_index(points, i);
        g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(p->created, NULL);
        size_t j;

        rp[i].id = p->id;
        rp[i].time = t ? g_date_time_to_unix(t) : 0;
        /* a point an access grant reads (or builds on) stays while it lasts */
        if ((use = vmrpAccessPointInUse(repo, p->id, NULL, error)) < 0) {
            json_object_put(arr);
            return false;
        }
        rp[i].protected = p->protected_ || use > 0;
        /* a parent that is damaged is not in the list */
        for (j = 0; j < i && p->parent; j++) {
            if (g_str_equal(rp[j].id, p->parent))
                rp[i].parent = p->parent;
        }
    }
    if (!vmrpRetentionApply(&policy->retention, rp, points->len, tz, &dec, error)) {
        json_object_put(arr);
        return false;
    }
    for (i = 0; i < points->len && ok; i++) {
        const char *what = dec[i].keep ? "keep" : (dry_run ? "would remove" : "remove");

        if (!dec[i].keep && !dry_run) {
            g_autoptr(vmrpDeleteResult) res = vmrpDeletePoint(conn, repo, rp[i].id, error);
            ok = res != NULL;
        }
        if (arr) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_string(rp[i].id));
            json_object_object_add(o, "keep", json_object_new_boolean(dec[i].keep));
            json_object_object_add(o, "reason", json_object_new_string(dec[i].reason));
            json_object_object_add(o, "merged", json_object_new_boolean(dec[i].merge));
            json_object_array_add(arr, o);
        } else {
            printf("%-24s %-13s %s%s%s\n", rp[i].id, what, dec[i].keep ? dec[i].reason : "",
                   dec[i].merge ? "its data merged into the points built on it" : "",
                   dec[i].needed_by && !dec[i].keep ? "" : "");
        }
    }
    if (arr)
        vmrpCLIPrintJSON(arr);
    return ok;
}

static vmrpPolicy *
loadPolicy(vmrpRepo *repo, const char *uuid, bool *ret_on_start, GError **error)
{
    g_autofree char *text = NULL;
    bool on_start = false;

    if (!vmrpRepoGetPolicy(repo, uuid, &text, &on_start, error))
        return NULL;
    if (ret_on_start)
        *ret_on_start = on_start;
    if (!text) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "no policy: see policy-set");
        return NULL;
    }
    return vmrpPolicyParse(text, error);
}

bool
vmrpCmdPrune(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    gboolean dry_run = FALSE;
    GOptionEntry entries[] = {
        { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, "only say what would go", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpPolicy) policy = NULL;
    g_autofree char *uuid = NULL;

    if (!vmrpCLIParse("prune", "DOMAIN", "Remove the points the domain's retention does not "
                      "keep; a point others build on has its data merged into them first.",
                      entries, &argc, &argv, 1, 1, error) ||
        !(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(uuid = vmrpRepoFindCollection(repo, argv[1], error)) ||
        !(policy = loadPolicy(repo, uuid, NULL, error)))
        return false;
    vmrpCLIConnect(cli, NULL);   /* for the checkpoints; the domain may be gone */
    return pruneCollection(cli, cli->conn, repo, uuid, policy, dry_run, error);
}

/* The points of the collection whose last verification is older than the
 * policy says (or that were never verified) are verified again; a line on
 * stdout for each. */
static void
verifyCollection(vmrpCLI *cli, vmrpRepo *repo, const char *uuid, const char *name,
                 const vmrpPolicy *policy, gint64 now)
{
    g_autoptr(GPtrArray) points = vmrpRepoListPoints(repo, uuid, NULL);
    guint i;

    for (i = 0; points && i < points->len; i++) {
        vmrpPoint *p = g_ptr_array_index(points, i);
        g_autoptr(GDateTime) t = p->verified ? g_date_time_new_from_iso8601(p->verified, NULL)
                                             : NULL;
        g_autoptr(vmrpVerifyResult) res = NULL;
        g_autoptr(GError) local = NULL;

        /* a damaged point is reported by the prune */
        if (p->state != VMRP_POINT_SUCCEEDED ||
            !vmrpPolicyVerifyDue(policy, t ? g_date_time_to_unix(t) : VMRP_SCHEDULE_NEVER, now))
            continue;
        if (!(res = vmrpVerifyPoint(repo, p->id, cli->cancel, &local)))
            printf("%s: point %s not verified, retried next run: %s\n", name, p->id,
                   local->message);
        else if (res->ok)
            printf("%s: point %s verified: OK\n", name, p->id);
        else
            printf("%s: point %s failed verification: %s\n", name, p->id, res->reason);
    }
}

/* One collection's due point and prune; a line on stdout says what happened.
 * With @simulated, @now is a test's clock, and the point is made at @now. */
static bool
runPolicy(vmrpCLI *cli, virConnectPtr conn, vmrpRepo *repo, const char *uuid, const char *name,
          gint64 now, bool simulated, GError **error)
{
    g_autoptr(vmrpPolicy) policy = NULL;
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GTimeZone) tz = g_time_zone_new_local();
    g_autoptr(vmrpBackup) backup = NULL;
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(GError) local = NULL;
    vmrpBackupOptions opts = { 0 };
    gint64 last = VMRP_SCHEDULE_NEVER;
    guint chain = 0;
    virDomainPtr dom;

    if (!(policy = loadPolicy(repo, uuid, NULL, &local))) {
        if (!g_error_matches(local, VMRP_ERROR, VMRP_ERROR_NOT_FOUND))
            printf("%s: bad policy: %s\n", name, local->message);
        return true;
    }
    if (!(points = vmrpRepoListPoints(repo, uuid, error)))
        return false;
    if (points->len) {
        vmrpPoint *newest = g_ptr_array_index(points, points->len - 1);
        g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(newest->created, NULL);
        size_t i;

        last = t ? g_date_time_to_unix(t) : VMRP_SCHEDULE_NEVER;
        for (i = points->len; i > 0; i--) {
            vmrpPoint *p = g_ptr_array_index(points, i - 1);
            if (!p->parent)
                break;
            chain++;
        }
    }
    if (!vmrpScheduleIsDue(&policy->schedule, tz, last, now)) {
        printf("%s: not due\n", name);
    } else if (!(dom = virDomainLookupByUUIDString(conn, uuid))) {
        printf("%s: domain gone, no point taken\n", name);
    } else {
        opts.consistency = policy->consistency;
        opts.allow_fallback = policy->allow_fallback;
        opts.exclude = (const char *const *)policy->exclude_disks;
        opts.full = vmrpPolicyNeedsFull(policy, chain);
        opts.agent_timeout_s = 10;
        opts.cancel = cli->cancel;
        opts.created_at = simulated ? now : 0;
        if ((backup = vmrpBackupPrepare(dom, &opts, &local)))
            point = vmrpBackupRun(backup, repo, &local);
        virDomainFree(dom);
        if (point)
            printf("%s: point %s taken (%s)\n", name, point->id, point->kind);
        else    /* off, busy, no agent: reported, tried again at the next run */
            printf("%s: no point taken, retried next run: %s\n", name, local->message);
    }
    if (!policy->retention.keep_all) {
        g_clear_error(&local);
        if (!pruneCollection(cli, conn, repo, uuid, policy, false, &local))
            printf("%s: prune failed: %s\n", name, local->message);
    }
    if (policy->verify_every_s > 0)
        verifyCollection(cli, repo, uuid, name, policy, now);
    return true;
}

/* One host's collections, visited in one go over one connection. */
typedef struct {
    vmrpCLI *cli;
    vmrpRepo *repo;
    char *uri;
    GPtrArray *collections;    /* of char ** {uuid, name}, borrowed */
    gint64 now;
    bool simulated;
    bool ok;
    GError *error;
} runHost;

static void
runHostFree(runHost *h)
{
    g_free(h->uri);
    g_ptr_array_unref(h->collections);
    g_clear_error(&h->error);
    g_free(h);
}

static void
runHostVisit(gpointer data, gpointer unused G_GNUC_UNUSED)
{
    runHost *h = data;
    virConnectPtr conn = NULL;
    bool own = false;
    size_t i;

    if (g_strcmp0(h->uri, h->cli->uri) == 0 && h->cli->conn) {
        conn = h->cli->conn;
    } else if ((conn = virConnectOpen(h->uri))) {
        own = true;
    } else {
        /* a host that does not answer: its domains are said, and tried next run */
        for (i = 0; i < h->collections->len; i++)
            printf("%s: host %s unreachable, no point taken, retried next run: %s\n",
                   ((char **)g_ptr_array_index(h->collections, i))[1], h->uri,
                   virGetLastErrorMessage());
        h->ok = true;
        return;
    }
    h->ok = true;
    for (i = 0; h->ok && i < h->collections->len; i++) {
        char **pair = g_ptr_array_index(h->collections, i);
        h->ok = runPolicy(h->cli, conn, h->repo, pair[0], pair[1], h->now, h->simulated,
                          &h->error);
    }
    if (own)
        virConnectClose(conn);
}

bool
vmrpCmdRunPolicies(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    gint64 now = 0;
    int parallel = 1;
    GOptionEntry entries[] = {
        { "now", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT64, &now,
          "the time to act as if it were (seconds since the epoch; for tests): "
          "points taken are stamped with it", "T" },
        { "parallel", 0, 0, G_OPTION_ARG_INT, &parallel,
          "visit up to N hosts at once (default 1: one after the other)", "N" },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) collections = NULL;
    g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func((GDestroyNotify)runHostFree);
    g_autofree char *lock_path = NULL;
    int lock;
    size_t i, j;
    bool ok = true;
    bool simulated;

    if (!vmrpCLIParse("run-policies", "", "Take every due point, then prune, for every "
                      "domain with a policy, on the host its collection records (one "
                      "connection per host).  Safe to run every minute from cron or a "
                      "timer: overlapping runs do nothing.", entries, &argc, &argv, 0, 0, error))
        return false;
    if (parallel < 1 || parallel > 64) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "--parallel must be 1 to 64");
        return false;
    }
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)))
        return false;
    /* this host's libvirt may be down while other hosts are not: said per domain */
    vmrpCLIConnect(cli, NULL);
    lock_path = g_build_filename(vmrpRepoGetPath(repo), ".run-policies.lock", NULL);
    lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        if (lock >= 0)
            close(lock);
        printf("another run-policies is running: nothing to do\n");
        return true;
    }
    simulated = now > 0;
    if (!simulated)
        now = g_get_real_time() / G_USEC_PER_SEC;
    if (!(collections = vmrpRepoListCollections(repo, error))) {
        close(lock);
        return false;
    }
    /* each collection to the host it records (none: -c URI), each host once */
    for (i = 0; i < collections->len; i++) {
        char **pair = g_ptr_array_index(collections, i);
        g_autofree char *uri = vmrpRepoGetCollectionURI(repo, pair[0]);
        const char *where = uri ? uri : cli->uri;
        runHost *h = NULL;

        for (j = 0; j < hosts->len && !h; j++) {
            if (g_str_equal(((runHost *)g_ptr_array_index(hosts, j))->uri, where))
                h = g_ptr_array_index(hosts, j);
        }
        if (!h) {
            h = g_new0(runHost, 1);
            h->cli = cli;
            h->repo = repo;
            h->uri = g_strdup(where);
            h->collections = g_ptr_array_new();
            h->now = now;
            h->simulated = simulated;
            g_ptr_array_add(hosts, h);
        }
        g_ptr_array_add(h->collections, pair);
    }
    if (parallel > 1 && hosts->len > 1) {
        GThreadPool *pool = g_thread_pool_new(runHostVisit, NULL, parallel, TRUE, NULL);

        for (i = 0; i < hosts->len; i++)
            g_thread_pool_push(pool, g_ptr_array_index(hosts, i), NULL);
        g_thread_pool_free(pool, FALSE, TRUE);
    } else {
        for (i = 0; i < hosts->len; i++)
            runHostVisit(g_ptr_array_index(hosts, i), NULL);
    }
    for (i = 0; i < hosts->len; i++) {
        runHost *h = g_ptr_array_index(hosts, i);

        if (!h->ok && ok) {
            ok = false;
            g_propagate_error(error, g_steal_pointer(&h->error));
        }
    }
    close(lock);
    return ok;
}
