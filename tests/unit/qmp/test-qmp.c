/* test-qmp.c: unit tests of the QMP command builder, reply parsing and socket transport
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <unistd.h>

#include "vmrp-qmp-test.h"
#include "vmrp-qmp-socket.h"

/* Replies recorded from QEMU 7.2 (Debian 12). */
#define GREETING \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, " \
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u5\"}, \"capabilities\": [\"oob\"]}}"
#define RETURN_EMPTY "{\"return\": {}}"
#define STATUS_RUNNING \
    "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}}"
#define EVENT_RESUME \
    "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 312075}, " \
    "\"event\": \"RESUME\"}"
#define EVENT_JOB \
    "{\"timestamp\": {\"seconds\": 1700000002, \"microseconds\": 17}, " \
    "\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", " \
    "\"id\": \"backup-vda-libvirt-4-format\"}}"
#define ERROR_NODE \
    "{\"error\": {\"class\": \"GenericError\", " \
    "\"desc\": \"Cannot find device='' nor node-name='libvirt-9-format'\"}}"
#define ERROR_NOT_FOUND \
    "{\"error\": {\"class\": \"CommandNotFound\", " \
    "\"desc\": \"The command query-nope has not been found\"}}"

#define TIMEOUT_MS 5000

/* ---- builder ---- */

static void
testCommandNewTypes(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = NULL;
    json_object *arr = json_object_new_array();
    json_object *obj = json_object_new_object();

    json_object_array_add(arr, json_object_new_int(1));
    json_object_object_add(obj, "k", json_object_new_string("v/w"));
    cmd = vmrpQmpCommandNew("x-test", &err,
                            "s:str", "a \"quoted\" string",
                            "S:skipped", NULL,
                            "S:given", "yes",
                            "i:int", -5,
                            "I:long", 9007199254740993LL,
                            "U:ulong", 18446744073709551615ULL,
                            "b:yes", true,
                            "b:no", 0,
                            "d:dbl", 1.5,
                            "a:arr", arr,
                            "o:obj", obj,
                            "A:noarr", NULL,
                            "O:noobj", NULL,
                            NULL);
    VMRP_ASSERT_NO_ERROR(err);
    VMRP_ASSERT_JSON(cmd,
                     "{\"execute\":\"x-test\",\"arguments\":{"
                     "\"str\":\"a \\\"quoted\\\" string\",\"given\":\"yes\",\"int\":-5,"
                     "\"long\":9007199254740993,\"ulong\":18446744073709551615,"
                     "\"yes\":true,\"no\":false,\"dbl\":1.5,\"arr\":[1],"
                     "\"obj\":{\"k\":\"v/w\"}}}");
    VMRP_ASSERT_STR(vmrpQmpCommandGetName(cmd), "x-test");
}

static void
testCommandNewNoArgs(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = vmrpQmpCommandNew("query-status", &err, NULL);
    g_autoptr(json_object) cmd2 = vmrpQmpCommandNew("query-status", &err,
                                                    "S:skipped", NULL, NULL);

    VMRP_ASSERT_NO_ERROR(err);
    VMRP_ASSERT_JSON(cmd, "{\"execute\":\"query-status\"}");
    VMRP_ASSERT_JSON(cmd2, "{\"execute\":\"query-status\"}");
    CU_ASSERT_PTR_NULL(vmrpQmpCommandGetName(NULL));
}

