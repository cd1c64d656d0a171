/*
 * test-domxml.c: domain XML read and rewritten for a new domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-test.h"
#include "vmrp-domxml.h"

static const char sampleXML[] =
    "<domain type='qemu'>\n"
    "  <name>vm1</name>\n"
    "  <uuid>6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11</uuid>\n"
    "  <genid>0c5f1d4b-3d2e-4b8f-9f4b-3a0c1d2e3f40</genid>\n"
    "  <memory unit='KiB'>262144</memory>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/images/vm1-vda.qcow2'/>\n"
    "      <backingStore type='file'><format type='qcow2'/>"
    "<source file='/images/base.qcow2'/></backingStore>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='block' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source dev='/dev/vg/vm1-data'/>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/images/vm1-vdc.qcow2'/>\n"
    "      <target dev='vdc' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <source file='/iso/debian.iso'/>\n"
    "      <target dev='sda' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='network' device='disk'>\n"
    "      <source protocol='nbd' name='x'><host name='h'/></source>\n"
    "      <target dev='vdd' bus='virtio'/>\n"
    "    </disk>\n"
    "    <interface type='user'>\n"
    "      <mac address='52:54:00:12:34:56'/>\n"
    "      <model type='virtio'/>\n"
    "    </interface>\n"
    "    <serial type='pty'>\n"
    "      <log file='/var/log/vm1/console.log' append='on'/>\n"
    "      <target port='0'/>\n"
    "    </serial>\n"
    "    <channel type='unix'>\n"
    "      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-3-vm1/"
    "org.qemu.guest_agent.0'/>\n"
    "      <target type='virtio' name='org.qemu.guest_agent.0'/>\n"
    "    </channel>\n"
    "  </devices>\n"
    "</domain>\n";

static void
testDisks(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpDomainXml) dom = vmrpDomainXmlParse(sampleXML, &error);
    g_autoptr(GPtrArray) disks = NULL;
    vmrpDomainDisk *d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dom);
    CU_ASSERT_STRING_EQUAL(vmrpDomainXmlGetName(dom), "vm1");
    CU_ASSERT_STRING_EQUAL(vmrpDomainXmlGetUUID(dom), "6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11");
    disks = vmrpDomainXmlGetDisks(dom);
    CU_ASSERT_EQUAL_FATAL(disks->len, 5);
    d = g_ptr_array_index(disks, 0);
    CU_ASSERT_STRING_EQUAL(d->target, "vda");
    CU_ASSERT_STRING_EQUAL(d->source, "/images/vm1-vda.qcow2");
    CU_ASSERT_STRING_EQUAL(d->format, "qcow2");
    CU_ASSERT_TRUE(vmrpDomainDiskIsBackedUp(d));
    d = g_ptr_array_index(disks, 1);
    CU_ASSERT_STRING_EQUAL(d->source, "/dev/vg/vm1-data");
    CU_ASSERT_STRING_EQUAL(d->type, "block");
    CU_ASSERT_TRUE(vmrpDomainDiskIsBackedUp(d));
    CU_ASSERT_FALSE(vmrpDomainDiskIsBackedUp(g_ptr_array_index(disks, 3)));  /* cdrom */
    CU_ASSERT_FALSE(vmrpDomainDiskIsBackedUp(g_ptr_array_index(disks, 4)));  /* network */
}

/* A storage volume: pool and volume read, no path until its pool resolves
 * it (vmrpVolumeResolveDisks, tested against libvirtd in test-volume-disk). */
static void
testVolumeDisk(void)
{
    g_autoptr(vmrpDomainXml) dom = vmrpDomainXmlParse(
        "<domain><name>v</name><devices><disk type='volume' device='disk'>"
        "<driver name='qemu' type='qcow2'/><source pool='p&amp;1' volume='vda.qcow2' index='1'/>"
        "<target dev='vda'/></disk></devices></domain>", NULL);
    g_autoptr(GPtrArray) disks = NULL;
    vmrpDomainDisk *d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dom);
    disks = vmrpDomainXmlGetDisks(dom);
    CU_ASSERT_EQUAL_FATAL(disks->len, 1);
    d = g_ptr_array_index(disks, 0);
    CU_ASSERT_STRING_EQUAL(d->type, "volume");
    CU_ASSERT_STRING_EQUAL(d->pool, "p&1");
    CU_ASSERT_STRING_EQUAL(d->volume, "vda.qcow2");
    CU_ASSERT_PTR_NULL(d->source);
    CU_ASSERT_FALSE(vmrpDomainDiskIsBackedUp(d));
}

