/* test-agent.c: unit tests of the guest agent over the socket transport
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-qmp-test.h"
#include "vmrp-agent.h"

#define TIMEOUT_S 10
#define RETURN_EMPTY "{\"return\": {}}"

/* A peer that expects the agent handshake; *ret_fd is the client's end. */
static vmrpFakePeer *
newAgentPeer(int *ret_fd)
{
    vmrpFakePeer *peer = vmrpFakePeerNew(ret_fd);

    vmrpFakePeerExpectSync(peer, NULL);
    return peer;
}

/* The agent on @fd; NULL (and a test failure) when the handshake fails. */
static vmrpAgent *
newAgent(int fd)
{
    g_autoptr(GError) err = NULL;
    vmrpQmpSocket *sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_AGENT, TIMEOUT_S * 1000,
                                              &err);

    VMRP_ASSERT_NO_ERROR(err);
    return sock ? vmrpAgentNewSocket(sock) : NULL;
}

/* Ends the peer and checks it saw exactly the commands @names (NULL-terminated). */
static GPtrArray *
finish(vmrpFakePeer *peer, const char *const *names)
{
    GPtrArray *cmds = VMRP_PEER_FINISH(peer);
    g_autofree char *got = NULL;
    g_autofree char *want = NULL;
    g_autoptr(GPtrArray) list = g_ptr_array_new();
    guint i;

    for (i = 1; i < cmds->len; i++)   /* 0 is the handshake */
        g_ptr_array_add(list, (char *)vmrpFakePeerCommandName(cmds, i));
    g_ptr_array_add(list, NULL);
    got = g_strjoinv(" ", (char **)list->pdata);
    want = g_strjoinv(" ", (char **)names);
    VMRP_ASSERT_STR(got, want);
    return cmds;
}

static void
testAgentPing(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-ping", RETURN_EMPTY);
    vmrpFakePeerExpect(peer, "guest-ping", NULL);
    vmrpFakePeerStart(peer);
    if ((agent = newAgent(fd))) {
        CU_ASSERT_TRUE(vmrpAgentPing(agent, TIMEOUT_S, &err));
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_FALSE(vmrpAgentPing(agent, 0, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_TIMEOUT, "guest-ping: timed out after 0 s");
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){ "guest-ping", "guest-ping", NULL });
}

static void
testAgentFsfreeze(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpFakePeer *peer;
    bool frozen = false;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-fsfreeze-status", "{\"return\": \"thawed\"}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-freeze", "{\"return\": 2}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-status", "{\"return\": \"frozen\"}");
    vmrpFakePeerExpect(peer, "guest-exec",
                       "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command "
                       "guest-exec has been disabled: the agent is in frozen state\"}}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-thaw", "{\"return\": 2}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-freeze-list", "{\"return\": 1}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-status", "{\"return\": \"frozen\"}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-thaw", "{\"return\": 1}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        const char *const argv[] = { "sync", NULL };
        const char *const mounts[] = { "/data", NULL };
        int code = -7;

        CU_ASSERT_TRUE(vmrpAgentFsfreezeStatus(agent, TIMEOUT_S, &frozen, &err));
        CU_ASSERT_FALSE(frozen);
        CU_ASSERT_EQUAL(vmrpAgentFsfreezeFreeze(agent, TIMEOUT_S, &err), 2);
        CU_ASSERT_TRUE(vmrpAgentFsfreezeStatus(agent, TIMEOUT_S, &frozen, &err));
        CU_ASSERT_TRUE(frozen);
        VMRP_ASSERT_NO_ERROR(err);

        CU_ASSERT_FALSE(vmrpAgentExec(agent, argv, NULL, TIMEOUT_S, &code, NULL, NULL, &err));
        CU_ASSERT_EQUAL(code, -7);
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_NOT_FOUND,
                          "guest-exec sync: Command guest-exec has been disabled: the agent "
                          "is in frozen state");
        g_clear_error(&err);

        CU_ASSERT_EQUAL(vmrpAgentFsfreezeThaw(agent, TIMEOUT_S, &err), 2);
        CU_ASSERT_EQUAL(vmrpAgentFsfreezeFreezeList(agent, mounts, TIMEOUT_S, &err), 1);
        CU_ASSERT_TRUE(vmrpAgentFsfreezeStatus(agent, TIMEOUT_S, &frozen, &err));
        CU_ASSERT_TRUE(frozen);
        CU_ASSERT_EQUAL(vmrpAgentFsfreezeThaw(agent, TIMEOUT_S, &err), 1);
        VMRP_ASSERT_NO_ERROR(err);
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){
        "guest-fsfreeze-status", "guest-fsfreeze-freeze", "guest-fsfreeze-status",
        "guest-exec", "guest-fsfreeze-thaw", "guest-fsfreeze-freeze-list",
        "guest-fsfreeze-status", "guest-fsfreeze-thaw", NULL });
    CU_ASSERT_PTR_NULL(vmrpFakePeerCommandArgs(cmds, 2));
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 6), "{\"mountpoints\":[\"/data\"]}");
}