static void
testCommandNewErrors(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = NULL;

    cmd = vmrpQmpCommandNew("blockdev-add", &err, "s:driver", "qcow2", "x:bad", 1, NULL);
    CU_ASSERT_PTR_NULL(cmd);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_INVALID,
                      "blockdev-add: unknown argument type 'x' in 'x:bad'");
    g_clear_error(&err);

    /* the error is the first one; consumed values after it are still released
     * (valgrind checks) */
    cmd = vmrpQmpCommandNew("blockdev-add", &err,
                            "s:node-name", NULL,
                            "a:list", json_object_new_array(),
                            "o:opts", json_object_new_object(),
                            NULL);
    CU_ASSERT_PTR_NULL(cmd);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_INVALID,
                      "blockdev-add: argument 'node-name' must not be NULL");
    g_clear_error(&err);

    cmd = vmrpQmpCommandNew("blockdev-add", &err, "a:list", json_object_new_object(), NULL);
    CU_ASSERT_PTR_NULL(cmd);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_INVALID,
                      "blockdev-add: argument 'list' is not a JSON array");
    g_clear_error(&err);

    cmd = vmrpQmpCommandNew("blockdev-add", &err, "o:opts", NULL, NULL);
    CU_ASSERT_PTR_NULL(cmd);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_INVALID,
                      "blockdev-add: argument 'opts' must not be NULL");
    g_clear_error(&err);

    cmd = vmrpQmpCommandNew("blockdev-add", &err, "s", "x", NULL);
    CU_ASSERT_PTR_NULL(cmd);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_INVALID, "blockdev-add: invalid argument key 's'");
    g_clear_error(&err);

    cmd = vmrpQmpCommandNew(NULL, &err, NULL);
    CU_ASSERT_PTR_NULL(cmd);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_INVALID, "QMP command name is missing");
    g_clear_error(&err);

    /* no GError wanted: still a failure */
    CU_ASSERT_PTR_NULL(vmrpQmpCommandNew("x", NULL, "q:x", 1, NULL));
}

/* ---- replies ---- */

static json_object *
parse(const char *str)
{
    g_autoptr(GError) err = NULL;
    json_object *obj = vmrpQmpParse(str, &err);

    VMRP_ASSERT_NO_ERROR(err);
    return obj;
}

static void
testReplyReturn(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) reply = parse(STATUS_RUNNING);
    g_autoptr(json_object) empty = parse(RETURN_EMPTY);
    g_autoptr(json_object) list = parse("{\"return\": [{\"name\": \"vda\"}], "
                                        "\"id\": \"libvirt-42\"}");
    json_object *ret;
    bool running = false;

    ret = vmrpQmpReplyGetReturnObject(reply, "query-status", &err);
    VMRP_ASSERT_NO_ERROR(err);
    CU_ASSERT_TRUE(vmrpQmpObjectGetBool(ret, "running", &running, &err));
    CU_ASSERT_TRUE(running);
    VMRP_ASSERT_STR(vmrpQmpObjectGetString(ret, "status", &err), "running");
    VMRP_ASSERT_NO_ERROR(err);

    ret = vmrpQmpReplyGetReturnObject(empty, "qmp_capabilities", &err);
    VMRP_ASSERT_NO_ERROR(err);
    CU_ASSERT_EQUAL(json_object_object_length(ret), 0);

    ret = vmrpQmpReplyGetReturnArray(list, "query-block", &err);
    VMRP_ASSERT_NO_ERROR(err);
    CU_ASSERT_EQUAL(json_object_array_length(ret), 1);

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturnArray(reply, "query-status", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "query-status: malformed reply: return is not a JSON array: "
                      "{\"status\":\"running\",\"singlestep\":false,\"running\":true}");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturnObject(list, "query-block", &err));
    VMRP_ASSERT_ERROR_PREFIX(err, VMRP_QMP_ERROR_MALFORMED,
                             "query-block: malformed reply: return is not a JSON object");
}

static void
testReplyError(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) generic = parse(ERROR_NODE);
    g_autoptr(json_object) notfound = parse(ERROR_NOT_FOUND);
    g_autoptr(json_object) nodesc = parse("{\"error\": {\"class\": \"DeviceNotFound\"}}");
    g_autoptr(json_object) bare = parse("{\"error\": 42}");

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturn(generic, "block-dirty-bitmap-add", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_COMMAND,
                      "block-dirty-bitmap-add: "
                      "Cannot find device='' nor node-name='libvirt-9-format'");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturnObject(notfound, "query-nope", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_NOT_FOUND,
                      "query-nope: The command query-nope has not been found");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturn(nodesc, "device_del", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_COMMAND,
                      "device_del: failed with error class DeviceNotFound");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturn(bare, "stop", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "stop: malformed reply: error without description: 42");
}

