/*
 * vmrp-disk.c: standalone disk images made from disk restore points
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>

#include "vmrp-disk.h"
#include "vmrp-qcow2-read.h"
#include "vmrp-error.h"
#include "vmrp-fault.h"
#include "vmrp-file.h"
#include "vmrp-names.h"

/* qemu-img convert -p writes "    (12.34/100%)\r" on stdout as it goes. */
static void
diskParseProgress(GString *buf, const char *target, uint64_t size,
                  vmrpDiskProgressFunc progress, void *opaque)
{
    char *open;

    while ((open = strchr(buf->str, '('))) {
        char *close = strchr(open, ')');
        double percent;

        if (!close)
            break;
        percent = g_ascii_strtod(open + 1, NULL);
        if (percent >= 0 && percent <= 100)
            progress(target, (uint64_t)(size * (percent / 100.0)), size, opaque);
        g_string_erase(buf, 0, close + 1 - buf->str);
    }
    if (buf->len > 4096)
        g_string_truncate(buf, 0);
}

/* In qemu-img: a process group of its own, so that a terminal's Ctrl-C
 * reaches vmrp only, which then stops qemu-img and undoes its work in order. */
static void
diskChildSetup(gpointer opaque G_GNUC_UNUSED)
{
    setpgid(0, 0);
}

/* The last line qemu-img wrote that is not progress. */
static const char *
diskLastLine(GStrv lines)
{
    const char *last = "";
    size_t i;

    for (i = 0; lines[i]; i++) {
        g_strstrip(lines[i]);
        if (*lines[i] && lines[i][0] != '(')
            last = lines[i];
    }
    return last;
}

/* Runs a qemu-img command given -p, turning its percentages into progress
 * of @size bytes; fails with the last line it wrote.  When @copy->cancel is
 * cancelled, qemu-img is killed and the call fails with G_IO_ERROR_CANCELLED. */
static bool
diskRunProgress(const char *const *argv, const char *target, uint64_t size,
                const vmrpDiskCopyOptions *copy, GError **error)
{
    vmrpDiskProgressFunc progress = copy ? copy->progress : NULL;
    void *opaque = copy ? copy->opaque : NULL;
    GCancellable *cancel = copy ? copy->cancel : NULL;
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GString) buf = g_string_new(NULL);
    g_autoptr(GString) all = g_string_new(NULL);
    g_autoptr(GError) local = NULL;
    g_auto(GStrv) lines = NULL;
    GInputStream *out;
    char chunk[256];
    gssize n;

    if (g_cancellable_set_error_if_cancelled(cancel, error))
        return false;
    if (progress)
        progress(target, 0, size, opaque);
    /* stderr is merged into stdout: qemu-img writes little of either */
    launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                         G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_child_setup(launcher, diskChildSetup, NULL, NULL);
    if (!(proc = g_subprocess_launcher_spawnv(launcher, argv, &local))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "cannot run qemu-img: %s",
                    local->message);
        return false;
    }
    /* a test stops or fails vmrp here, with qemu-img at work */
    if (!vmrpFaultCheck("disk-copy-running", error)) {
        g_subprocess_force_exit(proc);
        g_subprocess_wait(proc, NULL, NULL);
        return false;
    }
    out = g_subprocess_get_stdout_pipe(proc);
    while ((n = g_input_stream_read(out, chunk, sizeof(chunk), cancel, NULL)) > 0) {
        g_string_append_len(buf, chunk, n);
        if (all->len < 65536)
            g_string_append_len(all, chunk, n);
        if (progress)
            diskParseProgress(buf, target, size, progress, opaque);
        else
            g_string_truncate(buf, 0);
    }
    if (g_cancellable_is_cancelled(cancel)) {
        g_subprocess_force_exit(proc);
        g_subprocess_wait(proc, NULL, NULL);
        g_cancellable_set_error_if_cancelled(cancel, error);
        return false;
    }
    if (!g_subprocess_wait(proc, NULL, &local) || !g_subprocess_get_successful(proc)) {
        lines = g_strsplit_set(all->str, "\r\n", -1);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "qemu-img %s failed: %s",
                    argv[1], diskLastLine(lines));
        return false;
    }
    if (progress)
        progress(target, size, size, opaque);
    return true;
}

