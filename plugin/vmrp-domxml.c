/*
 * vmrp-domxml.c: reading and rewriting libvirt domain XML with libxml2
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "vmrp-domxml.h"
#include "vmrp-error.h"

struct _vmrpDomainXml {
    xmlDocPtr doc;
    xmlNodePtr root;
    char *name;
    char *uuid;
};

#define XML_MAX_SIZE (16 * 1024 * 1024)

void
vmrpDomainDiskFree(vmrpDomainDisk *disk)
{
    if (!disk)
        return;
    g_free(disk->target);
    g_free(disk->device);
    g_free(disk->type);
    g_free(disk->source);
    g_free(disk->format);
    g_free(disk->pool);
    g_free(disk->volume);
    g_free(disk);
}

void
vmrpDomainXmlFree(vmrpDomainXml *dom)
{
    if (!dom)
        return;
    xmlFreeDoc(dom->doc);
    g_free(dom->name);
    g_free(dom->uuid);
    g_free(dom);
}

static bool
isElement(xmlNodePtr node, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE &&
           xmlStrEqual(node->name, BAD_CAST name);
}

static xmlNodePtr
childElement(xmlNodePtr parent, const char *name)
{
    xmlNodePtr cur;

    for (cur = parent ? parent->children : NULL; cur; cur = cur->next) {
        if (isElement(cur, name))
            return cur;
    }
    return NULL;
}

/* Returns a g_malloc'd copy of an attribute, or NULL. */
static char *
attribute(xmlNodePtr node, const char *name)
{
    xmlChar *val;
    char *ret;

    if (!node || !(val = xmlGetProp(node, BAD_CAST name)))
        return NULL;
    ret = g_strdup((const char *)val);
    xmlFree(val);
    return ret;
}

static char *
childText(xmlNodePtr parent, const char *name)
{
    xmlNodePtr node = childElement(parent, name);
    xmlChar *val;
    char *ret;

    if (!node || !(val = xmlNodeGetContent(node)))
        return NULL;
    ret = g_strstrip(g_strdup((const char *)val));
    xmlFree(val);
    return ret;
}

/* How many child elements @name @parent has. */
static unsigned int
countChildren(xmlNodePtr parent, const char *name)
{
    xmlNodePtr cur;
    unsigned int n = 0;

    for (cur = parent->children; cur; cur = cur->next)
        n += isElement(cur, name);
    return n;
}

/*
 * Refuses a second copy of an element that libvirt writes once.  libvirt reads
 * the disks and interfaces of every <devices> and the first <source> of a
 * disk: a damaged domain.xml with two of them would have a clone keep the
 * original's disk, uuid or MAC address where vmrp rewrote only one.
 */
static bool
checkSingles(xmlNodePtr root, GError **error)
{
    static const char *const top[] = { "name", "uuid", "genid", "devices" };
    static const char *const disk[] = { "source", "target", "driver", "backingStore", "mirror" };
    static const char *const iface[] = { "mac", "target" };
    xmlNodePtr devices = childElement(root, "devices");
    const char *what = NULL;
    const char *where = "domain";
    xmlNodePtr cur;
    size_t i;

    for (i = 0; !what && i < G_N_ELEMENTS(top); i++) {
        if (countChildren(root, top[i]) > 1)
            what = top[i];
    }
    for (cur = devices ? devices->children : NULL; !what && cur; cur = cur->next) {
        if (isElement(cur, "disk")) {
            for (i = 0; !what && i < G_N_ELEMENTS(disk); i++) {
                if (countChildren(cur, disk[i]) > 1)
                    what = disk[i], where = "disk";
            }
        } else if (isElement(cur, "interface")) {
            for (i = 0; !what && i < G_N_ELEMENTS(iface); i++) {
                if (countChildren(cur, iface[i]) > 1)
                    what = iface[i], where = "interface";
            }
        }
    }
    if (what) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "malformed domain XML: more than one <%s> in a <%s>", what, where);
        return false;
    }
    return true;
}