static void
testReplyMalformed(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) neither = parse("{\"id\": \"libvirt-7\"}");
    g_autoptr(json_object) array = parse("[1, 2]");
    g_autoptr(json_object) nullret = parse("{\"return\": null}");

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturn(neither, "query-status", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "query-status: malformed reply: neither return nor error: "
                      "{\"id\":\"libvirt-7\"}");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturn(array, "query-status", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "query-status: malformed reply: not a JSON object: [1,2]");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturn(NULL, "query-status", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "query-status: malformed reply: not a JSON object: null");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturn(nullret, "query-status", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "query-status: malformed reply: return is null");
}

static void
testObjectGetters(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) obj = parse("{\"n\": -3, \"big\": 18446744073709551615, "
                                       "\"s\": \"text\", \"t\": true, \"f\": 1.5, "
                                       "\"o\": {}, \"a\": []}");
    long long i = 7;
    unsigned long long u = 7;
    bool b = false;

    CU_ASSERT_TRUE(vmrpQmpObjectGetInt(obj, "n", &i, &err));
    CU_ASSERT_EQUAL(i, -3);
    CU_ASSERT_TRUE(vmrpQmpObjectGetUint(obj, "big", &u, &err));
    CU_ASSERT_EQUAL(u, 18446744073709551615ULL);
    CU_ASSERT_TRUE(vmrpQmpObjectGetBool(obj, "t", &b, &err));
    CU_ASSERT_TRUE(b);
    VMRP_ASSERT_STR(vmrpQmpObjectGetString(obj, "s", &err), "text");
    CU_ASSERT_PTR_NOT_NULL(vmrpQmpObjectGetObject(obj, "o", &err));
    CU_ASSERT_PTR_NOT_NULL(vmrpQmpObjectGetArray(obj, "a", &err));
    VMRP_ASSERT_NO_ERROR(err);
    VMRP_ASSERT_STR(vmrpQmpObjectGetStringOpt(obj, "s"), "text");
    CU_ASSERT_PTR_NULL(vmrpQmpObjectGetStringOpt(obj, "n"));
    CU_ASSERT_PTR_NULL(vmrpQmpObjectGetStringOpt(obj, "missing"));
    CU_ASSERT_TRUE(vmrpQmpObjectGetBoolOpt(obj, "t", false));
    CU_ASSERT_TRUE(vmrpQmpObjectGetBoolOpt(obj, "missing", true));

    /* failures leave the outputs alone */
    i = 7;
    CU_ASSERT_FALSE(vmrpQmpObjectGetInt(obj, "missing", &i, &err));
    CU_ASSERT_EQUAL(i, 7);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "malformed reply: member 'missing' is missing");
    g_clear_error(&err);

    CU_ASSERT_FALSE(vmrpQmpObjectGetInt(obj, "s", &i, &err));
    CU_ASSERT_EQUAL(i, 7);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "malformed reply: member 's' is of type string, expected int");
    g_clear_error(&err);

    CU_ASSERT_FALSE(vmrpQmpObjectGetInt(obj, "f", &i, &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "malformed reply: member 'f' is of type double, expected int");
    g_clear_error(&err);

    CU_ASSERT_FALSE(vmrpQmpObjectGetInt(obj, "big", &i, &err));
    CU_ASSERT_EQUAL(i, 7);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "malformed reply: member 'big' is out of range");
    g_clear_error(&err);

    u = 7;
    CU_ASSERT_FALSE(vmrpQmpObjectGetUint(obj, "n", &u, &err));
    CU_ASSERT_EQUAL(u, 7);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "malformed reply: member 'n' is negative");
    g_clear_error(&err);

    b = false;
    CU_ASSERT_FALSE(vmrpQmpObjectGetBool(obj, "n", &b, &err));
    CU_ASSERT_FALSE(b);
    VMRP_ASSERT_ERROR_PREFIX(err, VMRP_QMP_ERROR_MALFORMED, "malformed reply: member 'n'");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpObjectGetString(obj, "t", &err));
    VMRP_ASSERT_ERROR_PREFIX(err, VMRP_QMP_ERROR_MALFORMED, "malformed reply: member 't'");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpObjectGetObject(obj, "a", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "malformed reply: member 'a' is of type array, expected object");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpObjectGetArray(NULL, "a", &err));
    VMRP_ASSERT_ERROR_PREFIX(err, VMRP_QMP_ERROR_MALFORMED, "malformed reply: looking up 'a'");
}

