/*
 * vmrp-check.c: what the repository and libvirt disagree on (repo-check)
 *
 * Half points whose creator is gone, vmrp-<id> checkpoints whose point never
 * committed, jobs whose worker died, instant-restore records of domains that
 * no longer exist, in-place restores killed on their way; and damaged
 * points, as the repository reader sees them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <libvirt/virterror.h>

#include "vmrp-check.h"
#include "vmrp-backupxml.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-instant.h"
#include "vmrp-job.h"
#include "vmrp-names.h"
#include "vmrp-restore.h"
#include "vmrp-restore-journal.h"
#include "vmrp-state.h"

void
vmrpCheckFindingFree(vmrpCheckFinding *f)
{
    if (!f)
        return;
    g_free(f->kind);
    g_free(f->subject);
    g_free(f->item);
    g_free(f->detail);
    g_free(f->repair_error);
    g_free(f);
}

static vmrpCheckFinding *
checkAdd(GPtrArray *out, const char *kind, const char *subject, const char *item,
         bool repairable, const char *fmt, ...) G_GNUC_PRINTF(6, 7);
static vmrpCheckFinding *
checkAdd(GPtrArray *out, const char *kind, const char *subject, const char *item,
         bool repairable, const char *fmt, ...)
{
    vmrpCheckFinding *f = g_new0(vmrpCheckFinding, 1);
    va_list ap;

    f->kind = g_strdup(kind);
    f->subject = g_strdup(subject);
    f->item = g_strdup(item);
    f->repairable = repairable;
    va_start(ap, fmt);
    f->detail = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_ptr_array_add(out, f);
    return f;
}

static void
checkRepaired(vmrpCheckFinding *f, bool ok, GError *err)
{
    f->repaired = ok;
    if (!ok)
        f->repair_error = g_strdup(err ? err->message : "unknown error");
}

/* Deletes a checkpoint; one whose bitmaps are gone goes as metadata. */
static bool
checkDeleteCheckpoint(virDomainPtr dom, const char *name, GError **error)
{
    virDomainCheckpointPtr chk = virDomainCheckpointLookupByName(dom, name, 0);
    bool ok;

    if (!chk)
        return true;
    ok = virDomainCheckpointDelete(chk, 0) == 0 ||
         virDomainCheckpointDelete(chk, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) == 0;
    if (!ok)
        vmrpErrorFromLibvirt(error, "cannot delete the checkpoint");
    virDomainCheckpointFree(chk);
    return ok;
}

/* One collection: its damaged points, half points, a leftover backup job
 * and orphan checkpoints.  @ret_points (may be NULL) gets its committed
 * points as listed (a repair changes none of them). */
