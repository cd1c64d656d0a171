/*
 * vmrp-job.h: asynchronous work: a job file per job in REPO/jobs/
 *
 * A job is run by a worker process of its own (vmrp itself, detached),
 * which holds a lock on REPO/jobs/<id>.lock for as long as it lives: a job
 * whose file says Running but whose lock is free lost its worker.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>

#include "vmrp-repo.h"

typedef enum {
    VMRP_JOB_RUNNING = 0,
    VMRP_JOB_FINISHED,
    VMRP_JOB_FAILED,

    VMRP_JOB_STATE_LAST
} vmrpJobState;

typedef struct {
    char *id;
    char *command;          /* "rp-create", "rp-restore" */
    char *subject;          /* the domain or point it works on */
    char *created;
    char *finished;
    vmrpJobState state;
    unsigned int percent;
    uint64_t bytes_done;    /* of all its parts (disks, points) */
    uint64_t bytes_total;
    uint64_t rate;          /* bytes per second since its progress began */
    bool started;           /* the worker checked its input and began the work */
    char *message;          /* progress, the result, or why it failed */
    char *result;           /* e.g. the new point's id */
    int64_t pid;
    /* private */
    char *path;
    int lock_fd;
    GHashTable *progress;   /* target -> uint64_t[2] {done, total} */
    gint64 last_save;
    gint64 progress_start;  /* monotonic time of the first progress */
} vmrpJob;

void vmrpJobFree(vmrpJob *job);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpJob, vmrpJobFree)

const char *vmrpJobStateToString(vmrpJobState state);

/* Creates a job file in state Running. */
vmrpJob *vmrpJobCreate(vmrpRepo *repo, const char *command, const char *subject,
                       GError **error);

/* Opens a job; with @as_worker, takes its lock (the worker's side). */
vmrpJob *vmrpJobOpen(vmrpRepo *repo, const char *id, bool as_worker, GError **error);

/* Every job, oldest first. */
GPtrArray *vmrpJobList(vmrpRepo *repo, GError **error);

/* Whether the worker of a Running job is alive (its lock is held). */
bool vmrpJobWorkerAlive(vmrpJob *job);

/* The worker's side: progress of one part (a disk, a point), saved at most
 * twice a second, with the bytes of all parts and the rate; and the end. */
void vmrpJobProgress(vmrpJob *job, const char *part, uint64_t done, uint64_t total);
bool vmrpJobFinish(vmrpJob *job, const char *result, const char *message, GError **error);
bool vmrpJobFail(vmrpJob *job, const char *message, GError **error);
bool vmrpJobSave(vmrpJob *job, GError **error);

char *vmrpJobToJSON(const vmrpJob *job);

/* The job's log: its worker's stdout and stderr (a new string). */
char *vmrpJobLogPath(const vmrpJob *job);

/* Removes the job's files and log: a job that failed on bad input before it
 * started is the command's own error, not a job to keep. */
void vmrpJobRemove(vmrpJob *job);
