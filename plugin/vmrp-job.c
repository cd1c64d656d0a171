/*
 * vmrp-job.c: asynchronous work: a job file per job in REPO/jobs/
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmrp-job.h"
#include "vmrp-error.h"
#include "vmrp-json.h"
#include "vmrp-file.h"

#define JOB_FORMAT 1
#define JOB_FILE_MAX (64 * 1024)
#define JOB_SAVE_INTERVAL_US (G_USEC_PER_SEC / 2)

static const char *const stateNames[VMRP_JOB_STATE_LAST] = {
    [VMRP_JOB_RUNNING] = "Running",
    [VMRP_JOB_FINISHED] = "Finished",
    [VMRP_JOB_FAILED] = "Failed",
};

const char *
vmrpJobStateToString(vmrpJobState state)
{
    return state < VMRP_JOB_STATE_LAST ? stateNames[state] : "Unknown";
}

void
vmrpJobFree(vmrpJob *job)
{
    if (!job)
        return;
    g_free(job->id);
    g_free(job->command);
    g_free(job->subject);
    g_free(job->created);
    g_free(job->finished);
    g_free(job->message);
    g_free(job->result);
    g_free(job->path);
    if (job->lock_fd >= 0)
        close(job->lock_fd);
    if (job->progress)
        g_hash_table_unref(job->progress);
    g_free(job);
}

static vmrpJob *
jobAlloc(void)
{
    vmrpJob *job = g_new0(vmrpJob, 1);

    job->lock_fd = -1;
    job->progress = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return job;
}

static char *
jobsDir(vmrpRepo *repo)
{
    return g_build_filename(vmrpRepoGetPath(repo), "jobs", NULL);
}

/* A job id: "job-" and 12 lower-case hex digits. */
static bool
jobCheckId(const char *id, GError **error)
{
    size_t i;
    bool ok = id && strlen(id) == 16 && g_str_has_prefix(id, "job-");

    for (i = 4; ok && id[i]; i++)
        ok = g_ascii_isxdigit(id[i]) && !g_ascii_isupper(id[i]);
    if (!ok) {
        g_autofree char *shown = g_strescape(id ? id : "", NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "invalid job id '%s': expected job-xxxxxxxxxxxx", shown);
    }
    return ok;
}

static void
addString(json_object *obj, const char *key, const char *val)
{
    json_object_object_add(obj, key, val ? json_object_new_string(val) : NULL);
}

char *
vmrpJobToJSON(const vmrpJob *job)
{
    json_object *obj = json_object_new_object();
    char *ret;

    json_object_object_add(obj, "format", json_object_new_int(JOB_FORMAT));
    addString(obj, "id", job->id);
    addString(obj, "command", job->command);
    addString(obj, "subject", job->subject);
    addString(obj, "created", job->created);
    addString(obj, "finished", job->finished);
    addString(obj, "state", vmrpJobStateToString(job->state));
    json_object_object_add(obj, "percent", json_object_new_int(job->percent));
    json_object_object_add(obj, "bytes_done", json_object_new_uint64(job->bytes_done));
    json_object_object_add(obj, "bytes_total", json_object_new_uint64(job->bytes_total));
    json_object_object_add(obj, "rate", json_object_new_uint64(job->rate));
    json_object_object_add(obj, "started", json_object_new_boolean(job->started));
    addString(obj, "message", job->message);
    addString(obj, "result", job->result);
    json_object_object_add(obj, "pid", json_object_new_int64(job->pid));
    ret = g_strdup_printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                                     JSON_C_TO_STRING_SPACED));
    json_object_put(obj);
    return ret;
}

static char *
getStr(json_object *obj, const char *key)
{
    json_object *val;

    if (!json_object_object_get_ex(obj, key, &val) || !json_object_is_type(val, json_type_string))
        return NULL;
    return g_strdup(json_object_get_string(val));
}