static void
testAgentFsfreezeErrors(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpFakePeer *peer;
    bool frozen = true;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-fsfreeze-freeze",
                       "{\"error\": {\"class\": \"CommandNotFound\", "
                       "\"desc\": \"Command guest-fsfreeze-freeze has been disabled\"}}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-thaw",
                       "{\"error\": {\"class\": \"GenericError\", \"desc\": \"failed to "
                       "thaw /: Invalid argument\"}}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-status", "{\"return\": \"melting\"}");
    vmrpFakePeerExpect(peer, "guest-fsfreeze-freeze", "{\"return\": \"2\"}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        CU_ASSERT_EQUAL(vmrpAgentFsfreezeFreeze(agent, TIMEOUT_S, &err), -1);
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_NOT_FOUND,
                          "guest-fsfreeze-freeze: Command guest-fsfreeze-freeze has been "
                          "disabled");
        g_clear_error(&err);
        CU_ASSERT_EQUAL(vmrpAgentFsfreezeThaw(agent, TIMEOUT_S, &err), -1);
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_COMMAND,
                          "guest-fsfreeze-thaw: failed to thaw /: Invalid argument");
        g_clear_error(&err);
        CU_ASSERT_FALSE(vmrpAgentFsfreezeStatus(agent, TIMEOUT_S, &frozen, &err));
        CU_ASSERT_TRUE(frozen);
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                          "guest-fsfreeze-status: malformed reply: unknown status \"melting\"");
        g_clear_error(&err);
        CU_ASSERT_EQUAL(vmrpAgentFsfreezeFreeze(agent, TIMEOUT_S, &err), -1);
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                          "guest-fsfreeze-freeze: malformed reply: return is not a count: "
                          "\"2\"");
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){
        "guest-fsfreeze-freeze", "guest-fsfreeze-thaw", "guest-fsfreeze-status",
        "guest-fsfreeze-freeze", NULL });
}

static void
testAgentExec(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GBytes) errout = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-exec", "{\"return\": {\"pid\": 1234}}");
    vmrpFakePeerExpect(peer, "guest-exec-status", "{\"return\": {\"exited\": false}}");
    vmrpFakePeerExpect(peer, "guest-exec-status", "{\"return\": {\"exited\": false}}");
    /* "hello\nworld\n" and "" */
    vmrpFakePeerExpect(peer, "guest-exec-status",
                       "{\"return\": {\"exitcode\": 0, \"out-data\": \"aGVsbG8Kd29ybGQK\", "
                       "\"exited\": true}}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        const char *const argv[] = { "sh", "-c", "cat; echo world", NULL };
        int code = -1;

        CU_ASSERT_TRUE(vmrpAgentExec(agent, argv, "hello\n", TIMEOUT_S, &code, &out, &errout,
                                     &err));
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_EQUAL(code, 0);
        if (out) {
            CU_ASSERT_EQUAL(g_bytes_get_size(out), 12);
            CU_ASSERT_NSTRING_EQUAL(g_bytes_get_data(out, NULL), "hello\nworld\n", 12);
        }
        CU_ASSERT_TRUE(errout && g_bytes_get_size(errout) == 0);
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){
        "guest-exec", "guest-exec-status", "guest-exec-status", "guest-exec-status", NULL });
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 1),
                     "{\"path\":\"sh\",\"arg\":[\"-c\",\"cat; echo world\"],"
                     "\"input-data\":\"aGVsbG8K\",\"capture-output\":true}");
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 4), "{\"pid\":1234}");
}

