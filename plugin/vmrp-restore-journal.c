/*
 * vmrp-restore-journal.c: the journal of an in-place restore, so that a
 * restore killed while it replaced the disks is undone or finished by the
 * next command
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include <libvirt/virterror.h>

#include "vmrp-restore-journal.h"
#include "vmrp-json.h"
#include "vmrp-restore.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-state.h"

#define JOURNAL_MAX (1024 * 1024)

static char *
journalPath(const char *uuid)
{
    g_autofree char *name = g_strdup_printf("restore-%s.json", uuid);

    return g_build_filename(vmrpStateDir(), name, NULL);
}

bool
vmrpRestoreJournalWrite(const char *uuid, const char *phase, bool was_running,
                        bool autostart, GPtrArray *files, GPtrArray *asides, GError **error)
{
    g_autofree char *path = journalPath(uuid);
    g_autofree char *text = NULL;
    json_object *obj = json_object_new_object();
    json_object *disks = json_object_new_array();
    guint i;

    json_object_object_add(obj, "domain_uuid", json_object_new_string(uuid));
    json_object_object_add(obj, "phase", json_object_new_string(phase));
    json_object_object_add(obj, "was_running", json_object_new_boolean(was_running));
    json_object_object_add(obj, "autostart", json_object_new_boolean(autostart));
    for (i = 0; i < files->len; i++) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "file", json_object_new_string(g_ptr_array_index(files, i)));
        json_object_object_add(d, "aside",
                               json_object_new_string(g_ptr_array_index(asides, i)));
        json_object_array_add(disks, d);
    }
    json_object_object_add(obj, "disks", disks);
    text = g_strdup_printf("%s\n", json_object_to_json_string_ext(obj,
                           JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
    json_object_put(obj);
    return vmrpFileMakeDirWithParents(vmrpStateDir(), 0755, 0711, error) &&
           vmrpFileWriteAtomic(path, text, strlen(text), 0600, error);
}

bool
vmrpRestoreJournalExists(const char *uuid)
{
    g_autofree char *path = NULL;

    if (!g_uuid_string_is_valid(uuid))
        return false;
    path = journalPath(uuid);
    return access(path, F_OK) == 0;
}

void
vmrpRestoreJournalRemove(const char *uuid)
{
    g_autofree char *path = journalPath(uuid);

    if (unlink(path) < 0 && errno != ENOENT)
        g_warning("cannot remove %s: %s", path, g_strerror(errno));
}

static bool
journalBool(json_object *obj, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(obj, key, &v) && json_object_get_boolean(v);
}

/* A journal's file (a disk, the NVRAM file) or folder (the vTPM state) goes;
 * true when it is gone. */
static bool
journalRemove(const char *path)
{
    struct stat sb;

    if (lstat(path, &sb) < 0)
        return errno == ENOENT;
    if (S_ISDIR(sb.st_mode))
        return vmrpFileRemoveTree(path, NULL);
    return unlink(path) == 0;
}

/* A journal's file pair: the aside must be the file's own set-aside name. */
static bool
journalDiskValid(const char *file, const char *aside)
{
    return file && aside && g_path_is_absolute(file) && g_str_has_prefix(aside, file) &&
           g_str_has_prefix(aside + strlen(file), ".vmrp-old-") &&
           !strchr(aside + strlen(file), '/');
}

bool
vmrpRestoreRecover(virConnectPtr conn, const char *uuid, GError **error)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;
    virDomainPtr dom = NULL;
    json_object *obj = NULL;
    json_object *disks = NULL;
    const char *phase;
    bool done;
    bool ok = false;
    size_t i;

    if (!g_uuid_string_is_valid(uuid))
        return true;
    path = journalPath(uuid);
    if (access(path, F_OK) < 0)
        return true;
    if (!(text = vmrpFileRead(path, JOURNAL_MAX, NULL, error)))
        return false;
    if (!(obj = json_tokener_parse(text)) || !(phase = vmrpJSONGetString(obj, "phase")) ||
        g_strcmp0(vmrpJSONGetString(obj, "domain_uuid"), uuid) != 0 ||
        !json_object_object_get_ex(obj, "disks", &disks) ||
        !json_object_is_type(disks, json_type_array)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "cannot recover an interrupted restore: %s is damaged", path);
        goto cleanup;
    }
    /* defined: the restored domain stands, only the originals' files go;
     * before: the originals come back in place of partial copies */
    done = g_str_equal(phase, "defined");
    for (i = 0; i < json_object_array_length(disks); i++) {
        json_object *d = json_object_array_get_idx(disks, i);
        const char *file = vmrpJSONGetString(d, "file");
        const char *aside = vmrpJSONGetString(d, "aside");

        if (!journalDiskValid(file, aside)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "cannot recover an interrupted restore: %s is damaged", path);
            goto cleanup;
        }
        if (access(aside, F_OK) < 0)
            continue;
        if (done) {
            if (!journalRemove(aside))
                g_warning("cannot remove the set-aside %s", aside);
            continue;
        }
        if (!journalRemove(file) || rename(aside, file) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO,
                        "cannot put %s back after an interrupted restore: %s",
                        file, g_strerror(errno));
            goto cleanup;
        }
    }
    if ((dom = virDomainLookupByUUIDString(conn, uuid))) {
        if (journalBool(obj, "autostart") && virDomainSetAutostart(dom, 1) < 0)
            g_warning("cannot turn autostart on again: %s", virGetLastErrorMessage());
        if (!done && journalBool(obj, "was_running") && virDomainIsActive(dom) == 0 &&
            virDomainCreate(dom) < 0)
            g_warning("cannot start the original domain again: %s", virGetLastErrorMessage());
    }
    vmrpRestoreJournalRemove(uuid);
    ok = true;

 cleanup:
    if (dom)
        virDomainFree(dom);
    json_object_put(obj);
    return ok;
}