static void
testPrepareClone(void)
{
    g_autoptr(vmrpDomainXml) dom = vmrpDomainXmlParse(sampleXML, NULL);
    g_autoptr(GHashTable) sources = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) formats = g_hash_table_new(g_str_hash, g_str_equal);
    const char *drop[] = { "vdc", NULL };
    g_autofree char *xml = NULL;
    g_autoptr(vmrpDomainXml) back = NULL;
    g_autoptr(GPtrArray) disks = NULL;
    vmrpDomainDisk *d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dom);
    g_hash_table_insert(sources, "vda", "/restore/new & <odd>'name.qcow2");
    g_hash_table_insert(sources, "vdb", "/restore/new-vdb.img");
    g_hash_table_insert(formats, "vda", "qcow2");
    g_hash_table_insert(formats, "vdb", "raw");
    CU_ASSERT_TRUE_FATAL(vmrpDomainXmlPrepareClone(dom, "vm1-copy", sources, formats,
                                                   drop, NULL));
    xml = vmrpDomainXmlFormat(dom);
    CU_ASSERT_PTR_NULL(strstr(xml, "<uuid>"));
    CU_ASSERT_PTR_NULL(strstr(xml, "<genid>"));
    CU_ASSERT_PTR_NULL(strstr(xml, "52:54:00:12:34:56"));
    CU_ASSERT_PTR_NULL(strstr(xml, "backingStore"));
    CU_ASSERT_PTR_NULL(strstr(xml, "domain-3-vm1"));
    CU_ASSERT_PTR_NULL(strstr(xml, "vm1-vdc"));
    CU_ASSERT_PTR_NULL(strstr(xml, "<?xml"));
    CU_ASSERT_PTR_NOT_NULL(strstr(xml, "<name>vm1-copy</name>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(xml, "org.qemu.guest_agent.0"));
    /* the clone's console log is its own */
    CU_ASSERT_PTR_NOT_NULL(strstr(xml, "file=\"/var/log/vm1/vm1-copy-console.log\""));

    back = vmrpDomainXmlParse(xml, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_STRING_EQUAL(vmrpDomainXmlGetName(back), "vm1-copy");
    CU_ASSERT_PTR_NULL(vmrpDomainXmlGetUUID(back));
    disks = vmrpDomainXmlGetDisks(back);
    CU_ASSERT_EQUAL_FATAL(disks->len, 4);
    d = g_ptr_array_index(disks, 0);
    CU_ASSERT_STRING_EQUAL(d->source, "/restore/new & <odd>'name.qcow2");
    d = g_ptr_array_index(disks, 1);
    /* the block device became a file of its own */
    CU_ASSERT_STRING_EQUAL(d->target, "vdb");
    CU_ASSERT_STRING_EQUAL(d->type, "file");
    CU_ASSERT_STRING_EQUAL(d->source, "/restore/new-vdb.img");
    CU_ASSERT_STRING_EQUAL(d->format, "raw");
    d = g_ptr_array_index(disks, 2);
    CU_ASSERT_STRING_EQUAL(d->device, "cdrom");
    CU_ASSERT_STRING_EQUAL(d->source, "/iso/debian.iso");
}

/* Found by fuzz-domxml: a disk with two <source> elements, two <uuid> or two
 * <devices> (a damaged or hostile domain.xml in the repository) had the clone
 * keep the second copy, which libvirt reads: the clone would have used the
 * original's disk or uuid.  Such XML is refused. */
static void
testDuplicates(void)
{
    static const char *const xmls[] = {
        "<domain><name>a</name><devices><disk type='file'>"
        "<source file='/images/orig.qcow2'/><source file='/images/orig.qcow2'/>"
        "<target dev='vda'/></disk></devices></domain>",
        "<domain><name>a</name><devices><disk type='file'><source file='/a.qcow2'/>"
        "<target dev='vda'/><target dev='vdb'/></disk></devices></domain>",
        "<domain><name>a</name><uuid>6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11</uuid>"
        "<uuid>6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11</uuid></domain>",
        "<domain><name>a</name><name>b</name></domain>",
        "<domain><name>a</name><devices/><devices><disk type='file'>"
        "<source file='/images/orig.qcow2'/><target dev='vda'/></disk></devices></domain>",
        "<domain><name>a</name><devices><interface type='user'>"
        "<mac address='52:54:00:12:34:56'/><mac address='52:54:00:12:34:57'/>"
        "</interface></devices></domain>",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(xmls); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpDomainXml) dom = vmrpDomainXmlParse(xmls[i], &error);

        if (dom)
            fprintf(stderr, "accepted duplicates #%zu\n", i);
        CU_ASSERT_PTR_NULL(dom);
        CU_ASSERT_TRUE(error && strstr(error->message, "more than one"));
    }
}

/* An error of libxml2 is one line too. */
static void
testErrorOneLine(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpDomainXml) dom =
        vmrpDomainXmlParse("<domain><name>\xff\xff\xff\xff</name></domain>", &error);

    CU_ASSERT_PTR_NULL(dom);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NULL(strchr(error->message, '\n'));
}

