/*
 * vmrp-cmd-job.c: asynchronous work: --async, job-list, job-info, job-wait,
 * job-abort
 *
 * `vmrp CMD ... --async` starts `vmrp [global options] __job JOB CMD ...` in
 * a session of its own, with its output in REPO/jobs/JOB.log, and waits
 * until that worker has checked its input: bad input is still an error of
 * the command itself, not a failed job.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmrp-cli.h"
#include "vmrp-error.h"

#define JOB_START_WAIT_S 120
#define JOB_ABORT_WAIT_S 120

static void
workerSetup(gpointer data)
{
    const char *log = data;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

    setsid();
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
}

bool
vmrpCLIAsyncStart(vmrpCLI *cli, char **argv, const char *subject, bool create_repo,
                  GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpJob) job = NULL;
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_autoptr(GError) local = NULL;
    g_autofree char *log = NULL;
    gint64 deadline = g_get_monotonic_time() + JOB_START_WAIT_S * G_USEC_PER_SEC;
    GPid pid;
    int i;

    if (!(repo = vmrpCLIOpenRepo(cli, create_repo, error)) ||
        !(job = vmrpJobCreate(repo, argv[0], subject, error)))
        return false;
    log = vmrpJobLogPath(job);

    g_ptr_array_add(args, "/proc/self/exe");
    for (i = 0; cli->global_argv[i]; i++)
        g_ptr_array_add(args, cli->global_argv[i]);
    g_ptr_array_add(args, "__job");
    g_ptr_array_add(args, job->id);
    for (i = 0; argv[i]; i++) {
        if (!g_str_equal(argv[i], "--async"))
            g_ptr_array_add(args, argv[i]);
    }
    g_ptr_array_add(args, NULL);
    if (!g_spawn_async(NULL, (char **)args->pdata, NULL,
                       G_SPAWN_STDIN_FROM_DEV_NULL, workerSetup, log, &pid, &local)) {
        vmrpJobFail(job, local->message, NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "cannot start the job: %s",
                    local->message);
        return false;
    }
    g_spawn_close_pid(pid);

    /* until the worker checked its input */
    for (;;) {
        g_autoptr(vmrpJob) now = vmrpJobOpen(repo, job->id, false, error);

        if (!now)
            return false;
        if (now->state == VMRP_JOB_FAILED && !now->started) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "%s", now->message);
            vmrpJobRemove(now);
            return false;
        }
        if (now->started || now->state != VMRP_JOB_RUNNING)
            break;
        if (g_get_monotonic_time() > deadline) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                        "job %s did not start within %d s (see %s)",
                        job->id, JOB_START_WAIT_S, log);
            return false;
        }
        g_usleep(G_USEC_PER_SEC / 10);
    }
    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "job", json_object_new_string(job->id));
        vmrpCLIPrintJSON(obj);
    } else {
        printf("Job %s started: vmrp job-info %s\n", job->id, job->id);
    }
    return true;
}

void
vmrpCLIJobStarted(vmrpCLI *cli)
{
    if (!cli->job)
        return;
    cli->job->started = true;
    g_free(cli->job->message);
    cli->job->message = g_strdup("running");
    vmrpJobSave(cli->job, NULL);
}

void
vmrpCLIJobEnd(vmrpCLI *cli, bool ok, const GError *error)
{
    if (ok)
        vmrpJobFinish(cli->job, cli->job_result, cli->job_message ? cli->job_message : "done",
                      NULL);
    else
        vmrpJobFail(cli->job, error ? error->message : "failed", NULL);
}

/* A Running job whose worker is gone died without saying so. */
static void
jobRefresh(vmrpJob *job)
{
    if (job->state == VMRP_JOB_RUNNING && !vmrpJobWorkerAlive(job)) {
        job->state = VMRP_JOB_FAILED;
        g_free(job->message);
        job->message = g_strdup("the job's worker died");
    }
}

static json_object *
jobToJSON(vmrpJob *job)
{
    g_autofree char *text = vmrpJobToJSON(job);
    return json_tokener_parse(text);
}

static void
printJob(vmrpCLI *cli, vmrpJob *job)
{
    if (cli->json) {
        vmrpCLIPrintJSON(jobToJSON(job));
        return;
    }
    printf("%-10s %s\n", "Id:", job->id);
    printf("%-10s %s %s\n", "Command:", job->command, job->subject ? job->subject : "");
    printf("%-10s %s\n", "State:", vmrpJobStateToString(job->state));
    if (job->bytes_total) {
        g_autofree char *done = vmrpCLIHumanBytes(job->bytes_done);
        g_autofree char *total = vmrpCLIHumanBytes(job->bytes_total);
        g_autofree char *rate = vmrpCLIHumanBytes(job->rate);

        printf("%-10s %u%% (%s of %s, %s/s)\n", "Progress:", job->percent, done, total, rate);
    } else {
        printf("%-10s %u%%\n", "Progress:", job->percent);
    }
    printf("%-10s %s\n", "Started:", job->created);
    if (job->finished)
        printf("%-10s %s\n", "Ended:", job->finished);
    if (job->result)
        printf("%-10s %s\n", "Result:", job->result);
    if (job->message)
        printf("%-10s %s\n", "Message:", job->message);
}

