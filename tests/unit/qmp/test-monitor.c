/* test-monitor.c: unit tests of the QEMU monitor over the socket transport
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-qmp-test.h"
#include "vmrp-monitor.h"

#define TIMEOUT_MS 5000
#define GREETING \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, " \
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u5\"}, \"capabilities\": [\"oob\"]}}"

/* query-named-block-nodes flat=true of a QEMU 7.2 guest with one libvirt checkpoint (cut
 * short), plus a second, inconsistent bitmap */
#define NAMED_NODES \
    "{\"return\": [{\"iops_rd\": 0, \"detect_zeroes\": \"off\", \"image\": " \
    "{\"virtual-size\": 67108864, \"filename\": \"/var/lib/vmrp-test/a/vda.qcow2\", " \
    "\"cluster-size\": 65536, \"format\": \"qcow2\", \"actual-size\": 815104, " \
    "\"dirty-flag\": false}, \"ro\": false, \"node-name\": \"libvirt-1-format\", " \
    "\"backing_file_depth\": 0, \"drv\": \"qcow2\", \"dirty-bitmaps\": [{\"name\": \"cp1\", " \
    "\"recording\": true, \"persistent\": true, \"busy\": false, \"granularity\": 65536, " \
    "\"count\": 131072}, {\"name\": \"cp0\", \"recording\": false, \"persistent\": true, " \
    "\"busy\": false, \"inconsistent\": true, \"granularity\": 65536, \"count\": 0}], " \
    "\"encrypted\": false, \"file\": \"/var/lib/vmrp-test/a/vda.qcow2\"}, " \
    "{\"iops_rd\": 0, \"detect_zeroes\": \"off\", \"image\": {\"virtual-size\": 1376256, " \
    "\"filename\": \"/var/lib/vmrp-test/a/vda.qcow2\", \"format\": \"file\", " \
    "\"actual-size\": 815104, \"dirty-flag\": false}, \"ro\": false, " \
    "\"node-name\": \"libvirt-1-storage\", \"backing_file_depth\": 0, \"drv\": \"file\", " \
    "\"encrypted\": false, \"file\": \"/var/lib/vmrp-test/a/vda.qcow2\"}]}"

static vmrpMonitor *
newMonitor(int fd)
{
    g_autoptr(GError) err = NULL;
    vmrpQmpSocket *sock = vmrpQmpSocketOpenFd(fd, VMRP_QMP_SOCKET_MONITOR, TIMEOUT_MS, &err);

    VMRP_ASSERT_NO_ERROR(err);
    return sock ? vmrpMonitorNewSocket(sock) : NULL;
}

static void
testMonitorQueries(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(vmrpMonitor) mon = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    g_autoptr(GPtrArray) bitmaps = NULL;
    g_autofree char *status = NULL;
    vmrpFakePeer *peer;
    bool running = true;
    int fd;

    peer = vmrpFakePeerNew(&fd);
    vmrpFakePeerSend(peer, GREETING "\n", -1);
    vmrpFakePeerExpect(peer, "qmp_capabilities", "{\"return\": {}}");
    vmrpFakePeerExpect(peer, "query-status",
                       "{\"return\": {\"status\": \"paused\", \"singlestep\": false, "
                       "\"running\": false}}");
    vmrpFakePeerExpect(peer, "query-named-block-nodes", NAMED_NODES);
    vmrpFakePeerExpect(peer, "query-status", "{\"return\": {\"status\": \"paused\"}}");
    vmrpFakePeerExpect(peer, "block-dirty-bitmap-remove",
                       "{\"error\": {\"class\": \"GenericError\", "
                       "\"desc\": \"Dirty bitmap 'cp9' not found\"}}");
    vmrpFakePeerStart(peer);

    if ((mon = newMonitor(fd))) {
        g_autoptr(json_object) remove = vmrpQmpCommandNew("block-dirty-bitmap-remove", NULL,
                                                          "s:node", "libvirt-1-format",
                                                          "s:name", "cp9", NULL);

        CU_ASSERT_TRUE(vmrpMonitorQueryStatus(mon, &status, &running, &err));
        VMRP_ASSERT_NO_ERROR(err);
        VMRP_ASSERT_STR(status, "paused");
        CU_ASSERT_FALSE(running);

        bitmaps = vmrpMonitorQueryDirtyBitmaps(mon, &err);
        VMRP_ASSERT_NO_ERROR(err);
        CU_ASSERT_TRUE(bitmaps && bitmaps->len == 2);
        if (bitmaps && bitmaps->len == 2) {
            vmrpMonitorBitmap *b0 = g_ptr_array_index(bitmaps, 0);
            vmrpMonitorBitmap *b1 = g_ptr_array_index(bitmaps, 1);

            VMRP_ASSERT_STR(b0->node, "libvirt-1-format");
            VMRP_ASSERT_STR(b0->name, "cp1");
            CU_ASSERT_EQUAL(b0->count, 131072);
            CU_ASSERT_EQUAL(b0->granularity, 65536);
            CU_ASSERT_TRUE(b0->recording && b0->persistent && !b0->busy && !b0->inconsistent);
            VMRP_ASSERT_STR(b1->name, "cp0");
            CU_ASSERT_TRUE(b1->inconsistent && !b1->recording);
        }

        running = true;
        CU_ASSERT_FALSE(vmrpMonitorQueryStatus(mon, NULL, &running, &err));
        CU_ASSERT_TRUE(running);
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_MALFORMED,
                          "query-status: malformed reply: member 'running' is missing");
        g_clear_error(&err);

        CU_ASSERT_PTR_NULL(vmrpMonitorCommand(mon, remove, TIMEOUT_MS, &err));
        VMRP_ASSERT_ERROR(err, VMRP_QMP_ERROR_COMMAND,
                          "block-dirty-bitmap-remove: Dirty bitmap 'cp9' not found");
    }
    g_clear_pointer(&mon, vmrpMonitorFree);
    cmds = VMRP_PEER_FINISH(peer);
    CU_ASSERT_EQUAL(cmds->len, 5);
    VMRP_ASSERT_JSON(vmrpFakePeerCommandArgs(cmds, 2), "{\"flat\":true}");
}

int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testMonitorQueries),
        {NULL, NULL},
    };

    return vmrpTestMain("monitor", cases, NULL, NULL);
}
