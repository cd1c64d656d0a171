/*
 * vmrp-backupxml.c: the backup job and checkpoint XML vmrp gives libvirt,
 * built and read with libxml2 (every name and path escaped by the library)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "vmrp-backupxml.h"
#include "vmrp-remote.h"
#include "vmrp-error.h"

#define XML_MAX_SIZE (16 * 1024 * 1024)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

char *
vmrpBackupXmlExportName(const char *target)
{
    return g_strdup_printf("vmrp-%s", target);
}

char *
vmrpBackupXmlExportBitmap(const char *target)
{
    return g_strdup_printf("vmrp-changes-%s", target);
}

static bool
setAttr(xmlNodePtr node, const char *name, const char *value)
{
    return xmlSetProp(node, BAD_CAST name, BAD_CAST value) != NULL;
}

static char *
formatDoc(xmlDocPtr doc, GError **error)
{
    xmlChar *buf = NULL;
    int len = 0;
    char *ret;

    xmlDocDumpFormatMemory(doc, &buf, &len, 1);
    if (!buf) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "out of memory writing XML");
        return NULL;
    }
    ret = g_strndup((const char *)buf, len);
    xmlFree(buf);
    return ret;
}

static void
setOOM(GError **error)
{
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "out of memory building XML");
}

/* The job served on the UNIX socket @socket, or (@socket NULL) on TCP at
 * @host:@port, with TLS when @tls. */
static char *
formatJob(const char *socket, const char *host, const char *port, bool tls,
          const vmrpBackupXmlDisk *disks, size_t ndisks, GError **error)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root, server, list;
    size_t i;

    if (!doc || !(root = xmlNewNode(NULL, BAD_CAST "domainbackup")))
        goto oom;
    xmlDocSetRootElement(doc, root);
    if (!setAttr(root, "mode", "pull") ||
        !(server = xmlNewChild(root, NULL, BAD_CAST "server", NULL)) ||
        (socket ? !setAttr(server, "transport", "unix") || !setAttr(server, "socket", socket)
                : !setAttr(server, "transport", "tcp") || !setAttr(server, "name", host) ||
                  !setAttr(server, "port", port) || !setAttr(server, "tls", tls ? "yes" : "no")) ||
        !(list = xmlNewChild(root, NULL, BAD_CAST "disks", NULL)))
        goto oom;
    for (i = 0; i < ndisks; i++) {
        const vmrpBackupXmlDisk *d = &disks[i];
        xmlNodePtr disk, scratch;

        if (!(disk = xmlNewChild(list, NULL, BAD_CAST "disk", NULL)) ||
            !setAttr(disk, "name", d->target))
            goto oom;
        if (d->excluded) {
            if (!setAttr(disk, "backup", "no"))
                goto oom;
            continue;
        }
        if (!setAttr(disk, "backup", "yes") || !setAttr(disk, "type", "file") ||
            !setAttr(disk, "exportname", d->export_name) ||
            (d->export_bitmap && !setAttr(disk, "exportbitmap", d->export_bitmap)) ||
            !setAttr(disk, "backupmode", d->incremental ? "incremental" : "full") ||
            (d->incremental && !setAttr(disk, "incremental", d->incremental)) ||
            !(scratch = xmlNewChild(disk, NULL, BAD_CAST "scratch", NULL)) ||
            !setAttr(scratch, "file", d->scratch))
            goto oom;
    }
    return formatDoc(doc, error);

 oom:
    setOOM(error);
    return NULL;
}

char *
vmrpBackupXmlFormatJob(const char *socket, const vmrpBackupXmlDisk *disks, size_t ndisks,
                       GError **error)
{
    return formatJob(socket, NULL, NULL, false, disks, ndisks, error);
}

char *
vmrpBackupXmlFormatJobTCP(const char *host, const char *port, bool tls,
                          const vmrpBackupXmlDisk *disks, size_t ndisks, GError **error)
{
    return formatJob(NULL, host, port, tls, disks, ndisks, error);
}

char *
vmrpBackupXmlFormatCheckpoint(const char *name, const char *description,
                              const vmrpCheckpointXmlDisk *disks, size_t ndisks,
                              GError **error)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root, list;
    size_t i;

    /* xmlNewTextChild escapes the content, xmlNewChild would not */
    if (!doc || !(root = xmlNewNode(NULL, BAD_CAST "domaincheckpoint")))
        goto oom;
    xmlDocSetRootElement(doc, root);
    if (!xmlNewTextChild(root, NULL, BAD_CAST "name", BAD_CAST name) ||
        (description &&
         !xmlNewTextChild(root, NULL, BAD_CAST "description", BAD_CAST description)) ||
        !(list = xmlNewChild(root, NULL, BAD_CAST "disks", NULL)))
        goto oom;
    for (i = 0; i < ndisks; i++) {
        xmlNodePtr disk;

        if (!(disk = xmlNewChild(list, NULL, BAD_CAST "disk", NULL)) ||
            !setAttr(disk, "name", disks[i].target) ||
            !setAttr(disk, "checkpoint", disks[i].bitmap ? "bitmap" : "no"))
            goto oom;
    }
    return formatDoc(doc, error);

 oom:
    setOOM(error);
    return NULL;
}