static void
testAgentExecExitCode(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    g_autoptr(GBytes) errout = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-exec", "{\"return\": {\"pid\": 88}}");
    /* "ls: /nope: No such file or directory\n" */
    vmrpFakePeerExpect(peer, "guest-exec-status",
                       "{\"return\": {\"exitcode\": 1, \"err-data\": "
                       "\"bHM6IC9ub3BlOiBObyBzdWNoIGZpbGUgb3IgZGlyZWN0b3J5Cg==\", "
                       "\"exited\": true}}");
    vmrpFakePeerExpect(peer, "guest-exec", "{\"return\": {\"pid\": 89}}");
    vmrpFakePeerExpect(peer, "guest-exec-status",
                       "{\"return\": {\"exitcode\": 0, \"exited\": true}}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        const char *const argv[] = { "ls", "/nope", NULL };
        int code = -1;

        CU_ASSERT_TRUE(vmrpAgentExec(agent, argv, NULL, TIMEOUT_S, &code, NULL, &errout,
                                     &err));
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_EQUAL(code, 1);
        if (errout)
            CU_ASSERT_NSTRING_EQUAL(g_bytes_get_data(errout, NULL),
                                    "ls: /nope: No such file or directory\n", 37);

        /* binary input */
        {
            const char *const cat[] = { "cat", NULL };
            g_autoptr(GBytes) in = g_bytes_new_static("\0\xff", 2);

            CU_ASSERT_TRUE(vmrpAgentExecBytes(agent, cat, in, TIMEOUT_S, &code, NULL, NULL,
                                              &err));
            VMRP_ASSERT_NO_ERROR(err);
            CU_ASSERT_EQUAL(code, 0);
        }
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){
        "guest-exec", "guest-exec-status", "guest-exec", "guest-exec-status", NULL });
    /* no input: no input-data */
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 1),
                     "{\"path\":\"ls\",\"arg\":[\"/nope\"],\"capture-output\":true}");
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 3),
                     "{\"path\":\"cat\",\"arg\":[],\"input-data\":\"AP8=\","
                     "\"capture-output\":true}");
}