static void
testMalformed(void)
{
    static const char *const bad[] = {
        "",
        "<domain><name>x</name>",
        "<vm><name>x</name></vm>",
        "<domain></domain>",
        "<domain><name></name></domain>",
        "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e 'x'>]><domain><name>&e;</name></domain>",
        "<!DOCTYPE domain SYSTEM 'http://example.invalid/x.dtd'><domain><name>a</name></domain>",
        "<domain><name>a</name></domain><extra/>",
        "not xml at all",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpDomainXml) dom = vmrpDomainXmlParse(bad[i], &error);

        CU_ASSERT_PTR_NULL(dom);
        CU_ASSERT_PTR_NOT_NULL(error);
        CU_ASSERT_PTR_NULL(error ? strchr(error->message, '\n') : NULL);
    }
}

/* UEFI variables and an emulated TPM: found, and the NVRAM moved for a clone */
static void
testNvramTpm(void)
{
    static const char uefi[] =
        "<domain type='qemu'><name>vm1</name><os><type>hvm</type>"
        "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"
        "<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/"
        "vm1_VARS.fd</nvram></os><devices><tpm model='tpm-tis'>"
        "<backend type='emulator' version='2.0'/></tpm></devices></domain>";
    static const char sourced[] =
        "<domain><name>vm1</name><os><nvram type='file'><source file='/n/vm1.fd'/></nvram>"
        "</os><devices><tpm><backend type='passthrough'/></tpm></devices></domain>";
    g_autoptr(vmrpDomainXml) dom = vmrpDomainXmlParse(uefi, NULL);
    g_autoptr(vmrpDomainXml) src = vmrpDomainXmlParse(sourced, NULL);
    g_autoptr(vmrpDomainXml) plain = vmrpDomainXmlParse(sampleXML, NULL);
    g_autoptr(vmrpDomainXml) back = NULL;
    g_autofree char *nvram = NULL;
    g_autofree char *text = NULL;
    g_autofree char *moved = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dom);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    nvram = vmrpDomainXmlGetNvram(dom);
    CU_ASSERT_STRING_EQUAL(nvram, "/var/lib/libvirt/qemu/nvram/vm1_VARS.fd");
    CU_ASSERT_TRUE(vmrpDomainXmlHasSwtpm(dom));
    CU_ASSERT_FALSE(vmrpDomainXmlHasSwtpm(src));
    CU_ASSERT_FALSE(vmrpDomainXmlHasSwtpm(plain));
    CU_ASSERT_PTR_NULL(vmrpDomainXmlGetNvram(plain));

    CU_ASSERT_TRUE(vmrpDomainXmlSetNvram(dom, "/var/lib/libvirt/qemu/nvram/a&b_VARS.fd", NULL));
    text = vmrpDomainXmlFormat(dom);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back = vmrpDomainXmlParse(text, NULL));
    moved = vmrpDomainXmlGetNvram(back);
    CU_ASSERT_STRING_EQUAL(moved, "/var/lib/libvirt/qemu/nvram/a&b_VARS.fd");
    /* the template stays */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "template=\"/usr/share/OVMF/OVMF_VARS_4M.fd\""));

    g_clear_pointer(&nvram, g_free);
    nvram = vmrpDomainXmlGetNvram(src);
    CU_ASSERT_STRING_EQUAL(nvram, "/n/vm1.fd");
    CU_ASSERT_TRUE(vmrpDomainXmlSetNvram(src, "/n/vm2.fd", NULL));
    g_clear_pointer(&nvram, g_free);
    nvram = vmrpDomainXmlGetNvram(src);
    CU_ASSERT_STRING_EQUAL(nvram, "/n/vm2.fd");
    /* a domain without NVRAM gets none */
    CU_ASSERT_TRUE(vmrpDomainXmlSetNvram(plain, "/n/x.fd", NULL));
    CU_ASSERT_PTR_NULL(vmrpDomainXmlGetNvram(plain));
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testDisks),
    VMRP_TEST(testVolumeDisk),
    VMRP_TEST(testPrepareClone),
    VMRP_TEST(testMalformed),
    VMRP_TEST(testDuplicates),
    VMRP_TEST(testErrorOneLine),
    VMRP_TEST(testNvramTpm),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("domxml", cases, NULL, NULL);
}
