/*
 * test-fault.c: the test-only fault points (built with -Dfault_points=true)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmrp-test.h"
#include "vmrp-fault.h"
#include "vmrp-error.h"

static char *tmpdir;

static int
suiteInit(void)
{
    tmpdir = g_dir_make_tmp("vmrp-test-fault-XXXXXX", NULL);
    return tmpdir ? 0 : 1;
}

static int
suiteCleanup(void)
{
    g_autofree char *reached = g_build_filename(tmpdir, "reached", NULL);

    unlink(reached);
    rmdir(tmpdir);
    g_free(tmpdir);
    g_unsetenv("VMRP_FAULT");
    g_unsetenv("VMRP_FAULT_REACHED");
    return 0;
}

static void
testUnset(void)
{
    g_autoptr(GError) error = NULL;

    g_unsetenv("VMRP_FAULT");
    CU_ASSERT_TRUE(vmrpFaultCheck("before-commit", &error));
    CU_ASSERT_PTR_NULL(error);
    g_setenv("VMRP_FAULT", "", TRUE);
    CU_ASSERT_TRUE(vmrpFaultCheck("before-commit", &error));
    CU_ASSERT_PTR_NULL(error);
}

static void
testOtherPhase(void)
{
    g_autoptr(GError) error = NULL;

    g_setenv("VMRP_FAULT", "after-freeze", TRUE);
    CU_ASSERT_TRUE(vmrpFaultCheck("before-commit", &error));
    CU_ASSERT_TRUE(vmrpFaultCheck("after-freez", &error));
    CU_ASSERT_TRUE(vmrpFaultCheck("after-freeze-x", &error));
    CU_ASSERT_PTR_NULL(error);
}

static void
testFail(void)
{
    g_autoptr(GError) error = NULL;

    g_setenv("VMRP_FAULT", "before-commit", TRUE);
    CU_ASSERT_FALSE(vmrpFaultCheck("before-commit", &error));
    CU_ASSERT_TRUE_FATAL(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_FAILED));
    CU_ASSERT_STRING_EQUAL(error->message, "fault injected at before-commit");
    g_clear_error(&error);

    g_setenv("VMRP_FAULT", "before-commit:fail", TRUE);
    CU_ASSERT_FALSE(vmrpFaultCheck("before-commit", &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    g_clear_error(&error);

    /* a list: each entry counts on its own */
    g_setenv("VMRP_FAULT", "after-freeze:kill, in-copy ,before-commit", TRUE);
    CU_ASSERT_FALSE(vmrpFaultCheck("in-copy", &error));
    CU_ASSERT_STRING_EQUAL(error->message, "fault injected at in-copy");
    g_clear_error(&error);
    CU_ASSERT_FALSE(vmrpFaultCheck("before-commit", &error));
    g_clear_error(&error);
    CU_ASSERT_TRUE(vmrpFaultCheck("after-thaw", &error));
    CU_ASSERT_PTR_NULL(error);
}

static void
testUnknownAction(void)
{
    g_autoptr(GError) error = NULL;

    g_setenv("VMRP_FAULT", "in-copy:explode", TRUE);
    CU_ASSERT_FALSE(vmrpFaultCheck("in-copy", &error));
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "unknown action 'explode'"));
}

/* Runs vmrpFaultCheck(@phase) in a child with VMRP_FAULT=@spec; returns its pid. */
static pid_t
forkCheck(const char *spec, const char *phase)
{
    pid_t pid;

    g_setenv("VMRP_FAULT", spec, TRUE);
    pid = fork();
    if (pid == 0) {
        vmrpFaultCheck(phase, NULL);
        _exit(0);
    }
    g_unsetenv("VMRP_FAULT");
    return pid;
}

static void
testKill(void)
{
    int status = 0;
    pid_t pid = forkCheck("after-job-start:kill", "after-job-start");

    CU_ASSERT_TRUE_FATAL(pid > 0);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* another phase: the child goes on and exits normally */
    pid = forkCheck("after-job-start:kill", "before-commit");
    CU_ASSERT_TRUE_FATAL(pid > 0);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
testHang(void)
{
    g_autofree char *reached = g_build_filename(tmpdir, "reached", NULL);
    g_autofree char *text = NULL;
    int status = 0;
    pid_t pid;
    int i;

    g_setenv("VMRP_FAULT_REACHED", reached, TRUE);
    pid = forkCheck("after-job-start:hang", "after-job-start");
    g_unsetenv("VMRP_FAULT_REACHED");
    CU_ASSERT_TRUE_FATAL(pid > 0);

    /* the child says where it stopped, then stays there (the file exists
     * a moment before its line is written: wait for the line) */
    for (i = 0; i < 1000; i++) {
        g_clear_pointer(&text, g_free);
        if (g_file_get_contents(reached, &text, NULL, NULL) && strchr(text, '\n'))
            break;
        g_usleep(10 * 1000);
    }
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT_STRING_EQUAL(text ? text : "", "after-job-start\n");
    g_usleep(200 * 1000);
    CU_ASSERT_EQUAL(waitpid(pid, &status, WNOHANG), 0);

    kill(pid, SIGTERM);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

static void
testStop(void)
{
    int status = 0;
    pid_t pid = forkCheck("delete-before-lock:stop", "delete-before-lock");

    CU_ASSERT_TRUE_FATAL(pid > 0);
    /* stopped there, then on at SIGCONT, and the check lets it go on */
    CU_ASSERT_EQUAL(waitpid(pid, &status, WUNTRACED), pid);
    CU_ASSERT_TRUE(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP);
    kill(pid, SIGCONT);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testUnset),
    VMRP_TEST(testOtherPhase),
    VMRP_TEST(testFail),
    VMRP_TEST(testUnknownAction),
    VMRP_TEST(testKill),
    VMRP_TEST(testHang),
    VMRP_TEST(testStop),
    { NULL, NULL },
};

int
main(void)
{
    return vmrpTestMain("fault", cases, suiteInit, suiteCleanup);
}