bool
vmrpDiskConvert(const char *src, const char *dest, const char *format,
                const char *target, uint64_t size,
                const vmrpDiskCopyOptions *copy, GError **error)
{
    const char *argv[] = { "qemu-img", "convert", "-p", "-f", "qcow2", "-O", format,
                           "-W", "-m", "8", src, dest, NULL };

    if (!diskRunProgress(argv, target, size, copy, error) ||
        !vmrpFileSync(dest, error)) {
        unlink(dest);
        return false;
    }
    return true;
}

/* @path as a value in qemu's --image-opts (a comma doubled). */
static char *
diskOptEscape(const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, ",", -1);

    return g_strjoinv(",,", parts);
}

bool
vmrpDiskFlatten(const char *image, const char *backing, const char *target,
                const vmrpDiskCopyOptions *copy, GError **error)
{
    g_autofree char *image_e = diskOptEscape(image);
    g_autofree char *backing_e = diskOptEscape(backing);
    /* the backing chain is the one vmrp names, never what the image's header
     * (writable by the QEMU user) says */
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.driver=file,file.filename=%s,"
                                            "backing.driver=qcow2,backing.file.driver=file,"
                                            "backing.file.filename=%s", image_e, backing_e);
    const char *argv[] = { "qemu-img", "rebase", "-p", "--image-opts", "-b", "", opts, NULL };
    vmrpQcow2Header hdr = { 0 };
    uint64_t size;
    bool data_file;

    /* the header read here (nbd/vmrp-qcow2-read.h), before any tool opens the image */
    if (!vmrpQcow2ReadHeaderAt(image, &hdr, error))
        return false;
    size = hdr.size;
    data_file = hdr.data_file;
    vmrpQcow2HeaderClear(&hdr);
    if (data_file) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "disk %s: %s names an external data file; refused", target, image);
        return false;
    }
    if (!diskRunProgress(argv, target, size, copy, error))
        return false;
    return vmrpFileSync(image, error);
}

bool
vmrpDiskCreate(vmrpRepo *repo, const char *id, const char *target,
               const char *output, const char *format,
               const vmrpDiskCopyOptions *copy, GError **error)
{
    g_autoptr(vmrpPoint) point = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *image = NULL;
    g_autofree char *folder = NULL;
    uint64_t size;

    if (!format)
        format = "qcow2";
    if (!g_str_equal(format, "qcow2") && !g_str_equal(format, "raw")) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "unsupported format '%s': use qcow2 or raw", format);
        return false;
    }
    if (!vmrpNameCheckTarget(target, error))
        return false;
    if (!(point = vmrpRepoFindPoint(repo, id, &dir, error)))
        return false;
    if (point->state != VMRP_POINT_SUCCEEDED) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s is %s, not usable", id,
                    vmrpPointStateToString(point->state));
        return false;
    }
    if (!(image = vmrpRepoPointImage(dir, point, target, error)))
        return false;
    if (g_file_test(output, G_FILE_TEST_EXISTS) || g_file_test(output, G_FILE_TEST_IS_SYMLINK)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "%s already exists: choose another --output", output);
        return false;
    }
    folder = g_path_get_dirname(output);
    if (access(folder, W_OK) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot write into %s: %s",
                    folder, g_strerror(errno));
        return false;
    }
    size = vmrpPointFindDisk(point, target)->size;   /* there: it has an image */
    if (copy && copy->started)
        copy->started(copy->opaque);
    return vmrpDiskConvert(image, output, format, target, size, copy, error);
}