static void
testAgentExecFailures(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-exec",
                       "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Guest agent "
                       "command failed, error was 'Failed to execute child process \xe2\x80"
                       "\x9cnope\xe2\x80\x9d (No such file or directory)'\"}}");
    vmrpFakePeerExpect(peer, "guest-exec", "{\"return\": {\"pid\": 5}}");
    vmrpFakePeerExpect(peer, "guest-exec-status",
                       "{\"return\": {\"exited\": true, \"signal\": 9}}");
    vmrpFakePeerExpect(peer, "guest-exec", "{\"return\": {\"pid\": 6}}");
    vmrpFakePeerExpect(peer, "guest-exec-status",
                       "{\"return\": {\"exitcode\": 0, \"exited\": true, "
                       "\"out-truncated\": true}}");
    vmrpFakePeerExpect(peer, "guest-exec", "{\"return\": {\"no-pid\": 5}}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        const char *const nope[] = { "nope", NULL };
        const char *const sleep[] = { "sleep", "100", NULL };
        const char *const yes[] = { "yes", NULL };
        const char *const empty[] = { NULL };
        int code = -7;

        CU_ASSERT_FALSE(vmrpAgentExec(agent, nope, NULL, TIMEOUT_S, &code, NULL, NULL, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_COMMAND,
                          "guest-exec nope: Guest agent command failed, error was 'Failed to "
                          "execute child process \xe2\x80\x9cnope\xe2\x80\x9d (No such file "
                          "or directory)'");
        g_clear_error(&err);

        CU_ASSERT_FALSE(vmrpAgentExec(agent, sleep, NULL, TIMEOUT_S, &code, NULL, NULL, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_FAILED, "guest-exec sleep: killed by signal 9");
        g_clear_error(&err);

        CU_ASSERT_FALSE(vmrpAgentExec(agent, yes, NULL, TIMEOUT_S, &code, NULL, NULL, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_FAILED,
                          "guest-exec yes: output truncated by the guest agent");
        g_clear_error(&err);

        CU_ASSERT_FALSE(vmrpAgentExec(agent, yes, NULL, TIMEOUT_S, &code, NULL, NULL, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                          "guest-exec yes: malformed reply: member 'pid' is missing");
        g_clear_error(&err);

        CU_ASSERT_FALSE(vmrpAgentExec(agent, empty, NULL, TIMEOUT_S, &code, NULL, NULL, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_INVALID, "guest-exec: no program to run");
        CU_ASSERT_EQUAL(code, -7);
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){
        "guest-exec", "guest-exec", "guest-exec-status", "guest-exec", "guest-exec-status",
        "guest-exec", NULL });
}

static void
testAgentExecTimeout(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-exec", "{\"return\": {\"pid\": 4242}}");
    vmrpFakePeerAnswerAll(peer, "guest-exec-status", "{\"return\": {\"exited\": false}}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        const char *const argv[] = { "sleep", "1000", NULL };
        gint64 start = g_get_monotonic_time();
        gint64 took;
        int code = -7;

        CU_ASSERT_FALSE(vmrpAgentExec(agent, argv, NULL, 1, &code, NULL, NULL, &err));
        took = g_get_monotonic_time() - start;
        CU_ASSERT_TRUE(took >= G_USEC_PER_SEC);
        CU_ASSERT_TRUE(took < 3 * G_USEC_PER_SEC);
        CU_ASSERT_EQUAL(code, -7);
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_TIMEOUT, "guest-exec sleep: timed out after 1 s");
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = VMRP_PEER_FINISH(peer);
    /* sync, exec, and several polls (growing intervals: not hundreds) */
    CU_ASSERT_TRUE(cmds->len >= 5);
    CU_ASSERT_TRUE(cmds->len < 40);
}

static void
testAgentExecStatusTimeout(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    vmrpFakePeer *peer;
    int fd;

    /* the agent stops answering while polling */
    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-exec", "{\"return\": {\"pid\": 4242}}");
    vmrpFakePeerExpect(peer, "guest-exec-status", NULL);
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        const char *const argv[] = { "sleep", "1000", NULL };
        int code = -7;

        CU_ASSERT_FALSE(vmrpAgentExec(agent, argv, NULL, 1, &code, NULL, NULL, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_TIMEOUT, "guest-exec sleep: timed out after 1 s");
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    g_ptr_array_unref(VMRP_PEER_FINISH(peer));
}

static void
testAgentFileRead(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    g_autoptr(GBytes) data = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-file-open", "{\"return\": 1000}");
    /* "hello", " world", "\n\0\xff" */
    vmrpFakePeerExpect(peer, "guest-file-read",
                       "{\"return\": {\"count\": 5, \"buf-b64\": \"aGVsbG8=\", \"eof\": false}}");
    vmrpFakePeerExpect(peer, "guest-file-read",
                       "{\"return\": {\"count\": 6, \"buf-b64\": \"IHdvcmxk\", \"eof\": false}}");
    vmrpFakePeerExpect(peer, "guest-file-read",
                       "{\"return\": {\"count\": 3, \"buf-b64\": \"CgD/\", \"eof\": true}}");
    vmrpFakePeerExpect(peer, "guest-file-close", RETURN_EMPTY);
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        data = vmrpAgentFileRead(agent, "/etc/hostname", TIMEOUT_S, &err);
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_TRUE(data && g_bytes_get_size(data) == 14);
        if (data && g_bytes_get_size(data) == 14)
            CU_ASSERT_EQUAL(memcmp(g_bytes_get_data(data, NULL), "hello world\n\0\xff", 14), 0);
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){
        "guest-file-open", "guest-file-read", "guest-file-read", "guest-file-read",
        "guest-file-close", NULL });
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 1),
                     "{\"path\":\"/etc/hostname\",\"mode\":\"r\"}");
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 2), "{\"handle\":1000,\"count\":65536}");
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 5), "{\"handle\":1000}");
}