static void
testParse(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ok = vmrpQmpParse(" {\"return\": {}}\n", &err);

    VMRP_ASSERT_NO_ERROR(err);
    VMRP_ASSERT_JSON(ok, "{\"return\":{}}");

    CU_ASSERT_PTR_NULL(vmrpQmpParse("{\"return\": {}} x", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED, "malformed JSON: trailing data at offset 15");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpParse("{\"return\": {", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "malformed JSON: unexpected end of data at offset 12");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpParse("{\"return\" 1}", &err));
    VMRP_ASSERT_ERROR_PREFIX(err, VMRP_QMP_ERROR_MALFORMED, "malformed JSON: ");
    g_clear_error(&err);

    CU_ASSERT_PTR_NULL(vmrpQmpParse("null", &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED, "malformed JSON: null");
    g_clear_error(&err);

    /* a top-level literal ends at the end of the string */
    g_clear_pointer(&ok, json_object_put);
    ok = vmrpQmpParse("42", &err);
    VMRP_ASSERT_NO_ERROR(err);
    VMRP_ASSERT_JSON(ok, "42");
}

/* ---- socket transport, monitor mode ---- */

/* A peer that greets and accepts qmp_capabilities. */
static vmrpFakePeer *
newMonitorPeer(int *ret_fd)
{
    vmrpFakePeer *peer = vmrpFakePeerNew(ret_fd);

    vmrpFakePeerSend(peer, GREETING "\r\n", -1);
    vmrpFakePeerExpect(peer, "qmp_capabilities", RETURN_EMPTY);
    return peer;
}

static json_object *
queryStatus(void)
{
    return vmrpQmpCommandNew("query-status", NULL, NULL);
}

static void
testSocketNegotiate(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = queryStatus();
    g_autoptr(json_object) reply = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    peer = newMonitorPeer(&fd);
    vmrpFakePeerExpect(peer, "query-status", STATUS_RUNNING);
    vmrpFakePeerExpect(peer, "query-nope", ERROR_NOT_FOUND);
    vmrpFakePeerStart(peer);

    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        g_autoptr(json_object) nope = vmrpQmpCommandNew("query-nope", NULL, "b:x", 1, NULL);
        g_autoptr(json_object) nope_reply = NULL;

        CU_ASSERT_EQUAL(vmrpQmpSocketGetMode(sock), VMRP_QMP_SOCKET_MONITOR);
        reply = vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err);
        VMRP_ASSERT_NO_ERROR(err);
        VMRP_ASSERT_JSON(reply,
                         "{\"return\":{\"status\":\"running\",\"singlestep\":false,"
                         "\"running\":true}}");

        /* an error reply is a reply: the caller's vmrpQmpReplyGetReturn reports it */
        nope_reply = vmrpQmpSocketExec(sock, nope, TIMEOUT_MS, &err);
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_PTR_NULL(vmrpQmpReplyGetReturn(nope_reply, "query-nope", &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_NOT_FOUND,
                          "query-nope: The command query-nope has not been found");
    }
    vmrpQmpSocketFree(sock);

    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 3);
    VMRP_ASSERT_STR(vmrpFakePeerCommandName(cmds, 0), "qmp_capabilities");
    CU_ASSERT_PTR_NULL(vmrpFakePeerCommandArgs(cmds, 0));
    VMRP_ASSERT_STR(vmrpFakePeerCommandName(cmds, 1), "query-status");
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 2), "{\"x\":true}");
}

