/*
 * vmrp-check.h: what the repository and libvirt disagree on (repo-check)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

#include "vmrp-repo.h"

typedef struct {
    char *kind;        /* backup-job, half-point, orphan-checkpoint, dead-job,
                        * instant-record, interrupted-restore, damaged-point,
                        * damaged-collection */
    char *subject;     /* the domain (name or uuid) or the job */
    char *item;        /* the point, checkpoint, job or record */
    char *detail;      /* what is wrong, in words */
    bool repairable;   /* --repair can fix it (a damaged point needs a person) */
    bool repaired;
    char *repair_error;
} vmrpCheckFinding;

void vmrpCheckFindingFree(vmrpCheckFinding *f);

/*
 * Every disagreement between @repo and libvirt (@conn may be NULL: then only
 * the repository is read), for the collection @uuid or all (NULL).  With
 * VMRP_CHECK_REPAIR, each repairable finding is repaired under its collection's lock
 * (a collection that another vmrp holds is left alone and says so).  Never
 * touches a checkpoint not named vmrp-<point id>.  A GPtrArray of
 * vmrpCheckFinding.
 */
typedef enum {
    VMRP_CHECK_REPAIR = 1 << 0,   /* repair what can be */
    VMRP_CHECK_LOCKED = 1 << 1,   /* the caller holds the collection's lock (@uuid given):
                                   * no other vmrp works on it */
} vmrpCheckFlags;

GPtrArray *vmrpCheckRun(virConnectPtr conn, vmrpRepo *repo, const char *uuid,
                        unsigned int flags, GError **error);

/*
 * Repairs what a crash left in the collection @uuid, whose lock the caller
 * holds (the half points, the backup job and the checkpoints of a dead
 * vmrp), before a command changes it.  Returns what was done, one line per
 * item ("" when nothing was), for the command to print as a note.
 * @ret_points (may be NULL) gets the collection's committed points, oldest
 * first, as vmrpRepoListPoints gives them: the repair changes none.
 */
char *vmrpCheckRepairCollection(virConnectPtr conn, vmrpRepo *repo, const char *uuid,
                                GPtrArray **ret_points, GError **error);