static vmrpJob *
openJob(vmrpCLI *cli, const char *id, vmrpRepo **ret_repo, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    vmrpJob *job;

    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(job = vmrpJobOpen(repo, id, false, error)))
        return NULL;
    jobRefresh(job);
    if (ret_repo)
        *ret_repo = g_steal_pointer(&repo);
    return job;
}

bool
vmrpCmdJobList(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) jobs = NULL;
    size_t i;

    if (!vmrpCLIParse("job-list", "", "List the jobs.", NULL, &argc, &argv, 0, 0, error))
        return false;
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(jobs = vmrpJobList(repo, error)))
        return false;
    if (cli->json) {
        json_object *arr = json_object_new_array();
        for (i = 0; i < jobs->len; i++) {
            vmrpJob *job = g_ptr_array_index(jobs, i);
            jobRefresh(job);
            json_object_array_add(arr, jobToJSON(job));
        }
        vmrpCLIPrintJSON(arr);
        return true;
    }
    printf("%-18s %-12s %-24s %-9s %4s  %s\n", "ID", "COMMAND", "SUBJECT", "STATE", "%",
           "STARTED");
    for (i = 0; i < jobs->len; i++) {
        vmrpJob *job = g_ptr_array_index(jobs, i);
        jobRefresh(job);
        printf("%-18s %-12s %-24s %-9s %4u  %s\n", job->id, job->command,
               job->subject ? job->subject : "-", vmrpJobStateToString(job->state),
               job->percent, job->created);
    }
    return true;
}

bool
vmrpCmdJobInfo(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpJob) job = NULL;

    if (!vmrpCLIParse("job-info", "JOB", "Show a job: state (Running, Finished, Failed), "
                      "percent, message.", NULL, &argc, &argv, 1, 1, error) ||
        !(job = openJob(cli, argv[1], NULL, error)))
        return false;
    printJob(cli, job);
    return true;
}

bool
vmrpCmdJobWait(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpJob) job = NULL;
    int timeout = 0;
    GOptionEntry entries[] = {
        { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout,
          "give up after S seconds (default: wait as long as it runs)", "S" },
        { NULL }
    };
    gint64 deadline;

    if (!vmrpCLIParse("job-wait", "JOB", "Wait for a job to end; fails when the job failed.",
                      entries, &argc, &argv, 1, 1, error) ||
        !(job = openJob(cli, argv[1], &repo, error)))
        return false;
    deadline = g_get_monotonic_time() + (gint64)timeout * G_USEC_PER_SEC;
    while (job->state == VMRP_JOB_RUNNING) {
        if (g_cancellable_set_error_if_cancelled(cli->cancel, error))
            return false;
        if (timeout > 0 && g_get_monotonic_time() > deadline) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                        "job %s still runs after %d s (%u%%)", job->id, timeout, job->percent);
            return false;
        }
        g_usleep(G_USEC_PER_SEC / 5);
        vmrpJobFree(g_steal_pointer(&job));
        if (!(job = openJob(cli, argv[1], NULL, error)))
            return false;
    }
    printJob(cli, job);
    if (job->state == VMRP_JOB_FAILED) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "job %s failed: %s",
                    job->id, job->message ? job->message : "unknown error");
        return false;
    }
    return true;
}

bool
vmrpCmdJobAbort(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpJob) job = NULL;
    gint64 deadline;

    if (!vmrpCLIParse("job-abort", "JOB", "Abort a running job: what it made so far is "
                      "undone.", NULL, &argc, &argv, 1, 1, error) ||
        !(job = openJob(cli, argv[1], &repo, error)))
        return false;
    if (job->state != VMRP_JOB_RUNNING) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "job %s is not running (%s)",
                    job->id, vmrpJobStateToString(job->state));
        return false;
    }
    /* the worker undoes its work on SIGTERM, then records the end */
    if (job->pid <= 0 || kill(job->pid, SIGTERM) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "cannot signal the worker of job %s: %s",
                    job->id, g_strerror(errno));
        return false;
    }
    deadline = g_get_monotonic_time() + JOB_ABORT_WAIT_S * G_USEC_PER_SEC;
    while (vmrpJobWorkerAlive(job)) {
        if (g_get_monotonic_time() > deadline) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                        "the worker of job %s did not stop within %d s", job->id,
                        JOB_ABORT_WAIT_S);
            return false;
        }
        g_usleep(G_USEC_PER_SEC / 10);
    }
    vmrpJobFree(g_steal_pointer(&job));
    if (!(job = openJob(cli, argv[1], NULL, error)))
        return false;
    printJob(cli, job);
    return true;
}