static void
testSocketOpenPath(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("vmrp-qmp-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "qmp.sock", NULL);
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;

    CU_ASSERT_PTR_NULL(vmrpQmpSocketOpen(path, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err));
    VMRP_ASSERT_ERROR_PREFIX(err, VMRP_QMP_ERROR_UNAVAILABLE, path);
    g_clear_error(&err);

    peer = vmrpFakePeerNewListen(path);
    vmrpFakePeerSend(peer, GREETING "\n", -1);
    vmrpFakePeerExpect(peer, "qmp_capabilities", RETURN_EMPTY);
    vmrpFakePeerStart(peer);
    sock = vmrpQmpSocketOpen(path, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    CU_ASSERT_PTR_NOT_NULL(sock);
    vmrpQmpSocketFree(sock);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 1);

    unlink(path);
    rmdir(dir);
}

static void
testSocketBadGreeting(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    g_autoptr(GPtrArray) cmds2 = NULL;
    vmrpFakePeer *peer;
    int fd;

    peer = vmrpFakePeerNew(&fd);
    vmrpFakePeerSend(peer, RETURN_EMPTY "\n", -1);
    vmrpFakePeerStart(peer);
    CU_ASSERT_PTR_NULL(vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                      "QMP greeting: malformed greeting: {\"return\":{}}");
    g_clear_error(&err);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 0);

    /* qmp_capabilities refused */
    peer = vmrpFakePeerNew(&fd);
    vmrpFakePeerSend(peer, GREETING "\n", -1);
    vmrpFakePeerExpect(peer, "qmp_capabilities",
                       "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
                       "\"Capabilities negotiation is already complete, command ignored\"}}");
    vmrpFakePeerStart(peer);
    CU_ASSERT_PTR_NULL(vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_NOT_FOUND,
                      "qmp_capabilities: "
                      "Capabilities negotiation is already complete, command ignored");
    cmds2 = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds2->len, 1);
}

static void
testSocketEvents(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = queryStatus();
    g_autoptr(json_object) reply = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    peer = vmrpFakePeerNew(&fd);
    /* an event before the greeting's reply too */
    vmrpFakePeerSend(peer, GREETING "\n", -1);
    vmrpFakePeerExpect(peer, "qmp_capabilities", EVENT_RESUME "\n" RETURN_EMPTY);
    vmrpFakePeerSend(peer, EVENT_JOB "\n", -1);
    vmrpFakePeerExpect(peer, "query-status", EVENT_RESUME "\n" EVENT_JOB "\n" STATUS_RUNNING);
    vmrpFakePeerStart(peer);

    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        reply = vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err);
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_PTR_NOT_NULL(vmrpQmpReplyGetReturnObject(reply, "query-status", NULL));
    }
    vmrpQmpSocketFree(sock);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 2);
}