static vmrpJob *
jobLoad(const char *path, const char *id, GError **error)
{
    g_autoptr(vmrpJob) job = jobAlloc();
    g_autofree char *text = NULL;
    g_autofree char *state = NULL;
    json_object *obj;
    json_object *val;

    if (!(text = vmrpFileRead(path, JOB_FILE_MAX, NULL, error)))
        return NULL;
    if (!(obj = vmrpJSONParseObject(text, error))) {
        g_prefix_error(error, "job file %s is damaged: ", path);
        return NULL;
    }
    if (!json_object_object_get_ex(obj, "format", &val) || json_object_get_int(val) != JOB_FORMAT) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "job file %s is damaged: missing field 'format' or not %d", path, JOB_FORMAT);
        json_object_put(obj);
        return NULL;
    }
    job->id = getStr(obj, "id");
    job->command = getStr(obj, "command");
    job->subject = getStr(obj, "subject");
    job->created = getStr(obj, "created");
    job->finished = getStr(obj, "finished");
    job->message = getStr(obj, "message");
    job->result = getStr(obj, "result");
    state = getStr(obj, "state");
    if (json_object_object_get_ex(obj, "percent", &val))
        job->percent = CLAMP(json_object_get_int(val), 0, 100);
    if (json_object_object_get_ex(obj, "bytes_done", &val))
        job->bytes_done = json_object_get_uint64(val);
    if (json_object_object_get_ex(obj, "bytes_total", &val))
        job->bytes_total = json_object_get_uint64(val);
    if (json_object_object_get_ex(obj, "rate", &val))
        job->rate = json_object_get_uint64(val);
    if (json_object_object_get_ex(obj, "started", &val))
        job->started = json_object_get_boolean(val);
    if (json_object_object_get_ex(obj, "pid", &val))
        job->pid = json_object_get_int64(val);
    json_object_put(obj);

    for (job->state = 0; job->state < VMRP_JOB_STATE_LAST; job->state++) {
        if (g_strcmp0(state, stateNames[job->state]) == 0)
            break;
    }
    if (job->state == VMRP_JOB_STATE_LAST || g_strcmp0(job->id, id) != 0 || !job->command) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "job file %s is damaged: its id, command or state is missing or wrong",
                    path);
        return NULL;
    }
    job->path = g_strdup(path);
    return g_steal_pointer(&job);
}

bool
vmrpJobSave(vmrpJob *job, GError **error)
{
    g_autofree char *text = vmrpJobToJSON(job);

    return vmrpFileWriteAtomic(job->path, text, strlen(text), 0600, error);
}

static char *
lockPath(const char *path)
{
    g_autofree char *base = g_strndup(path, strlen(path) - strlen(".json"));
    return g_strconcat(base, ".lock", NULL);
}

vmrpJob *
vmrpJobCreate(vmrpRepo *repo, const char *command, const char *subject, GError **error)
{
    g_autoptr(vmrpJob) job = jobAlloc();
    g_autofree char *dir = jobsDir(repo);
    g_autofree char *name = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();

    if (!vmrpFileMakeDir(dir, 0700, true, error))
        return NULL;
    job->id = g_strdup_printf("job-%04x%08x", g_random_int_range(0, 0x10000), g_random_int());
    job->command = g_strdup(command);
    job->subject = g_strdup(subject);
    job->created = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    job->state = VMRP_JOB_RUNNING;
    job->message = g_strdup("starting");
    name = g_strdup_printf("%s.json", job->id);
    job->path = g_build_filename(dir, name, NULL);
    if (!vmrpJobSave(job, error))
        return NULL;
    return g_steal_pointer(&job);
}

vmrpJob *
vmrpJobOpen(vmrpRepo *repo, const char *id, bool as_worker, GError **error)
{
    g_autofree char *dir = jobsDir(repo);
    g_autofree char *name = NULL;
    g_autofree char *path = NULL;
    g_autofree char *lock = NULL;
    g_autoptr(vmrpJob) job = NULL;

    if (!jobCheckId(id, error))
        return NULL;
    name = g_strdup_printf("%s.json", id);
    path = g_build_filename(dir, name, NULL);
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "no job '%s' in %s",
                    id, vmrpRepoGetPath(repo));
        return NULL;
    }
    if (!(job = jobLoad(path, id, error)))
        return NULL;
    if (as_worker) {
        lock = lockPath(path);
        job->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (job->lock_fd < 0 || flock(job->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                        "job %s already has a worker", id);
            return NULL;
        }
        job->pid = getpid();
        if (!vmrpJobSave(job, error))
            return NULL;
    }
    return g_steal_pointer(&job);
}

