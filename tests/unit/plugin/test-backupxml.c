/*
 * test-backupxml.c: the backup job and checkpoint XML stay well-formed
 * whatever the names, and vmrp's own jobs are told apart by parsing
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "vmrp-test.h"
#include "vmrp-backupxml.h"

#define HOSTILE "a'b\"c<d>&e]]>&amp;"

/* Parses @xml strictly; NULL when it is not well-formed. */
static xmlDocPtr
parseStrict(const char *xml)
{
    return xmlReadMemory(xml, strlen(xml), "t.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static xmlNodePtr
child(xmlNodePtr parent, const char *name)
{
    xmlNodePtr cur;

    for (cur = parent->children; cur; cur = cur->next) {
        if (cur->type == XML_ELEMENT_NODE && xmlStrEqual(cur->name, BAD_CAST name))
            return cur;
    }
    return NULL;
}

static bool
propIs(xmlNodePtr node, const char *name, const char *value)
{
    xmlChar *v = node ? xmlGetProp(node, BAD_CAST name) : NULL;
    bool ret = v && g_strcmp0((const char *)v, value) == 0;

    xmlFree(v);
    return ret;
}

static void
testCheckpointHostileName(void)
{
    vmrpCheckpointXmlDisk disks[] = { { "vda", true }, { "vd'<b", false } };
    g_autofree char *xml = vmrpBackupXmlFormatCheckpoint(HOSTILE, "point " HOSTILE, disks, 2,
                                                         NULL);
    xmlDocPtr doc;
    xmlNodePtr root, list, disk;
    xmlChar *name;

    CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc = parseStrict(xml));
    root = xmlDocGetRootElement(doc);
    CU_ASSERT_TRUE(xmlStrEqual(root->name, BAD_CAST "domaincheckpoint"));
    name = xmlNodeGetContent(child(root, "name"));
    CU_ASSERT_STRING_EQUAL((const char *)name, HOSTILE);
    xmlFree(name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(list = child(root, "disks"));
    disk = child(list, "disk");
    CU_ASSERT_TRUE(propIs(disk, "name", "vda"));
    CU_ASSERT_TRUE(propIs(disk, "checkpoint", "bitmap"));
    disk = xmlNextElementSibling(disk);
    CU_ASSERT_TRUE(propIs(disk, "name", "vd'<b"));
    CU_ASSERT_TRUE(propIs(disk, "checkpoint", "no"));
    CU_ASSERT_PTR_NULL(xmlNextElementSibling(disk));
    xmlFreeDoc(doc);
}

static void
testJobHostileParent(void)
{
    vmrpBackupXmlDisk disks[] = {
        { "vda", false, "/state/p'1/vda.scratch", "vmrp-vda", "vmrp-changes-vda", HOSTILE },
        { "vdb", true, NULL, NULL, NULL, NULL },
        { "vdc", false, "/state/p'1/vdc.scratch", "vmrp-vdc", NULL, NULL },
    };
    g_autofree char *xml = vmrpBackupXmlFormatJob("/state/p'1/<nbd>.sock", disks, 3, NULL);
    xmlDocPtr doc;
    xmlNodePtr root, disk;

    CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc = parseStrict(xml));
    root = xmlDocGetRootElement(doc);
    CU_ASSERT_TRUE(propIs(root, "mode", "pull"));
    CU_ASSERT_TRUE(propIs(child(root, "server"), "socket", "/state/p'1/<nbd>.sock"));
    CU_ASSERT_TRUE(propIs(child(root, "server"), "transport", "unix"));
    disk = child(child(root, "disks"), "disk");
    CU_ASSERT_TRUE(propIs(disk, "name", "vda"));
    CU_ASSERT_TRUE(propIs(disk, "backup", "yes"));
    CU_ASSERT_TRUE(propIs(disk, "backupmode", "incremental"));
    CU_ASSERT_TRUE(propIs(disk, "incremental", HOSTILE));
    CU_ASSERT_TRUE(propIs(disk, "exportname", "vmrp-vda"));
    CU_ASSERT_TRUE(propIs(disk, "exportbitmap", "vmrp-changes-vda"));
    CU_ASSERT_TRUE(propIs(child(disk, "scratch"), "file", "/state/p'1/vda.scratch"));
    disk = xmlNextElementSibling(disk);
    CU_ASSERT_TRUE(propIs(disk, "name", "vdb"));
    CU_ASSERT_TRUE(propIs(disk, "backup", "no"));
    CU_ASSERT_PTR_NULL(xmlHasProp(disk, BAD_CAST "exportname"));
    disk = xmlNextElementSibling(disk);
    CU_ASSERT_TRUE(propIs(disk, "backupmode", "full"));
    CU_ASSERT_PTR_NULL(xmlHasProp(disk, BAD_CAST "exportbitmap"));
    CU_ASSERT_PTR_NULL(xmlHasProp(disk, BAD_CAST "incremental"));
    xmlFreeDoc(doc);
}

static void
testExportNames(void)
{
    g_autofree char *name = vmrpBackupXmlExportName("vda");
    g_autofree char *bitmap = vmrpBackupXmlExportBitmap("vda");

    /* never libvirt's defaults (the target, backup-TARGET) */
    CU_ASSERT_STRING_EQUAL(name, "vmrp-vda");
    CU_ASSERT_STRING_EQUAL(bitmap, "vmrp-changes-vda");
}

static void
testIsOurs(void)
{
    vmrpBackupXmlDisk disks[] = { { "vda", false, "/var/lib/vmrp/p1/vda.scratch", "vmrp-vda",
                                    NULL, NULL } };
    g_autofree char *ours = vmrpBackupXmlFormatJob("/var/lib/vmrp/p1/nbd.sock", disks, 1, NULL);

    CU_ASSERT_TRUE(vmrpBackupXmlIsOurs(ours, "/var/lib/vmrp"));
    CU_ASSERT_TRUE(vmrpBackupXmlIsOurs(ours, "/var/lib/vmrp/"));
    /* a sibling folder whose name starts alike is not ours */
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs(ours, "/var/lib/vm"));
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs(ours, "/var/lib/vmrp/p"));
    /* the state folder named elsewhere than the socket: a scratch file or
     * a comment mentioning it made strstr say yes */
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs(
        "<domainbackup mode='pull'><!-- /var/lib/vmrp/x -->"
        "<server transport='unix' socket='/run/other/nbd.sock'/>"
        "<disks><disk name='vda' backup='yes' type='file'>"
        "<scratch file='/var/lib/vmrp/x/vda.scratch'/></disk></disks></domainbackup>",
        "/var/lib/vmrp"));
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs(
        "<domainbackup><disks><disk name='vda' backup='yes' type='file'>"
        "<target file='/var/lib/vmrp/x/vda.qcow2'/></disk></disks></domainbackup>",
        "/var/lib/vmrp"));
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs(
        "<domainbackup mode='pull'><server transport='unix' "
        "socket='/var/lib/vmrp/../other/nbd.sock'/></domainbackup>", "/var/lib/vmrp"));
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs("<domainbackup mode='pull'", "/var/lib/vmrp"));
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs("", "/var/lib/vmrp"));
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs(NULL, "/var/lib/vmrp"));
}

