/*
 * test-acl.c: one user's entry in a file's POSIX access ACL: granted,
 * effective for that user only, revoked down to the plain mode again
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "vmrp-test.h"
#include "vmrp-acl.h"
#include "vmrp-file.h"

#define UID_A 54321
#define UID_B 54322

static char *tmpdir;

static int
setup(void)
{
    tmpdir = g_dir_make_tmp("vmrp-test-acl-XXXXXX", NULL);
    /* the users of the test reach the files in it */
    return tmpdir && chmod(tmpdir, 0711) == 0 ? 0 : -1;
}

static int
teardown(void)
{
    vmrpFileRemoveTree(tmpdir, NULL);
    g_free(tmpdir);
    return 0;
}

static mode_t
modeOf(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (sb.st_mode & 07777) : 0;
}

static bool
hasAcl(const char *path)
{
    return getxattr(path, "system.posix_acl_access", NULL, 0) > 0;
}

/* Whether @uid may open @path for reading (root only: forks and drops to it). */
static int
readableBy(const char *path, uid_t uid)
{
    pid_t pid;
    int status;

    if (geteuid() != 0)
        return -1;
    if ((pid = fork()) == 0) {
        if (setgid(65534) < 0 || setuid(uid) < 0)
            _exit(2);
        _exit(open(path, O_RDONLY) >= 0 ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status) == 0;
}

static void
testGrantRevoke(void)
{
    g_autofree char *path = g_build_filename(tmpdir, "image", NULL);
    g_autoptr(GError) error = NULL;

    CU_ASSERT_TRUE(g_file_set_contents(path, "data", -1, NULL));
    CU_ASSERT_EQUAL(chmod(path, 0600), 0);
    CU_ASSERT_EQUAL(vmrpAclGetUser(path, UID_A), 0);

    CU_ASSERT_TRUE(vmrpAclGrantUser(path, UID_A, VMRP_ACL_READ, &error));
    CU_ASSERT_PTR_NULL(error);
    if (error && g_strrstr(error->message, "no POSIX ACLs"))
        return;   /* a tmp file system without ACLs: nothing more to see */
    CU_ASSERT_EQUAL(vmrpAclGetUser(path, UID_A), VMRP_ACL_READ);
    CU_ASSERT_EQUAL(vmrpAclGetUser(path, UID_B), 0);
    CU_ASSERT_EQUAL(modeOf(path), 0640);    /* the group bits show the mask */
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL(readableBy(path, UID_A), 1);
        CU_ASSERT_EQUAL(readableBy(path, UID_B), 0);
    }

    /* a second user, then the first goes: the second keeps its entry */
    CU_ASSERT_TRUE(vmrpAclGrantUser(path, UID_B, VMRP_ACL_READ | VMRP_ACL_WRITE, NULL));
    CU_ASSERT_EQUAL(modeOf(path), 0660);
    CU_ASSERT_TRUE(vmrpAclRevokeUser(path, UID_A, NULL));
    CU_ASSERT_EQUAL(vmrpAclGetUser(path, UID_A), 0);
    CU_ASSERT_EQUAL(vmrpAclGetUser(path, UID_B), VMRP_ACL_READ | VMRP_ACL_WRITE);
    if (geteuid() == 0)
        CU_ASSERT_EQUAL(readableBy(path, UID_A), 0);

    /* the last named entry goes: no ACL, the plain mode again */
    CU_ASSERT_TRUE(vmrpAclRevokeUser(path, UID_B, NULL));
    CU_ASSERT_FALSE(hasAcl(path));
    CU_ASSERT_EQUAL(modeOf(path), 0600);
    /* revoking again, or on a missing file, is no error */
    CU_ASSERT_TRUE(vmrpAclRevokeUser(path, UID_B, NULL));
    CU_ASSERT_TRUE(vmrpAclRevokeUser("/nonexistent/vmrp-acl", UID_B, NULL));
}

static void
testFolder(void)
{
    g_autofree char *dir = g_build_filename(tmpdir, "points", NULL);
    g_autoptr(GError) error = NULL;

    CU_ASSERT_EQUAL(mkdir(dir, 0700), 0);
    CU_ASSERT_TRUE(vmrpAclGrantUser(dir, UID_A, VMRP_ACL_EXECUTE, &error));
    CU_ASSERT_EQUAL(vmrpAclGetUser(dir, UID_A), VMRP_ACL_EXECUTE);
    CU_ASSERT_EQUAL(modeOf(dir), 0710);
    /* granting again replaces the entry */
    CU_ASSERT_TRUE(vmrpAclGrantUser(dir, UID_A, VMRP_ACL_EXECUTE, NULL));
    CU_ASSERT_TRUE(vmrpAclRevokeUser(dir, UID_A, NULL));
    CU_ASSERT_EQUAL(modeOf(dir), 0700);
    CU_ASSERT_FALSE(hasAcl(dir));
    CU_ASSERT_FALSE(vmrpAclGrantUser("/nonexistent/vmrp-acl", UID_A, VMRP_ACL_READ, NULL));
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testGrantRevoke),
    VMRP_TEST(testFolder),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("acl", cases, setup, teardown);
}
