/*
 * vmrp-hook.c: libvirt's qemu hook
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmrp-hook.h"
#include "vmrp-domxml.h"
#include "vmrp-file.h"
#include "vmrp-repo.h"
#include "vmrp-state.h"

#define HOOK_XML_MAX (4 * 1024 * 1024)

/* hook.log and the one before it (hook.log.1) hold at most twice this:
 * libvirt runs the hook at every event of every domain, for years */
#define HOOK_LOG_MAX (1024 * 1024)

/* hook.log opened for appending, under its lock; one past HOOK_LOG_MAX
 * becomes hook.log.1 first.  Hooks of several domains run at once: one that
 * waited for the lock while another renamed the file opens the new one. */
static int
hookLogOpen(const char *path)
{
    g_autofree char *old = g_strdup_printf("%s.1", path);
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
    int tries;

    for (tries = 0; tries < 3; tries++) {
        struct stat st, cur;
        int fd;

        if ((fd = open(path, flags, 0600)) < 0)
            return -1;
        if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0)
            return fd;   /* unlocked is better than silent */
        if (stat(path, &cur) < 0 || cur.st_ino != st.st_ino) {
            close(fd);   /* renamed while we waited */
            continue;
        }
        if (st.st_size < HOOK_LOG_MAX || rename(path, old) < 0)
            return fd;
        close(fd);
    }
    return open(path, flags, 0600);
}

static void
hookLog(const char *domain, const char *uuid, const char *op, const char *subop,
        const char *what)
{
    g_autofree char *path = g_build_filename(vmrpStateDir(), "hook.log", NULL);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    json_object *obj = json_object_new_object();
    const char *line;
    int fd;

    json_object_object_add(obj, "time", json_object_new_string(stamp));
    json_object_object_add(obj, "domain", domain ? json_object_new_string(domain) : NULL);
    json_object_object_add(obj, "uuid", uuid ? json_object_new_string(uuid) : NULL);
    json_object_object_add(obj, "operation", op ? json_object_new_string(op) : NULL);
    json_object_object_add(obj, "sub_operation", subop ? json_object_new_string(subop) : NULL);
    json_object_object_add(obj, "vmrp", json_object_new_string(what));
    line = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);

    vmrpFileMakeDirWithParents(vmrpStateDir(), 0755, 0711, NULL);
    if ((fd = hookLogOpen(path)) >= 0) {
        if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0) {
            /* nowhere else to say it: the hook must not fail the VM */
        }
        close(fd);   /* and its lock */
    }
    json_object_put(obj);
}

/* Whether the collection of @uuid asks for a point when its domain starts. */
static bool
hookWantsOnStart(const char *repo_path, const char *uuid)
{
    g_autoptr(vmrpRepo) repo = vmrpRepoOpen(repo_path, false, NULL);
    g_autofree char *text = NULL;
    bool on_start = false;

    return repo && vmrpRepoGetPolicy(repo, uuid, &text, &on_start, NULL) && text && on_start;
}

/* The worker must not hold libvirtd's pipes: libvirtd reads the hook's
 * output until it is closed. */
static void
workerSetup(gpointer data G_GNUC_UNUSED)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

    setsid();
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
}

int
vmrpHookMain(const char *repo_path, int argc, char **argv)
{
    g_autoptr(GString) xml = g_string_new(NULL);
    g_autoptr(vmrpDomainXml) dom = NULL;
    g_autoptr(GError) error = NULL;
    const char *uuid;
    char buf[65536];
    ssize_t n;

    if (argc != 4) {
        hookLog(argc > 0 ? argv[0] : NULL, NULL, argc > 1 ? argv[1] : NULL, NULL,
                "error: expected DOMAIN OPERATION SUB-OPERATION EXTRA");
        return 0;
    }
    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0 && xml->len < HOOK_XML_MAX)
        g_string_append_len(xml, buf, n);
    if (!(dom = vmrpDomainXmlParse(xml->str, &error)) || !(uuid = vmrpDomainXmlGetUUID(dom)) ||
        !g_uuid_string_is_valid(uuid) || g_strcmp0(vmrpDomainXmlGetName(dom), argv[0]) != 0) {
        g_autofree char *what = g_strdup_printf("error: unexpected domain XML on stdin: %s",
                                                error ? error->message : "no uuid or another name");
        hookLog(argv[0], NULL, argv[1], argv[2], what);
        return 0;
    }

    if (g_str_equal(argv[1], "started") && hookWantsOnStart(repo_path, uuid)) {
        g_autoptr(GError) local = NULL;
        const char *worker[] = { "/proc/self/exe", "--repo", repo_path, "__on-start", uuid, NULL };
        GPid pid;

        if (g_spawn_async(NULL, (char **)worker, NULL, G_SPAWN_DEFAULT, workerSetup, NULL,
                          &pid, &local)) {
            g_spawn_close_pid(pid);
            hookLog(argv[0], uuid, argv[1], argv[2], "on-start point handed to a worker");
        } else {
            g_autofree char *what = g_strdup_printf("error: cannot start the worker: %s",
                                                    local->message);
            hookLog(argv[0], uuid, argv[1], argv[2], what);
        }
        return 0;
    }
    hookLog(argv[0], uuid, argv[1], argv[2], "recorded");
    return 0;
}