vmrpDomainXml *
vmrpDomainXmlParse(const char *xml, GError **error)
{
    g_autoptr(vmrpDomainXml) dom = g_new0(vmrpDomainXml, 1);
    xmlParserCtxtPtr ctxt;
    size_t len = xml ? strlen(xml) : 0;

    if (len == 0 || len > XML_MAX_SIZE) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "malformed domain XML: empty or larger than %d bytes", XML_MAX_SIZE);
        return NULL;
    }
    if (!(ctxt = xmlNewParserCtxt())) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "out of memory parsing XML");
        return NULL;
    }
    dom->doc = xmlCtxtReadMemory(ctxt, xml, len, "domain.xml", NULL,
                                 XML_PARSE_NONET | XML_PARSE_NOERROR |
                                 XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    if (!dom->doc) {
        const xmlError *err = xmlCtxtGetLastError(ctxt);
        g_autofree char *msg = g_strdup(err && err->message ? err->message : "unknown error");
        /* libxml2's messages may span lines ("...encoding !\nBytes: 0xFF..."); ours do not */
        g_strdelimit(msg, "\n\r\t", ' ');
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "malformed domain XML: line %d: %s",
                    err ? err->line : 0, g_strstrip(msg));
        xmlFreeParserCtxt(ctxt);
        return NULL;
    }
    xmlFreeParserCtxt(ctxt);

    if (dom->doc->intSubset || dom->doc->extSubset) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "malformed domain XML: a DOCTYPE is not allowed");
        return NULL;
    }
    dom->root = xmlDocGetRootElement(dom->doc);
    if (!isElement(dom->root, "domain")) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "malformed domain XML: the root element is not <domain>");
        return NULL;
    }
    if (!checkSingles(dom->root, error))
        return NULL;
    dom->name = childText(dom->root, "name");
    dom->uuid = childText(dom->root, "uuid");
    if (!dom->name || !*dom->name) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "malformed domain XML: no <name>");
        return NULL;
    }
    return g_steal_pointer(&dom);
}

const char *
vmrpDomainXmlGetName(vmrpDomainXml *dom)
{
    return dom->name;
}

const char *
vmrpDomainXmlGetUUID(vmrpDomainXml *dom)
{
    return dom->uuid;
}

GPtrArray *
vmrpDomainXmlGetDisks(vmrpDomainXml *dom)
{
    GPtrArray *disks = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpDomainDiskFree);
    xmlNodePtr devices = childElement(dom->root, "devices");
    xmlNodePtr cur;

    for (cur = devices ? devices->children : NULL; cur; cur = cur->next) {
        vmrpDomainDisk *disk;
        xmlNodePtr source;

        if (!isElement(cur, "disk"))
            continue;
        disk = g_new0(vmrpDomainDisk, 1);
        disk->type = attribute(cur, "type");
        disk->device = attribute(cur, "device");
        if (!disk->device)
            disk->device = g_strdup("disk");
        disk->target = attribute(childElement(cur, "target"), "dev");
        disk->format = attribute(childElement(cur, "driver"), "type");
        source = childElement(cur, "source");
        if (source && g_strcmp0(disk->type, "volume") == 0) {
            disk->pool = attribute(source, "pool");
            disk->volume = attribute(source, "volume");
        } else if (source) {
            disk->source = attribute(source, "file");
            if (!disk->source)
                disk->source = attribute(source, "dev");
        }
        g_ptr_array_add(disks, disk);
    }
    return disks;
}

bool
vmrpDomainDiskIsBackedUp(const vmrpDomainDisk *disk)
{
    return disk->target && disk->source &&
           (g_strcmp0(disk->device, "disk") == 0 || g_strcmp0(disk->device, "lun") == 0) &&
           (g_strcmp0(disk->type, "file") == 0 || g_strcmp0(disk->type, "block") == 0);
}

static void
removeNode(xmlNodePtr node)
{
    if (!node)
        return;
    xmlUnlinkNode(node);
    xmlFreeNode(node);
}

/* Removes every child element @name of @parent. */
static void
removeChildren(xmlNodePtr parent, const char *name)
{
    xmlNodePtr node;

    while ((node = childElement(parent, name)))
        removeNode(node);
}

static bool
setChildText(xmlNodePtr parent, const char *name, const char *text)
{
    xmlNodePtr node = childElement(parent, name);

    if (!node)
        node = xmlNewChild(parent, NULL, BAD_CAST name, NULL);
    if (!node)
        return false;
    /* xmlNodeSetContent parses entities; xmlNodeSetContentLen does not either,
     * so encode first: the name is checked by the caller anyway. */
    xmlNodeSetContent(node, NULL);
    return xmlNodeAddContent(node, BAD_CAST text), true;
}

/* The disk's source becomes the file @path, or with @pool the volume
 * @path of that storage pool. */