bool
vmrpJobWorkerAlive(vmrpJob *job)
{
    g_autofree char *lock = lockPath(job->path);
    int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    bool alive;

    if (fd < 0)
        return false;
    alive = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd);
    return alive;
}

static gint
jobCompare(gconstpointer a, gconstpointer b)
{
    const vmrpJob *ja = *(vmrpJob *const *)a;
    const vmrpJob *jb = *(vmrpJob *const *)b;
    int c = g_strcmp0(ja->created, jb->created);

    return c ? c : g_strcmp0(ja->id, jb->id);
}

GPtrArray *
vmrpJobList(vmrpRepo *repo, GError **error)
{
    g_autofree char *dir = jobsDir(repo);
    g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpJobFree);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GError) local = NULL;
    const char *ent;

    while (d && (ent = g_dir_read_name(d))) {
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        vmrpJob *job;

        if (!g_str_has_suffix(ent, ".json"))
            continue;
        id = g_strndup(ent, strlen(ent) - strlen(".json"));
        if (!jobCheckId(id, NULL))
            continue;
        path = g_build_filename(dir, ent, NULL);
        if (!(job = jobLoad(path, id, &local))) {
            /* one damaged job file hides no other job: it is listed as
             * failed, with the reason */
            job = jobAlloc();
            job->id = g_steal_pointer(&id);
            job->command = g_strdup("?");
            job->subject = g_strdup("");
            job->state = VMRP_JOB_FAILED;
            job->message = g_strdup(local->message);
            job->path = g_steal_pointer(&path);
            g_clear_error(&local);
        }
        g_ptr_array_add(jobs, job);
    }
    g_ptr_array_sort(jobs, jobCompare);
    return g_steal_pointer(&jobs);
}

void
vmrpJobProgress(vmrpJob *job, const char *part, uint64_t done, uint64_t total)
{
    uint64_t *val = g_hash_table_lookup(job->progress, part);
    uint64_t sum_done = 0, sum_total = 0;
    GHashTableIter iter;
    gpointer v;
    gint64 now = g_get_monotonic_time();

    if (!job->progress_start)
        job->progress_start = now;
    if (!val) {
        val = g_new0(uint64_t, 2);
        g_hash_table_insert(job->progress, g_strdup(part), val);
    }
    val[0] = done;
    val[1] = total;
    g_hash_table_iter_init(&iter, job->progress);
    while (g_hash_table_iter_next(&iter, NULL, &v)) {
        sum_done += ((uint64_t *)v)[0];
        sum_total += ((uint64_t *)v)[1];
    }
    job->percent = sum_total ? (unsigned int)(sum_done * 100 / sum_total) : 0;
    job->bytes_done = sum_done;
    job->bytes_total = sum_total;
    if (now > job->progress_start)
        job->rate = (uint64_t)((double)sum_done * G_USEC_PER_SEC /
                               (double)(now - job->progress_start));
    g_free(job->message);
    job->message = g_strdup_printf("copying %s", part);
    if (now - job->last_save < JOB_SAVE_INTERVAL_US && done < total)
        return;
    job->last_save = now;
    vmrpJobSave(job, NULL);    /* progress is best effort */
}

static bool
jobEnd(vmrpJob *job, vmrpJobState state, const char *result, const char *message,
       GError **error)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();

    job->state = state;
    if (state == VMRP_JOB_FINISHED)
        job->percent = 100;
    g_free(job->finished);
    job->finished = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    g_free(job->result);
    job->result = g_strdup(result);
    g_free(job->message);
    job->message = g_strdup(message);
    return vmrpJobSave(job, error);
}

bool
vmrpJobFinish(vmrpJob *job, const char *result, const char *message, GError **error)
{
    return jobEnd(job, VMRP_JOB_FINISHED, result, message, error);
}

bool
vmrpJobFail(vmrpJob *job, const char *message, GError **error)
{
    return jobEnd(job, VMRP_JOB_FAILED, NULL, message, error);
}

char *
vmrpJobLogPath(const vmrpJob *job)
{
    return g_strdup_printf("%.*s.log", (int)(strlen(job->path) - strlen(".json")), job->path);
}

void
vmrpJobRemove(vmrpJob *job)
{
    g_autofree char *log = vmrpJobLogPath(job);
    g_autofree char *lock = lockPath(job->path);

    unlink(job->path);
    unlink(log);
    unlink(lock);
}