static void
testSocketSplitReply(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = queryStatus();
    g_autoptr(json_object) reply1 = NULL;
    g_autoptr(json_object) reply2 = NULL;
    g_autoptr(json_object) reply3 = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    peer = vmrpFakePeerNew(&fd);
    /* the greeting and an event in one write; the greeting split inside a string */
    vmrpFakePeerSend(peer, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
                     "\"major\": 7}, \"package\": \"Debian 1:7.2+df", -1);
    vmrpFakePeerSleep(peer, 30);
    vmrpFakePeerSend(peer, "sg-7+deb12u5\"}, \"capabilities\": [\"oob\"]}}\n" EVENT_RESUME
                     "\n", -1);
    vmrpFakePeerExpect(peer, "qmp_capabilities", RETURN_EMPTY);
    /* a reply in three writes, cut inside a key and between a key and its value */
    vmrpFakePeerExpect(peer, "query-status", NULL);
    vmrpFakePeerSend(peer, "{\"return\": {\"sta", -1);
    vmrpFakePeerSleep(peer, 30);
    vmrpFakePeerSend(peer, "tus\": \"running\", \"singlestep\":", -1);
    vmrpFakePeerSleep(peer, 30);
    vmrpFakePeerSend(peer, " false, \"running\": true}}\r\n", -1);
    /* a reply and the start of an event in one write, the rest of the event with the
     * next reply */
    vmrpFakePeerExpect(peer, "query-status", NULL);
    vmrpFakePeerSend(peer, STATUS_RUNNING "\n{\"timestamp\": {\"seconds\": 1", -1);
    vmrpFakePeerExpect(peer, "query-status", NULL);
    vmrpFakePeerSend(peer, "700000003, \"microseconds\": 5}, \"event\": \"STOP\"}\n"
                     "{\"return\": {\"status\": \"paused\", \"singlestep\": false, "
                     "\"running\": false}}\n", -1);
    vmrpFakePeerStart(peer);

    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        reply1 = vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err);
        VMRP_ASSERT_NO_ERROR(err);
        VMRP_ASSERT_JSON(reply1,
                         "{\"return\":{\"status\":\"running\",\"singlestep\":false,"
                         "\"running\":true}}");
        reply2 = vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err);
        VMRP_ASSERT_NO_ERROR(err);
        VMRP_ASSERT_JSON(reply2,
                         "{\"return\":{\"status\":\"running\",\"singlestep\":false,"
                         "\"running\":true}}");
        reply3 = vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err);
        VMRP_ASSERT_NO_ERROR(err);
        VMRP_ASSERT_JSON(reply3,
                         "{\"return\":{\"status\":\"paused\",\"singlestep\":false,"
                         "\"running\":false}}");
    }
    vmrpQmpSocketFree(sock);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 4);
}

static void
testSocketTimeout(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = queryStatus();
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    gint64 start;
    int fd;

    /* no greeting at all */
    peer = vmrpFakePeerNew(&fd);
    vmrpFakePeerStart(peer);
    start = g_get_monotonic_time();
    CU_ASSERT_PTR_NULL(vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, 150, &err));
    CU_ASSERT_TRUE(g_get_monotonic_time() - start >= 150 * 1000);
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_TIMEOUT, "QMP greeting: timed out after 150 ms");
    g_clear_error(&err);
    g_ptr_array_unref(VMRP_PEER_FINISH(peer));

    /* no reply */
    peer = newMonitorPeer(&fd);
    vmrpFakePeerExpect(peer, "query-status", NULL);
    vmrpFakePeerStart(peer);
    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        start = g_get_monotonic_time();
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, cmd, 200, &err));
        CU_ASSERT_TRUE(g_get_monotonic_time() - start >= 200 * 1000);
        CU_ASSERT_TRUE(g_get_monotonic_time() - start < 2 * G_USEC_PER_SEC);
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_TIMEOUT, "query-status: timed out after 200 ms");
        g_clear_error(&err);

        /* a late reply would be taken for the next command's: refuse */
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, cmd, 200, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_CLOSED,
                          "query-status: connection unusable after an earlier error "
                          "(query-status: timed out after 200 ms)");
    }
    vmrpQmpSocketFree(sock);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 2);
}

static void
testSocketHangup(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = queryStatus();
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    peer = newMonitorPeer(&fd);
    vmrpFakePeerExpect(peer, "query-status", NULL);
    vmrpFakePeerSend(peer, "{\"return\": {\"status\": \"runn", -1);
    vmrpFakePeerHangup(peer);
    vmrpFakePeerStart(peer);

    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_CLOSED, "query-status: connection closed by peer");
        g_clear_error(&err);
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err));
        VMRP_ASSERT_ERROR_PREFIX(err, VMRP_QMP_ERROR_CLOSED,
                                 "query-status: connection unusable after an earlier error");
    }
    vmrpQmpSocketFree(sock);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 2);
}