static bool
rewriteDiskAt(xmlNodePtr disk, const char *pool, const char *path, const char *format)
{
    xmlNodePtr source = NULL;
    xmlNodePtr driver = childElement(disk, "driver");
    xmlNodePtr keep = NULL;

    /* a local file; everything about the old source (seclabels, reservations,
     * the backing chain) described the original disk, not this one.  Every
     * copy goes: libvirt reads the first <source>, and a second one left
     * before ours would make the clone use the original's disk. */
    removeChildren(disk, "backingStore");
    removeChildren(disk, "mirror");
    removeChildren(disk, "source");
    if (!xmlSetProp(disk, BAD_CAST "type", BAD_CAST (pool ? "volume" : "file")))
        return false;
    if (!(source = xmlNewNode(NULL, BAD_CAST "source")) ||
        (pool ? !xmlSetProp(source, BAD_CAST "pool", BAD_CAST pool) ||
                !xmlSetProp(source, BAD_CAST "volume", BAD_CAST path)
              : !xmlSetProp(source, BAD_CAST "file", BAD_CAST path)))
        return false;
    keep = driver ? driver : childElement(disk, "target");
    if (driver)
        xmlAddNextSibling(driver, source);
    else if (keep)
        xmlAddPrevSibling(keep, source);
    else
        xmlAddChild(disk, source);
    if (format) {
        if (!driver) {
            driver = xmlNewNode(NULL, BAD_CAST "driver");
            xmlSetProp(driver, BAD_CAST "name", BAD_CAST "qemu");
            xmlAddPrevSibling(source, driver);
        }
        xmlSetProp(driver, BAD_CAST "type", BAD_CAST format);
    }
    return true;
}

static bool
rewriteDisk(xmlNodePtr disk, const char *path, const char *format)
{
    return rewriteDiskAt(disk, NULL, path, format);
}

/* A unix channel whose socket path libvirt generated for the original. */
static void
dropGeneratedChannelPath(xmlNodePtr chan)
{
    xmlNodePtr source = childElement(chan, "source");
    g_autofree char *path = attribute(source, "path");
    g_autofree char *type = attribute(chan, "type");

    if (g_strcmp0(type, "unix") == 0 && path &&
        strstr(path, "/channel/target/"))
        xmlUnsetProp(source, BAD_CAST "path");
}

/* Output files of the original (a console log, a serial port written to a
 * file) would be shared with the clone: the clone gets its own beside them,
 * named "<new-name>-<file>". */
static bool
renameOutputFile(xmlNodePtr node, const char *attr, const char *new_name)
{
    g_autofree char *path = attribute(node, attr);
    g_autofree char *dir = NULL;
    g_autofree char *base = NULL;
    g_autofree char *file = NULL;
    g_autofree char *renamed = NULL;

    if (!path)
        return true;
    dir = g_path_get_dirname(path);
    base = g_path_get_basename(path);
    file = g_strdup_printf("%s-%s", new_name, base);
    renamed = g_build_filename(dir, file, NULL);
    return xmlSetProp(node, BAD_CAST attr, BAD_CAST renamed) != NULL;
}

static bool
renameCharOutput(xmlNodePtr chr, const char *new_name)
{
    g_autofree char *type = attribute(chr, "type");

    if (g_strcmp0(type, "file") == 0 &&
        !renameOutputFile(childElement(chr, "source"), "path", new_name))
        return false;
    return renameOutputFile(childElement(chr, "log"), "file", new_name);
}

bool
vmrpDomainXmlPrepareClone(vmrpDomainXml *dom,
                          const char *new_name,
                          GHashTable *new_sources,
                          GHashTable *new_formats,
                          const char *const *drop,
                          GError **error)
{
    xmlNodePtr devices = childElement(dom->root, "devices");
    xmlNodePtr cur;
    xmlNodePtr next;

    if (!setChildText(dom->root, "name", new_name))
        goto oom;
    g_free(dom->name);
    dom->name = g_strdup(new_name);
    removeChildren(dom->root, "uuid");
    g_clear_pointer(&dom->uuid, g_free);
    /* generated identities of the original */
    removeChildren(dom->root, "genid");

    for (cur = devices ? devices->children : NULL; cur; cur = next) {
        g_autofree char *target = NULL;

        next = cur->next;
        if (isElement(cur, "interface")) {
            removeChildren(cur, "mac");
            removeChildren(cur, "target");
        } else if (isElement(cur, "channel")) {
            dropGeneratedChannelPath(cur);
            if (!renameCharOutput(cur, new_name))
                goto oom;
        } else if (isElement(cur, "serial") || isElement(cur, "console") ||
                   isElement(cur, "parallel")) {
            if (!renameCharOutput(cur, new_name))
                goto oom;
        } else if (isElement(cur, "disk")) {
            const char *path;

            target = attribute(childElement(cur, "target"), "dev");
            if (!target)
                continue;
            if (drop && g_strv_contains(drop, target)) {
                removeNode(cur);
                continue;
            }
            if (new_sources && (path = g_hash_table_lookup(new_sources, target))) {
                const char *format = new_formats ? g_hash_table_lookup(new_formats, target) : NULL;
                if (!rewriteDisk(cur, path, format))
                    goto oom;
            }
        }
    }
    return true;

 oom:
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "out of memory rewriting domain XML");
    return false;
}