/* A domain on another host: the export on TCP with TLS; the job recognised
 * by the scratch file vmrp names in libvirt's folder there. */
static void
testRemoteJob(void)
{
    vmrpBackupXmlDisk disks[] = { { "vda", false,
                                    "/var/lib/libvirt/qemu/vmrp-20261204-000000-abcdef-vda.scratch",
                                    "vmrp-vda", NULL, NULL } };
    g_autofree char *xml = vmrpBackupXmlFormatJobTCP("host.example", "10809", true, disks, 1,
                                                     NULL);
    g_autofree char *plain = vmrpBackupXmlFormatJobTCP("::1", "10810", false, disks, 1, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
    CU_ASSERT_PTR_NOT_NULL(strstr(xml, "<server transport=\"tcp\" name=\"host.example\" "
                                       "port=\"10809\" tls=\"yes\"/>"));
    CU_ASSERT_PTR_NOT_NULL(plain && strstr(plain, "tls=\"no\""));
    CU_ASSERT_TRUE(vmrpBackupXmlIsOurs(xml, "/var/lib/vmrp"));
    /* someone else's TCP job, and ours by name only in a folder below */
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs(
        "<domainbackup mode='pull'><server transport='tcp' name='h' port='1'/>"
        "<disks><disk name='vda' backup='yes' type='file'>"
        "<scratch file='/var/lib/libvirt/qemu/other-vda.scratch'/></disk></disks>"
        "</domainbackup>", "/var/lib/vmrp"));
    CU_ASSERT_FALSE(vmrpBackupXmlIsOurs(
        "<domainbackup mode='pull'><server transport='tcp' name='h' port='1'/>"
        "<disks><disk name='vda' backup='yes' type='file'>"
        "<scratch file='/var/lib/libvirt/qemu/vmrp-x/../../a.scratch'/></disk></disks>"
        "</domainbackup>", "/var/lib/vmrp"));
}

static void
testCheckpointSoundDisks(void)
{
    /* as libvirt writes it with VIR_DOMAIN_CHECKPOINT_XML_SIZE: a size only
     * where the bitmap is present and consistent */
    g_autoptr(GPtrArray) sound = vmrpBackupXmlCheckpointSoundDisks(
        "<domaincheckpoint><name>vmrp-1</name><disks>"
        "<disk name='vda' checkpoint='bitmap' bitmap='vmrp-1' size='0'/>"
        "<disk name='vdb' checkpoint='bitmap' bitmap='vmrp-1'/>"
        "<disk name='vdc' checkpoint='no'/>"
        "<disk name='vdd' checkpoint='bitmap' bitmap='vmrp-1' size='1048576'/>"
        "</disks></domaincheckpoint>", NULL);
    g_autoptr(GError) err = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(sound);
    CU_ASSERT_EQUAL(sound->len, 2);
    CU_ASSERT_STRING_EQUAL(g_ptr_array_index(sound, 0), "vda");
    CU_ASSERT_STRING_EQUAL(g_ptr_array_index(sound, 1), "vdd");
    CU_ASSERT_PTR_NULL(vmrpBackupXmlCheckpointSoundDisks("<domain/>", &err));
    CU_ASSERT_PTR_NOT_NULL(err);
    CU_ASSERT_PTR_NULL(strchr(err->message, '\n'));
}

int
main(void)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testRemoteJob),
        VMRP_TEST(testCheckpointHostileName),
        VMRP_TEST(testJobHostileParent),
        VMRP_TEST(testExportNames),
        VMRP_TEST(testIsOurs),
        VMRP_TEST(testCheckpointSoundDisks),
        { NULL, NULL }
    };
    return vmrpTestMain("backupxml", cases, NULL, NULL);
}