static void
testSocketHangupBeforeSend(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = queryStatus();
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    peer = newMonitorPeer(&fd);
    vmrpFakePeerHangup(peer);
    vmrpFakePeerStart(peer);

    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    g_ptr_array_unref(VMRP_PEER_FINISH(peer));  /* the peer is gone now */
    if (sock) {
        /* the send may still succeed into the socket buffer; either way: closed */
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_CLOSED, "query-status: connection closed by peer");
    }
    vmrpQmpSocketFree(sock);
}

static void
testSocketMalformed(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) cmd = queryStatus();
    g_autoptr(GPtrArray) cmds = NULL;
    g_autoptr(GPtrArray) cmds2 = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    peer = newMonitorPeer(&fd);
    vmrpFakePeerExpect(peer, "query-status", "{\"return\" {}}");
    vmrpFakePeerStart(peer);
    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err));
        VMRP_ASSERT_ERROR_PREFIX(err, VMRP_QMP_ERROR_MALFORMED,
                                 "query-status: malformed JSON from peer: ");
    }
    g_clear_error(&err);
    vmrpQmpSocketFree(sock);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 2);

    /* valid JSON that is not a message */
    peer = newMonitorPeer(&fd);
    vmrpFakePeerExpect(peer, "query-status", "[\"return\"]");
    vmrpFakePeerStart(peer);
    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, cmd, TIMEOUT_MS, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                          "query-status: malformed message from peer: not a JSON object: "
                          "[\"return\"]");
    }
    vmrpQmpSocketFree(sock);
    cmds2 = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds2->len, 2);
}

static void
testSocketExecInvalid(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) bogus = json_object_new_object();
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    peer = newMonitorPeer(&fd);
    vmrpFakePeerStart(peer);
    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, bogus, TIMEOUT_MS, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_INVALID, "QMP command without execute: {}");
    }
    vmrpQmpSocketFree(sock);
    g_ptr_array_unref(VMRP_PEER_FINISH(peer));
}

/* ---- socket transport, agent mode ---- */

static void
testSocketAgentSync(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ping = vmrpQmpCommandNew("guest-ping", NULL, NULL);
    g_autoptr(json_object) reply = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd, delimiters = 0;

    peer = vmrpFakePeerNew(&fd);
    /* stale output of an earlier client: a reply, half a reply and a stale sync reply
     * with a delimiter of its own */
    vmrpFakePeerExpectSync(peer, "{\"return\": {\"pid\": 77}}\n{\"return\": [{\"na"
                           "\xff{\"return\": 12}\n");
    vmrpFakePeerExpect(peer, "guest-ping", RETURN_EMPTY);
    vmrpFakePeerStart(peer);

    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_AGENT, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        CU_ASSERT_EQUAL(vmrpQmpSocketGetMode(sock), VMRP_QMP_SOCKET_AGENT);
        reply = vmrpQmpSocketExec(sock, ping, TIMEOUT_MS, &err);
        VMRP_ASSERT_NO_ERROR(err);
        VMRP_ASSERT_JSON(reply, "{\"return\":{}}");
    }
    vmrpQmpSocketFree(sock);
    cmds = vmrpQmpTestPeerFinish(__FILE__, __LINE__, peer, &delimiters);
    CU_ASSERT_EQUAL(cmds->len, 2);
    VMRP_ASSERT_STR(vmrpFakePeerCommandName(cmds, 0), "guest-sync-delimited");
    /* the client flushes the agent's parser with 0xFF before syncing */
    CU_ASSERT_EQUAL(delimiters, 1);
}