static xmlNodePtr
childElement(xmlNodePtr parent, const char *name)
{
    xmlNodePtr cur;

    for (cur = parent ? parent->children : NULL; cur; cur = cur->next) {
        if (cur->type == XML_ELEMENT_NODE && xmlStrEqual(cur->name, BAD_CAST name))
            return cur;
    }
    return NULL;
}

/* Whether @path lies inside the folder @dir (a path prefix at a '/'). */
static bool
pathIsBelow(const char *path, const char *dir)
{
    g_autofree char *canon_dir = g_canonicalize_filename(dir, "/");
    g_autofree char *canon = g_canonicalize_filename(path, "/");
    size_t len = strlen(canon_dir);

    return strncmp(canon, canon_dir, len) == 0 &&
           (canon[len] == '/' || (len == 1 && canon_dir[0] == '/'));
}

/* A job served on TCP (a domain on another host): vmrp's when a scratch
 * file is one vmrp names (VMRP_REMOTE_SCRATCH_DIR/vmrp-POINT-TARGET.scratch). */
static bool
remoteScratchIsOurs(xmlNodePtr disks)
{
    xmlNodePtr disk;
    bool ours = false;

    for (disk = disks ? disks->children : NULL; disk && !ours; disk = disk->next) {
        xmlChar *file;

        if (disk->type != XML_ELEMENT_NODE || !xmlStrEqual(disk->name, BAD_CAST "disk"))
            continue;
        if ((file = xmlGetProp(childElement(disk, "scratch"), BAD_CAST "file"))) {
            ours = g_str_has_prefix((const char *)file, VMRP_REMOTE_SCRATCH_DIR "/vmrp-") &&
                   !strstr((const char *)file, "/..") &&
                   !strchr((const char *)file + strlen(VMRP_REMOTE_SCRATCH_DIR "/"), '/');
            xmlFree(file);
        }
    }
    return ours;
}

bool
vmrpBackupXmlIsOurs(const char *job_xml, const char *state_dir)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlParserCtxtPtr ctxt;
    xmlNodePtr root;
    xmlChar *mode;
    xmlChar *socket = NULL;
    size_t len = job_xml ? strlen(job_xml) : 0;
    bool ours = false;

    if (len == 0 || len > XML_MAX_SIZE || !state_dir || !(ctxt = xmlNewParserCtxt()))
        return false;
    doc = xmlCtxtReadMemory(ctxt, job_xml, len, "backup.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlFreeParserCtxt(ctxt);
    if (!doc || doc->intSubset || doc->extSubset)
        return false;
    root = xmlDocGetRootElement(doc);
    if (!root || !xmlStrEqual(root->name, BAD_CAST "domainbackup"))
        return false;
    /* libvirt's mode attribute defaults to push */
    mode = xmlGetProp(root, BAD_CAST "mode");
    if (mode && xmlStrEqual(mode, BAD_CAST "pull"))
        socket = xmlGetProp(childElement(root, "server"), BAD_CAST "socket");
    if (socket)
        ours = pathIsBelow((const char *)socket, state_dir);
    else if (mode && xmlStrEqual(mode, BAD_CAST "pull"))
        ours = remoteScratchIsOurs(childElement(root, "disks"));
    xmlFree(mode);
    xmlFree(socket);
    return ours;
}

GPtrArray *
vmrpBackupXmlCheckpointSoundDisks(const char *chk_xml, GError **error)
{
    g_autoptr(GPtrArray) sound = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(xmlDoc) doc = NULL;
    xmlParserCtxtPtr ctxt;
    xmlNodePtr root;
    xmlNodePtr cur;
    size_t len = chk_xml ? strlen(chk_xml) : 0;

    if (len > 0 && len <= XML_MAX_SIZE && (ctxt = xmlNewParserCtxt())) {
        doc = xmlCtxtReadMemory(ctxt, chk_xml, len, "checkpoint.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlFreeParserCtxt(ctxt);
    }
    root = doc && !doc->intSubset && !doc->extSubset ? xmlDocGetRootElement(doc) : NULL;
    if (!root || !xmlStrEqual(root->name, BAD_CAST "domaincheckpoint")) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "malformed checkpoint XML from libvirt");
        return NULL;
    }
    for (cur = childElement(childElement(root, "disks"), "disk"); cur; cur = cur->next) {
        xmlChar *name, *type, *size;

        if (cur->type != XML_ELEMENT_NODE || !xmlStrEqual(cur->name, BAD_CAST "disk"))
            continue;
        name = xmlGetProp(cur, BAD_CAST "name");
        type = xmlGetProp(cur, BAD_CAST "checkpoint");
        size = xmlGetProp(cur, BAD_CAST "size");
        if (name && size && (!type || xmlStrEqual(type, BAD_CAST "bitmap")))
            g_ptr_array_add(sound, g_strdup((const char *)name));
        xmlFree(name);
        xmlFree(type);
        xmlFree(size);
    }
    return g_steal_pointer(&sound);
}