static bool
checkCollection(virConnectPtr conn, vmrpRepo *repo, const char *uuid, const char *name,
                unsigned int flags, GPtrArray *out, GPtrArray **ret_points, GError **error)
{
    bool locked = flags & VMRP_CHECK_LOCKED;
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GPtrArray) creating = NULL;
    g_autoptr(GHashTable) known = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) found = g_ptr_array_new();
    virDomainCheckpointPtr *chks = NULL;
    virDomainPtr dom = NULL;
    g_autofree char *job_xml = NULL;
    const char *who = *name ? name : uuid;
    g_autoptr(GError) busy = NULL;
    bool ret = false;
    int lock = -1;
    int n = 0;
    int i;

    /* a repair decides under the lock what it repairs: no point commits and
     * no job starts between the look and the fix */
    if ((flags & VMRP_CHECK_REPAIR) && !locked &&
        (lock = vmrpRepoLockCollection(repo, uuid, &busy)) >= 0)
        locked = true;
    if (!(points = vmrpRepoListAll(repo, uuid, &creating, error)))
        goto cleanup;
    for (i = 0; i < (int)points->len; i++) {
        vmrpPoint *p = g_ptr_array_index(points, i);

        g_hash_table_add(known, p->id);
        if (p->state == VMRP_POINT_DAMAGED)
            checkAdd(out, "damaged-point", who, p->id, false, "%s (rp-info, rp-delete)",
                     p->message);
    }
    /* a copy's (rp-copy) checkpoints and jobs are the source repository's */
    if (conn && !vmrpRepoCollectionIsCopy(repo, uuid))
        dom = virDomainLookupByUUIDString(conn, uuid);
    /* a backup job of vmrp's (its scratch files are in vmrp's state folder)
     * with no live creator: a crash left it, and it holds the domain's job */
    if (dom && (job_xml = virDomainBackupGetXMLDesc(dom, 0)) &&
        vmrpBackupXmlIsOurs(job_xml, vmrpStateDir()) &&
        (locked || !vmrpRepoCollectionBusy(repo, uuid)))
        g_ptr_array_add(found, checkAdd(out, "backup-job", who, "backup job", true,
                                        "a backup job of vmrp's runs, but no vmrp does"));
    /* an in-place restore killed on its way: the domain's disks may be
     * partial copies, its originals set aside */
    if ((locked || !vmrpRepoCollectionBusy(repo, uuid)) && vmrpRestoreJournalExists(uuid))
        g_ptr_array_add(found, checkAdd(out, "interrupted-restore", who, "in-place restore",
                                        true, "an in-place restore of the domain was "
                                        "interrupted: its disks are to be put back"));
    for (i = 0; i < (int)creating->len; i++) {
        vmrpPoint *p = g_ptr_array_index(creating, i);

        /* one a live vmrp writes is its own business */
        g_hash_table_add(known, p->id);
        /* with the lock held here, no other vmrp writes it */
        if (p->state == VMRP_POINT_FAILED || locked)
            g_ptr_array_add(found, checkAdd(out, "half-point", who, p->id, true,
                                            "interrupted: the creating process ended; "
                                            "half written, never committed"));
    }

    if (dom && (n = virDomainListAllCheckpoints(dom, &chks, 0)) > 0) {
        for (i = 0; i < n; i++) {
            const char *cname = virDomainCheckpointGetName(chks[i]);

            /* only vmrp's own: vmrp-<a point id> */
            if (!g_str_has_prefix(cname, "vmrp-") || !vmrpNameCheckPoint(cname + 5, NULL) ||
                g_hash_table_contains(known, cname + 5))
                continue;
            g_ptr_array_add(found, checkAdd(out, "orphan-checkpoint", who, cname, true,
                                            "no restore point %s in the repository",
                                            cname + 5));
        }
    }

    if ((flags & VMRP_CHECK_REPAIR) && found->len) {
        g_autoptr(GError) local = NULL;

        if (!locked) {
            /* another vmrp holds the collection */
            for (i = 0; i < (int)found->len; i++)
                checkRepaired(g_ptr_array_index(found, i), false, busy);
        } else {
            g_auto(GStrv) stale = vmrpRepoCleanStale(repo, uuid, &local);

            for (i = 0; i < (int)found->len; i++) {
                vmrpCheckFinding *f = g_ptr_array_index(found, i);
                g_autofree char *cname = NULL;
                g_autoptr(GError) err = NULL;
                bool ok;

                if (g_str_equal(f->kind, "interrupted-restore")) {
                    checkRepaired(f, vmrpRestoreRecover(conn, uuid, &err), err);
                } else if (g_str_equal(f->kind, "backup-job")) {
                    ok = virDomainAbortJob(dom) == 0;
                    if (!ok)
                        vmrpErrorFromLibvirt(&err, "cannot end the backup job");
                    checkRepaired(f, ok, err);
                } else if (g_str_equal(f->kind, "half-point")) {
                    cname = g_strdup_printf("vmrp-%s", f->item);
                    ok = stale && g_strv_contains((const char *const *)stale, f->item);
                    if (ok && dom)
                        ok = checkDeleteCheckpoint(dom, cname, &err);
                    if (ok) {
                        /* the dead creator's scratch folder (its job's files) */
                        g_autofree char *job_dir = g_build_filename(vmrpStateDir(),
                                                                    f->item, NULL);
                        vmrpFileRemoveTree(job_dir, NULL);
                    }
                    checkRepaired(f, ok, err ? err : local);
                } else {
                    ok = checkDeleteCheckpoint(dom, f->item, &err);
                    checkRepaired(f, ok, err);
                }
            }
        }
    }
    if (ret_points)
        *ret_points = g_steal_pointer(&points);
    ret = true;

 cleanup:
    for (i = 0; i < n; i++)
        virDomainCheckpointFree(chks[i]);
    g_free(chks);
    if (dom)
        virDomainFree(dom);
    if (lock >= 0)
        close(lock);
    return ret;
}