static void
testSocketAgentSyncSplit(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    /* junk arrives alone, then the delimiter and the reply in pieces */
    peer = vmrpFakePeerNew(&fd);
    vmrpFakePeerExpectSyncSplit(peer, "{\"return\": {\"exited\": fa");
    vmrpFakePeerStart(peer);
    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_AGENT, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    vmrpQmpSocketFree(sock);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 1);
}

static void
testSocketAgentResync(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ping = vmrpQmpCommandNew("guest-ping", NULL, NULL);
    g_autoptr(json_object) info = vmrpQmpCommandNew("guest-info", NULL, NULL);
    g_autoptr(json_object) reply = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpQmpSocket *sock;
    vmrpFakePeer *peer;
    int fd;

    peer = vmrpFakePeerNew(&fd);
    vmrpFakePeerExpectSync(peer, NULL);
    vmrpFakePeerExpect(peer, "guest-ping", NULL);   /* no answer in time */
    /* the late answer to guest-ping comes before the new sync's */
    vmrpFakePeerExpectSync(peer, RETURN_EMPTY "\n");
    vmrpFakePeerExpect(peer, "guest-info", "{\"return\": {\"version\": \"7.2.0\", "
                       "\"supported_commands\": []}}");
    vmrpFakePeerStart(peer);

    sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_AGENT, TIMEOUT_MS, &err);
    VMRP_ASSERT_NO_ERROR(err);
    if (sock) {
        CU_ASSERT_PTR_NULL(vmrpQmpSocketExec(sock, ping, 100, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_TIMEOUT, "guest-ping: timed out after 100 ms");
        g_clear_error(&err);
        reply = vmrpQmpSocketExec(sock, info, TIMEOUT_MS, &err);
        VMRP_ASSERT_NO_ERROR(err);
        VMRP_ASSERT_STR(vmrpQmpObjectGetString(vmrpQmpReplyGetReturnObject(reply, "guest-info",
                                                                           NULL),
                                               "version", NULL), "7.2.0");
    }
    vmrpQmpSocketFree(sock);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 4);
    VMRP_ASSERT_STR(vmrpFakePeerCommandName(cmds, 2), "guest-sync-delimited");
}

static void
testSocketAgentSyncTimeout(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    vmrpFakePeer *peer;
    int fd;

    /* an agent that is not running inside the guest: the chardev accepts, nobody answers;
     * output without a delimiter is ignored */
    peer = vmrpFakePeerNew(&fd);
    vmrpFakePeerExpect(peer, "guest-sync-delimited", RETURN_EMPTY);
    vmrpFakePeerStart(peer);
    CU_ASSERT_PTR_NULL(vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_AGENT, 150, &err));
    VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_TIMEOUT, "guest-sync-delimited: timed out after 150 ms");
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 1);
}

int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testCommandNewTypes),
        VMRP_TEST(testCommandNewNoArgs),
        VMRP_TEST(testCommandNewErrors),
        VMRP_TEST(testReplyReturn),
        VMRP_TEST(testReplyError),
        VMRP_TEST(testReplyMalformed),
        VMRP_TEST(testObjectGetters),
        VMRP_TEST(testParse),
        VMRP_TEST(testSocketNegotiate),
        VMRP_TEST(testSocketOpenPath),
        VMRP_TEST(testSocketBadGreeting),
        VMRP_TEST(testSocketEvents),
        VMRP_TEST(testSocketSplitReply),
        VMRP_TEST(testSocketTimeout),
        VMRP_TEST(testSocketHangup),
        VMRP_TEST(testSocketHangupBeforeSend),
        VMRP_TEST(testSocketMalformed),
        VMRP_TEST(testSocketExecInvalid),
        VMRP_TEST(testSocketAgentSync),
        VMRP_TEST(testSocketAgentSyncSplit),
        VMRP_TEST(testSocketAgentResync),
        VMRP_TEST(testSocketAgentSyncTimeout),
        {NULL, NULL},
    };

    return vmrpTestMain("qmp", cases, NULL, NULL);
}