/* The <disk> of @dom whose target is @target, or NULL. */
static xmlNodePtr
findDisk(vmrpDomainXml *dom, const char *target)
{
    xmlNodePtr devices = childElement(dom->root, "devices");
    xmlNodePtr cur;

    for (cur = devices ? devices->children : NULL; cur; cur = cur->next) {
        g_autofree char *dev = NULL;

        if (!isElement(cur, "disk"))
            continue;
        dev = attribute(childElement(cur, "target"), "dev");
        if (g_strcmp0(dev, target) == 0)
            return cur;
    }
    return NULL;
}

bool
vmrpDomainXmlSetDiskVolume(vmrpDomainXml *dom,
                           const char *target,
                           const char *pool,
                           const char *volume,
                           const char *format,
                           GError **error)
{
    xmlNodePtr disk = findDisk(dom, target);

    if (!disk) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "the domain XML has no disk '%s'", target);
        return false;
    }
    if (!rewriteDiskAt(disk, pool, volume, format)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "out of memory rewriting domain XML");
        return false;
    }
    return true;
}

bool
vmrpDomainXmlSetDiskSource(vmrpDomainXml *dom,
                           const char *target,
                           const char *path,
                           const char *format,
                           bool no_relabel,
                           GError **error)
{
    xmlNodePtr disk = findDisk(dom, target);
    xmlNodePtr label;

    if (!disk) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "the domain XML has no disk '%s'", target);
        return false;
    }
    if (!rewriteDisk(disk, path, format) ||
        (no_relabel &&
         (!(label = xmlNewChild(childElement(disk, "source"), NULL, BAD_CAST "seclabel", NULL)) ||
          !xmlSetProp(label, BAD_CAST "model", BAD_CAST "dac") ||
          !xmlSetProp(label, BAD_CAST "relabel", BAD_CAST "no")))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "out of memory rewriting domain XML");
        return false;
    }
    return true;
}

char *
vmrpDomainXmlFormat(vmrpDomainXml *dom)
{
    xmlChar *buf = NULL;
    int len = 0;
    char *ret;

    xmlDocDumpFormatMemory(dom->doc, &buf, &len, 0);
    ret = g_strndup((const char *)buf, len);
    xmlFree(buf);
    /* drop the <?xml ...?> declaration libxml2 adds; libvirt's own XML has none */
    if (g_str_has_prefix(ret, "<?xml")) {
        char *nl = strchr(ret, '\n');
        if (nl) {
            char *body = g_strdup(nl + 1);
            g_free(ret);
            ret = body;
        }
    }
    return ret;
}

char *
vmrpDomainXmlGetNvram(vmrpDomainXml *dom)
{
    xmlNodePtr nvram = childElement(childElement(dom->root, "os"), "nvram");
    xmlNodePtr source = childElement(nvram, "source");
    char *path;

    if (!nvram)
        return NULL;
    if (source)
        return attribute(source, "file");
    path = childText(childElement(dom->root, "os"), "nvram");
    if (path && !*path)
        g_clear_pointer(&path, g_free);
    return path;
}

bool
vmrpDomainXmlSetNvram(vmrpDomainXml *dom, const char *path, GError **error)
{
    xmlNodePtr os = childElement(dom->root, "os");
    xmlNodePtr nvram = childElement(os, "nvram");
    xmlNodePtr source = childElement(nvram, "source");

    if (!nvram)
        return true;
    if (source) {
        g_autofree char *type = attribute(nvram, "type");

        if (g_strcmp0(type, "file") != 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "the domain's UEFI variables are not in a local file");
            return false;
        }
        if (!xmlSetProp(source, BAD_CAST "file", BAD_CAST path))
            goto oom;
        return true;
    }
    if (!setChildText(os, "nvram", path))
        goto oom;
    return true;

 oom:
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "out of memory rewriting domain XML");
    return false;
}

bool
vmrpDomainXmlHasSwtpm(vmrpDomainXml *dom)
{
    xmlNodePtr devices = childElement(dom->root, "devices");
    xmlNodePtr cur;

    for (cur = devices ? devices->children : NULL; cur; cur = cur->next) {
        g_autofree char *type = NULL;

        if (!isElement(cur, "tpm"))
            continue;
        type = attribute(childElement(cur, "backend"), "type");
        if (g_strcmp0(type, "emulator") == 0)
            return true;
    }
    return false;
}