GPtrArray *
vmrpCheckRun(virConnectPtr conn, vmrpRepo *repo, const char *uuid, unsigned int flags,
             GError **error)
{
    bool repair = flags & VMRP_CHECK_REPAIR;
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(
        (GDestroyNotify)vmrpCheckFindingFree);
    g_autoptr(GPtrArray) collections = NULL;
    g_autoptr(GPtrArray) jobs = NULL;
    g_auto(GStrv) instant = NULL;
    size_t i;

    if (!(collections = vmrpRepoListCollections(repo, error)))
        return NULL;
    for (i = 0; i < collections->len; i++) {
        char **pair = g_ptr_array_index(collections, i);

        if (uuid && !g_str_equal(pair[0], uuid))
            continue;
        if (pair[2])
            checkAdd(out, "damaged-collection", pair[0], "collection.json", false, "%s",
                     pair[2]);
        if (!checkCollection(conn, repo, pair[0], pair[1], flags, out, NULL, error))
            return NULL;
    }
    if (uuid)
        return g_steal_pointer(&out);

    /* jobs whose worker died without saying so */
    if ((jobs = vmrpJobList(repo, NULL))) {
        for (i = 0; i < jobs->len; i++) {
            vmrpJob *job = g_ptr_array_index(jobs, i);
            vmrpCheckFinding *f;
            g_autoptr(GError) err = NULL;

            if (job->state != VMRP_JOB_RUNNING || vmrpJobWorkerAlive(job))
                continue;
            f = checkAdd(out, "dead-job", job->subject ? job->subject : "", job->id, true,
                         "job %s (%s) says Running, but its worker is gone", job->id,
                         job->command ? job->command : "?");
            if (repair)
                checkRepaired(f, vmrpJobFail(job, "interrupted: the worker ended", &err), err);
        }
    }

    /* instant-restore records of domains that are gone: their permissions on
     * the repository's images are taken back */
    if (conn && (instant = vmrpInstantListDomains(repo, NULL))) {
        for (i = 0; instant[i]; i++) {
            virDomainPtr dom = virDomainLookupByUUIDString(conn, instant[i]);
            vmrpCheckFinding *f;
            g_autoptr(GError) err = NULL;

            if (dom) {
                virDomainFree(dom);
                continue;
            }
            if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN)
                continue;   /* cannot tell: leave it */
            f = checkAdd(out, "instant-record", instant[i], "instant record", true,
                         "domain %s runs on points no more: it does not exist", instant[i]);
            if (repair)
                checkRepaired(f, vmrpInstantRelease(repo, instant[i], &err), err);
        }
    }
    return g_steal_pointer(&out);
}

char *
vmrpCheckRepairCollection(virConnectPtr conn, vmrpRepo *repo, const char *uuid,
                          GPtrArray **ret_points, GError **error)
{
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(
        (GDestroyNotify)vmrpCheckFindingFree);
    g_autoptr(GString) note = g_string_new(NULL);
    size_t i;

    if (!checkCollection(conn, repo, uuid, "", VMRP_CHECK_REPAIR | VMRP_CHECK_LOCKED, found,
                         ret_points, error))
        return NULL;
    for (i = 0; i < found->len; i++) {
        vmrpCheckFinding *f = g_ptr_array_index(found, i);

        if (!f->repairable)
            continue;   /* a damaged point: rp-list shows it */
        if (note->len)
            g_string_append_c(note, '\n');
        if (f->repaired)
            g_string_append_printf(note, "cleaned up %s %s: %s", f->kind, f->item, f->detail);
        else
            g_string_append_printf(note, "could not clean up %s %s (%s): %s", f->kind,
                                   f->item, f->detail, f->repair_error);
    }
    return g_string_free(g_steal_pointer(&note), FALSE);
}