static void
testAgentFileReadEmpty(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    g_autoptr(GBytes) data = NULL;
    vmrpFakePeer *peer;
    int fd;

    /* a file whose size is a multiple of the chunk ends with an empty read */
    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-file-open", "{\"return\": 1001}");
    vmrpFakePeerExpect(peer, "guest-file-read",
                       "{\"return\": {\"count\": 0, \"buf-b64\": \"\", \"eof\": false}}");
    vmrpFakePeerExpect(peer, "guest-file-close", RETURN_EMPTY);
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        data = vmrpAgentFileRead(agent, "/proc/empty", TIMEOUT_S, &err);
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_TRUE(data && g_bytes_get_size(data) == 0);
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){
        "guest-file-open", "guest-file-read", "guest-file-close", NULL });
}

static void
testAgentFileReadErrors(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-file-open",
                       "{\"error\": {\"class\": \"GenericError\", \"desc\": \"failed to open "
                       "file '/nope' (mode: 'r'): No such file or directory\"}}");
    /* a read error: the file is closed all the same */
    vmrpFakePeerExpect(peer, "guest-file-open", "{\"return\": 1002}");
    vmrpFakePeerExpect(peer, "guest-file-read",
                       "{\"return\": {\"count\": 2, \"buf-b64\": \"aGk=\", \"eof\": false}}");
    vmrpFakePeerExpect(peer, "guest-file-read",
                       "{\"error\": {\"class\": \"GenericError\", \"desc\": \"failed to read "
                       "file: Is a directory\"}}");
    vmrpFakePeerExpect(peer, "guest-file-close", RETURN_EMPTY);
    /* a count that does not match the data */
    vmrpFakePeerExpect(peer, "guest-file-open", "{\"return\": 1003}");
    vmrpFakePeerExpect(peer, "guest-file-read",
                       "{\"return\": {\"count\": 9, \"buf-b64\": \"aGk=\", \"eof\": true}}");
    vmrpFakePeerExpect(peer, "guest-file-close", RETURN_EMPTY);
    /* reading works, closing fails */
    vmrpFakePeerExpect(peer, "guest-file-open", "{\"return\": 1004}");
    vmrpFakePeerExpect(peer, "guest-file-read",
                       "{\"return\": {\"count\": 2, \"buf-b64\": \"aGk=\", \"eof\": true}}");
    vmrpFakePeerExpect(peer, "guest-file-close",
                       "{\"error\": {\"class\": \"GenericError\", \"desc\": \"handle '1004' "
                       "has not been found\"}}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        CU_ASSERT_PTR_NULL(vmrpAgentFileRead(agent, "/nope", TIMEOUT_S, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_COMMAND,
                          "guest-file-open /nope: failed to open file '/nope' (mode: 'r'): "
                          "No such file or directory");
        g_clear_error(&err);
        CU_ASSERT_PTR_NULL(vmrpAgentFileRead(agent, "/etc", TIMEOUT_S, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_COMMAND,
                          "guest-file-read /etc: failed to read file: Is a directory");
        g_clear_error(&err);
        CU_ASSERT_PTR_NULL(vmrpAgentFileRead(agent, "/x", TIMEOUT_S, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                          "guest-file-read /x: malformed reply: count 9 but 2 bytes of data");
        g_clear_error(&err);
        CU_ASSERT_PTR_NULL(vmrpAgentFileRead(agent, "/y", TIMEOUT_S, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_COMMAND,
                          "guest-file-close /y: handle '1004' has not been found");
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){
        "guest-file-open",
        "guest-file-open", "guest-file-read", "guest-file-read", "guest-file-close",
        "guest-file-open", "guest-file-read", "guest-file-close",
        "guest-file-open", "guest-file-read", "guest-file-close", NULL });
}

static void
testAgentGetFsinfo(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    g_autoptr(GPtrArray) list = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-get-fsinfo",
                       "{\"return\": [{\"name\": \"vda\", \"total-bytes\": 62768128, "
                       "\"mountpoint\": \"/\", \"disk\": [{\"serial\": \"vmrp-root\", "
                       "\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, \"pci-controller\": "
                       "{\"bus\": 0, \"slot\": 4, \"domain\": 0, \"function\": 0}, "
                       "\"dev\": \"/dev/vda\", \"target\": 0}], \"used-bytes\": 1048576, "
                       "\"type\": \"ext4\"}, {\"name\": \"vdb\", \"mountpoint\": \"/data\", "
                       "\"disk\": [{\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, "
                       "\"serial\": \"data-1\", \"pci-controller\": {\"bus\": 0, \"slot\": 5, "
                       "\"domain\": 0, \"function\": 0}, \"target\": 0}], \"type\": \"ext4\"}, "
                       "{\"name\": \"tmpfs\", \"mountpoint\": \"/tmp\", \"disk\": [], "
                       "\"type\": \"tmpfs\"}]}");
    vmrpFakePeerExpect(peer, "guest-get-fsinfo", "{\"return\": [{\"name\": \"vda\"}]}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        list = vmrpAgentGetFsinfo(agent, TIMEOUT_S, &err);
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_TRUE(list && list->len == 3);
        if (list && list->len == 3) {
            vmrpAgentFsinfo *root = g_ptr_array_index(list, 0);
            vmrpAgentFsinfo *data = g_ptr_array_index(list, 1);
            vmrpAgentFsinfo *tmp = g_ptr_array_index(list, 2);

            VMRP_ASSERT_STR(root->name, "vda");
            VMRP_ASSERT_STR(root->mountpoint, "/");
            VMRP_ASSERT_STR(root->type, "ext4");
            CU_ASSERT_EQUAL(g_strv_length(root->disks), 1);
            VMRP_ASSERT_STR(root->disks[0], "/dev/vda");
            VMRP_ASSERT_STR(root->serials[0], "vmrp-root");
            CU_ASSERT_EQUAL(root->used_bytes, 1048576);
            CU_ASSERT_EQUAL(root->total_bytes, 62768128);
            VMRP_ASSERT_STR(data->disks[0], "data-1");
            CU_ASSERT_EQUAL(data->used_bytes, -1);
            CU_ASSERT_EQUAL(g_strv_length(tmp->disks), 0);
            CU_ASSERT_EQUAL(g_strv_length(tmp->serials), 0);
        }
        CU_ASSERT_PTR_NULL(vmrpAgentGetFsinfo(agent, TIMEOUT_S, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                          "guest-get-fsinfo: malformed reply: member 'mountpoint' is missing");
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){ "guest-get-fsinfo", "guest-get-fsinfo", NULL });
}

static void
testAgentCommand(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = newAgentPeer(&fd);
    vmrpFakePeerExpect(peer, "guest-get-host-name",
                       "{\"return\": {\"host-name\": \"vmrp-guest\"}}");
    vmrpFakePeerStart(peer);

    if ((agent = newAgent(fd))) {
        g_autoptr(json_object) cmd = vmrpQmpCommandNew("guest-get-host-name", NULL, NULL);
        g_autoptr(json_object) ret = vmrpAgentCommand(agent, cmd, TIMEOUT_S, &err);

        VMRP_ASSERT_NO_ERROR(err);
        VMRP_ASSERT_STR(vmrpQmpObjectGetStringOpt(ret, "host-name"), "vmrp-guest");
    }
    g_clear_pointer(&agent, vmrpAgentFree);
    cmds = finish(peer, (const char *const[]){ "guest-get-host-name", NULL });
}

int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testAgentPing),
        VMRP_TEST(testAgentFsfreeze),
        VMRP_TEST(testAgentFsfreezeErrors),
        VMRP_TEST(testAgentExec),
        VMRP_TEST(testAgentExecExitCode),
        VMRP_TEST(testAgentExecFailures),
        VMRP_TEST(testAgentExecTimeout),
        VMRP_TEST(testAgentExecStatusTimeout),
        VMRP_TEST(testAgentFileRead),
        VMRP_TEST(testAgentFileReadEmpty),
        VMRP_TEST(testAgentFileReadErrors),
        VMRP_TEST(testAgentGetFsinfo),
        VMRP_TEST(testAgentCommand),
        {NULL, NULL},
    };

    return vmrpTestMain("agent", cases, NULL, NULL);
}
