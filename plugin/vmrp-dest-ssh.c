/*
 * vmrp-dest-ssh.c: a destination repository on another host, over SFTP
 * (libssh): ssh://[user@]host[:port]/path
 *
 * - The host key must be in known_hosts ($VMRP_SSH_KNOWN_HOSTS, else
 *   ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts): an unknown or changed
 *   key stops the connection before anything is read or written, with the
 *   key's SHA-256 fingerprint in the error.  ~/.ssh/config is not read.
 * - Key authentication only: the key file $VMRP_SSH_IDENTITY, else the
 *   ssh-agent and ~/.ssh/id_*.  $VMRP_SSH_TIMEOUT (seconds, default 10)
 *   bounds the connection.
 * - A copied file crosses as its data extents (SEEK_DATA/SEEK_HOLE at the
 *   source, written at their offsets; the size set with setstat): holes
 *   stay holes.  The SHA-256 of the file's bytes is taken while it is sent;
 *   check_copy reads the file back and compares, and writes the digests to
 *   the point's SHA256SUMS (sha256sum's format), which rp-verify over ssh
 *   checks again later.  There is no qemu-img at the far end.
 * - No flock over SFTP: a collection is locked by creating .sftp-lock
 *   exclusively (host, pid, time in it) and removed at the end.  A lock left
 *   by a killed vmrp of this host (its pid is gone) is taken over, under a
 *   local flock so that two vmrps of this host never both do; one of
 *   another host is only reported: remove it by hand once that vmrp is
 *   known to be gone.
 * - Directories cannot be fsync'd over SFTP: files are (fsync@openssh.com),
 *   renames are as durable as the server's file system makes them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "vmrp-dest.h"
#include "vmrp-digest.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-state.h"

#define SSH_CHUNK (64 * 1024)           /* one SFTP read or write */
#define SSH_READ_AHEAD 32               /* reads in flight */
#define SSH_TIMEOUT_DEFAULT 10
#define SSH_SMALL_MAX (16 * 1024 * 1024)

typedef struct {
    vmrpDest base;
    char *user;
    char *host;
    int port;
    ssh_session session;
    sftp_session sftp;
    GHashTable *sent;           /* rel -> SHA-256 of what copy_file sent */
    char *lock_rel;             /* the .sftp-lock held */
} sshDest;

static sshDest *
sshOf(vmrpDest *dest)
{
    return (sshDest *)dest;
}

static char *
sshPath(vmrpDest *dest, const char *rel)
{
    if (!rel || !*rel)
        return g_strdup(dest->root);
    return g_build_filename(dest->root, rel, NULL);
}

static const char *
sftpReason(sshDest *d)
{
    switch (sftp_get_error(d->sftp)) {
    case SSH_FX_NO_SUCH_FILE:
    case SSH_FX_NO_SUCH_PATH:
        return "no such file or folder";
    case SSH_FX_PERMISSION_DENIED:
        return "permission denied";
    case SSH_FX_FILE_ALREADY_EXISTS:
        return "it exists already";
    case SSH_FX_EOF:
        return "it ends early";
    case SSH_FX_FAILURE:
        /* the server's errno is not sent (SFTP version 3) */
        if (ssh_get_error_code(d->session) == SSH_NO_ERROR)
            return "the server refused (a full file system, an existing name?)";
        break;
    default:
        break;
    }
    return ssh_get_error(d->session);
}

static bool
sftpFail(sshDest *d, GError **error, const char *what, const char *rel)
{
    g_autofree char *shown = g_strescape(sftpReason(d), NULL);

    g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s: cannot %s %s: %s", d->base.spec, what,
                rel && *rel ? rel : "its folder", shown);
    return false;
}

static bool
sftpNotFound(sshDest *d)
{
    int err = sftp_get_error(d->sftp);
    return err == SSH_FX_NO_SUCH_FILE || err == SSH_FX_NO_SUCH_PATH;
}

/* A folder, and the folders above it (mkdir -p): 0700 when made. */
static bool
sshMakeDir(vmrpDest *dest, const char *rel, GError **error)
{
    sshDest *d = sshOf(dest);
    g_autofree char *path = sshPath(dest, rel);
    g_auto(GStrv) parts = g_strsplit(path, "/", -1);
    g_autoptr(GString) cur = g_string_new("");
    guint i;

    for (i = 0; parts[i]; i++) {
        sftp_attributes st;

        if (!*parts[i])
            continue;
        g_string_append_printf(cur, "/%s", parts[i]);
        if (sftp_mkdir(d->sftp, cur->str, 0700) == 0)
            continue;
        if (!(st = sftp_stat(d->sftp, cur->str)))
            return sftpFail(d, error, "make the folder", cur->str);
        if (st->type != SSH_FILEXFER_TYPE_DIRECTORY) {
            sftp_attributes_free(st);
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s: %s is not a folder",
                        dest->spec, cur->str);
            return false;
        }
        sftp_attributes_free(st);
    }
    return true;
}

/* Writes all of @buf at the file's current offset. */
static bool
sftpWriteAll(sshDest *d, sftp_file f, const char *buf, size_t len, const char *rel,
             GError **error)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = sftp_write(f, buf + done, MIN((size_t)SSH_CHUNK, len - done));
        if (n <= 0)
            return sftpFail(d, error, "write", rel);
        done += n;
    }
    return true;
}

static void
putU32(GByteArray *b, uint32_t v)
{
    uint8_t be[4] = { v >> 24, v >> 16, v >> 8, v };
    g_byte_array_append(b, be, 4);
}

static void
putString(GByteArray *b, const char *s)
{
    putU32(b, strlen(s));
    g_byte_array_append(b, (const uint8_t *)s, strlen(s));
}

static uint32_t
getU32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool
channelReadAll(ssh_channel ch, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        int n = ssh_channel_read(ch, buf + got, len - got, 0);
        if (n <= 0)
            return false;
        got += n;
    }
    return true;
}

/* rename(2) over an existing file, atomically: posix-rename@openssh.com.
 * libssh 0.10 has no call for it (its sftp_rename is SFTP v3's RENAME,
 * which OpenSSH refuses over an existing file), so the request is sent on
 * the session's channel here and its STATUS reply read back; no other
 * request is in flight (every call in this file is synchronous). */
static int
sshPosixRename(sshDest *d, const char *from, const char *to)
{
    static const uint32_t id = 0x7f000001;  /* never one of libssh's (counted from 1) */
    g_autoptr(GByteArray) msg = g_byte_array_new();
    g_autoptr(GByteArray) pkt = g_byte_array_new();
    uint8_t hdr[4];
    g_autofree uint8_t *reply = NULL;
    uint32_t len;
    uint8_t type = 200;     /* SSH_FXP_EXTENDED */

    if (!sftp_extension_supported(d->sftp, "posix-rename@openssh.com", "1"))
        return sftp_rename(d->sftp, from, to);
    g_byte_array_append(msg, &type, 1);
    putU32(msg, id);
    putString(msg, "posix-rename@openssh.com");
    putString(msg, from);
    putString(msg, to);
    putU32(pkt, msg->len);
    g_byte_array_append(pkt, msg->data, msg->len);
    if (ssh_channel_write(d->sftp->channel, pkt->data, pkt->len) != (int)pkt->len ||
        !channelReadAll(d->sftp->channel, hdr, 4))
        return -1;
    len = getU32(hdr);
    if (len < 9 || len > 64 * 1024)
        return -1;
    reply = g_malloc(len);
    if (!channelReadAll(d->sftp->channel, reply, len))
        return -1;
    /* SSH_FXP_STATUS (101), our id, the status code */
    if (reply[0] != 101 || getU32(reply + 1) != id)
        return -1;
    d->sftp->errnum = (int)getU32(reply + 5);
    return d->sftp->errnum == SSH_FX_OK ? 0 : -1;
}

/* Written whole and fsync'd under a temporary name, then renamed over @rel
 * (posix-rename@openssh.com: it replaces an existing file). */
static bool
sshWriteFile(vmrpDest *dest, const char *rel, const char *data, size_t len, GError **error)
{
    sshDest *d = sshOf(dest);
    g_autofree char *path = sshPath(dest, rel);
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *tmp = g_strdup_printf("%s/.%s.tmp-%d-%08x", dir, base, (int)getpid(),
                                           g_random_int());
    sftp_file f;
    bool ok;

    if (!(f = sftp_open(d->sftp, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600)))
        return sftpFail(d, error, "create", rel);
    ok = sftpWriteAll(d, f, data, len, rel, error);
    if (ok && sftp_fsync(f) < 0)
        ok = sftpFail(d, error, "write", rel);
    if (sftp_close(f) < 0 && ok)
        ok = sftpFail(d, error, "write", rel);
    if (ok && sshPosixRename(d, tmp, path) < 0)
        ok = sftpFail(d, error, "rename into place", rel);
    if (!ok)
        sftp_unlink(d->sftp, tmp);
    return ok;
}

static bool
ioError(GError **error, const char *what, const char *path)
{
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s %s: %s", what, path, g_strerror(errno));
    return false;
}

/* Feeds @len zero bytes (a hole) into @dg. */
static void
digestZeroes(vmrpDigest *dg, const char *zeroes, uint64_t len)
{
    while (len > 0) {
        size_t n = MIN(len, (uint64_t)SSH_CHUNK);
        vmrpDigestAddBytes(dg, zeroes, n);
        len -= n;
    }
}

static bool
sshCopyFile(vmrpDest *dest, const char *src, const char *rel, vmrpDestProgressFunc progress,
            void *opaque, GCancellable *cancel, GError **error)
{
    sshDest *d = sshOf(dest);
    g_autofree char *path = sshPath(dest, rel);
    g_autofree char *buf = g_malloc(SSH_CHUNK);
    g_autofree char *zeroes = g_malloc0(SSH_CHUNK);
    g_autoptr(vmrpDigest) dg = vmrpDigestNew();
    struct sftp_attributes_struct attr = { 0 };
    sftp_file out = NULL;
    struct stat sb;
    off_t pos = 0;
    uint64_t done = 0;
    bool ok = false;
    int in;

    if ((in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return ioError(error, "cannot read", src);
    if (fstat(in, &sb) < 0) {
        ioError(error, "cannot read", src);
        goto cleanup;
    }
    if (!(out = sftp_open(d->sftp, path, O_WRONLY | O_CREAT | O_EXCL, 0600))) {
        sftpFail(d, error, "create", rel);
        goto cleanup;
    }
    attr.flags = SSH_FILEXFER_ATTR_SIZE;
    attr.size = sb.st_size;
    if (sftp_setstat(d->sftp, path, &attr) < 0) {
        sftpFail(d, error, "set the size of", rel);
        goto cleanup;
    }
    while (pos < sb.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        off_t hole;

        if (data < 0 && errno == ENXIO)
            break;              /* only a hole is left */
        if (data < 0 || (hole = lseek(in, data, SEEK_HOLE)) < 0) {
            ioError(error, "cannot read", src);
            goto cleanup;
        }
        digestZeroes(dg, zeroes, data - pos);
        if (sftp_seek64(out, data) < 0) {
            sftpFail(d, error, "write", rel);
            goto cleanup;
        }
        for (pos = data; pos < hole;) {
            ssize_t n = pread(in, buf, MIN((off_t)SSH_CHUNK, hole - pos), pos);

            if (g_cancellable_set_error_if_cancelled(cancel, error))
                goto cleanup;
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (n == 0)
                    errno = EIO;
                ioError(error, "cannot read", src);
                goto cleanup;
            }
            vmrpDigestAddBytes(dg, buf, n);
            if (!sftpWriteAll(d, out, buf, n, rel, error))
                goto cleanup;
            pos += n;
            done += n;
            if (progress)
                progress(done, opaque);
        }
    }
    digestZeroes(dg, zeroes, sb.st_size - MIN(pos, sb.st_size));
    if (sftp_fsync(out) < 0) {
        sftpFail(d, error, "write", rel);
        goto cleanup;
    }
    ok = true;

 cleanup:
    close(in);
    if (out && sftp_close(out) < 0 && ok)
        ok = sftpFail(d, error, "write", rel);
    if (ok)
        g_hash_table_replace(d->sent, g_strdup(rel), vmrpDigestFinish(dg, NULL));
    return ok;
}

typedef bool (*sshChunkFunc)(const char *buf, size_t len, uint64_t offset, void *opaque,
                             GError **error);

/* Reads the file @rel whole, in order, SSH_READ_AHEAD requests in flight;
 * NOT_FOUND when it does not exist. */
static bool
sshReadAll(sshDest *d, const char *rel, uint64_t max, sshChunkFunc func, void *opaque,
           GCancellable *cancel, GError **error)
{
    g_autofree char *path = sshPath(&d->base, rel);
    g_autofree char *buf = g_malloc(SSH_CHUNK);
    int ids[SSH_READ_AHEAD];
    guint head = 0, inflight = 0;
    uint64_t offset = 0;
    bool eof = false, ok = true, short_read = false;
    sftp_file f;

    if (!(f = sftp_open(d->sftp, path, O_RDONLY, 0))) {
        if (sftpNotFound(d)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND, "%s: %s is missing",
                        d->base.spec, rel);
            return false;
        }
        return sftpFail(d, error, "read", rel);
    }
    while (!eof || inflight > 0) {
        int n;

        while (ok && !eof && inflight < SSH_READ_AHEAD) {
            int id = sftp_async_read_begin(f, SSH_CHUNK);
            if (id < 0) {
                ok = sftpFail(d, error, "read", rel);
                eof = true;
                break;
            }
            ids[(head + inflight) % SSH_READ_AHEAD] = id;
            inflight++;
        }
        if (inflight == 0)
            break;
        n = sftp_async_read(f, buf, SSH_CHUNK, ids[head]);
        head = (head + 1) % SSH_READ_AHEAD;
        inflight--;
        if (!ok)
            continue;           /* drain what is in flight */
        if (n < 0) {
            ok = sftpFail(d, error, "read", rel);
            eof = true;
        } else if (n == 0) {
            eof = true;
        } else if (short_read) {
            /* the reads in flight were asked at offsets a short one has shifted */
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO,
                        "%s: cannot read %s: the server returned a short read", d->base.spec,
                        rel);
            ok = false;
            eof = true;
        } else if (offset + n > max) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "%s: %s is too large",
                        d->base.spec, rel);
            ok = false;
            eof = true;
        } else if (g_cancellable_set_error_if_cancelled(cancel, error) ||
                   !func(buf, n, offset, opaque, error)) {
            ok = false;
            eof = true;
        } else {
            offset += n;
            short_read = n < SSH_CHUNK;
        }
    }
    sftp_close(f);
    return ok;
}

static bool
collectChunk(const char *buf, size_t len, uint64_t offset, void *opaque, GError **error)
{
    g_string_append_len(opaque, buf, len);
    return true;
}

static char *
sshReadFile(vmrpDest *dest, const char *rel, size_t max, GError **error)
{
    g_autoptr(GString) text = g_string_new(NULL);
    g_autoptr(GError) local = NULL;

    if (!sshReadAll(sshOf(dest), rel, max, collectChunk, text, NULL, &local)) {
        if (g_error_matches(local, VMRP_ERROR, VMRP_ERROR_NOT_FOUND))
            return NULL;
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    if (strlen(text->str) != text->len) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "%s: %s holds a NUL byte",
                    dest->spec, rel);
        return NULL;
    }
    return g_string_free(g_steal_pointer(&text), FALSE);
}

static bool
digestChunk(const char *buf, size_t len, uint64_t offset, void *opaque, GError **error)
{
    vmrpDigestAddBytes(opaque, buf, len);
    return true;
}

static char *
sshDigestFile(vmrpDest *dest, const char *rel, GCancellable *cancel, GError **error)
{
    g_autoptr(vmrpDigest) dg = vmrpDigestNew();

    if (!sshReadAll(sshOf(dest), rel, G_MAXUINT64, digestChunk, dg, cancel, error))
        return NULL;
    return vmrpDigestFinish(dg, NULL);
}

typedef struct {
    int fd;
    const char *path;
    vmrpDigest *dg;
    vmrpDestProgressFunc progress;
    void *opaque;
} fetchState;

static bool
isZero(const char *buf, size_t len)
{
    return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

static bool
fetchChunk(const char *buf, size_t len, uint64_t offset, void *opaque, GError **error)
{
    fetchState *fs = opaque;
    size_t done = 0;

    vmrpDigestAddBytes(fs->dg, buf, len);
    /* zeroes stay a hole (the file gets its size at the end) */
    while (!isZero(buf, len) && done < len) {
        ssize_t w = pwrite(fs->fd, buf + done, len - done, offset + done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return ioError(error, "cannot write", fs->path);
        done += w;
    }
    if (fs->progress)
        fs->progress(offset + len, fs->opaque);
    return true;
}

static bool
sshFetchFile(vmrpDest *dest, const char *rel, const char *path, vmrpDestProgressFunc progress,
             void *opaque, GCancellable *cancel, char **ret_sha256, GError **error)
{
    g_autoptr(vmrpDigest) dg = vmrpDigestNew();
    fetchState fs = { -1, path, dg, progress, opaque };
    int64_t size;
    bool ok;

    if ((size = dest->ops->file_size(dest, rel, error)) < 0)
        return false;
    if ((fs.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return ioError(error, "cannot create", path);
    ok = sshReadAll(sshOf(dest), rel, G_MAXUINT64, fetchChunk, &fs, cancel, error);
    if (ok && ftruncate(fs.fd, size) < 0)
        ok = ioError(error, "cannot write", path);
    if (ok && fsync(fs.fd) < 0)
        ok = ioError(error, "cannot write", path);
    if (close(fs.fd) < 0 && ok)
        ok = ioError(error, "cannot write", path);
    if (ok)
        *ret_sha256 = vmrpDigestFinish(dg, NULL);
    return ok;
}

static int64_t
sshFileSize(vmrpDest *dest, const char *rel, GError **error)
{
    sshDest *d = sshOf(dest);
    g_autofree char *path = sshPath(dest, rel);
    sftp_attributes st = sftp_lstat(d->sftp, path);
    int64_t size;

    if (!st) {
        sftpFail(d, error, "read", rel);
        return -1;
    }
    size = st->type == SSH_FILEXFER_TYPE_REGULAR ? (int64_t)st->size : -1;
    sftp_attributes_free(st);
    if (size < 0)
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "%s: %s is not a regular file",
                    dest->spec, rel);
    return size;
}

static GPtrArray *
sshList(vmrpDest *dest, const char *rel, GError **error)
{
    sshDest *d = sshOf(dest);
    g_autofree char *path = sshPath(dest, rel);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    sftp_attributes ent;
    sftp_dir dir;

    if (!(dir = sftp_opendir(d->sftp, path))) {
        if (!sftpNotFound(d))
            sftpFail(d, error, "list", rel);
        return NULL;
    }
    while ((ent = sftp_readdir(d->sftp, dir))) {
        if (!g_str_equal(ent->name, ".") && !g_str_equal(ent->name, ".."))
            g_ptr_array_add(names, g_strdup(ent->name));
        sftp_attributes_free(ent);
    }
    if (!sftp_dir_eof(dir)) {
        sftp_closedir(dir);
        sftpFail(d, error, "list", rel);
        return NULL;
    }
    sftp_closedir(dir);
    return g_steal_pointer(&names);
}

static bool
sshRename(vmrpDest *dest, const char *from, const char *to, GError **error)
{
    sshDest *d = sshOf(dest);
    g_autofree char *a = sshPath(dest, from);
    g_autofree char *b = sshPath(dest, to);

    if (sftp_rename(d->sftp, a, b) < 0)
        return sftpFail(d, error, "rename", from);
    return true;
}

static bool
sshRemovePath(sshDest *d, const char *path, int depth, GError **error)
{
    sftp_attributes st = sftp_lstat(d->sftp, path);
    sftp_attributes ent;
    sftp_dir dir;
    bool ok = true;

    if (!st)
        return sftpNotFound(d) ? true : sftpFail(d, error, "remove", path);
    if (st->type != SSH_FILEXFER_TYPE_DIRECTORY) {
        sftp_attributes_free(st);
        return sftp_unlink(d->sftp, path) == 0 || sftpNotFound(d) ||
               sftpFail(d, error, "remove", path);
    }
    sftp_attributes_free(st);
    if (depth > 32 || !(dir = sftp_opendir(d->sftp, path)))
        return sftpFail(d, error, "remove", path);
    while (ok && (ent = sftp_readdir(d->sftp, dir))) {
        if (!g_str_equal(ent->name, ".") && !g_str_equal(ent->name, "..")) {
            g_autofree char *sub = g_build_filename(path, ent->name, NULL);
            ok = sshRemovePath(d, sub, depth + 1, error);
        }
        sftp_attributes_free(ent);
    }
    sftp_closedir(dir);
    if (ok && sftp_rmdir(d->sftp, path) < 0 && !sftpNotFound(d))
        ok = sftpFail(d, error, "remove", path);
    return ok;
}

static bool
sshRemoveTree(vmrpDest *dest, const char *rel, GError **error)
{
    g_autofree char *path = sshPath(dest, rel);
    return sshRemovePath(sshOf(dest), path, 0, error);
}

static bool
sshSyncDir(vmrpDest *dest, const char *rel, GError **error)
{
    return true;        /* no fsync of a folder over SFTP (see the top) */
}

/* The holder of a lock file's text: host and pid (0 when unreadable). */
static void
lockParse(const char *text, char **ret_host, long *ret_pid, char **ret_time)
{
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", 8);
    guint i;

    for (i = 0; lines[i]; i++) {
        if (g_str_has_prefix(lines[i], "host "))
            *ret_host = g_strdup(lines[i] + 5);
        else if (g_str_has_prefix(lines[i], "pid "))
            *ret_pid = strtol(lines[i] + 4, NULL, 10);
        else if (g_str_has_prefix(lines[i], "time "))
            *ret_time = g_strdup(lines[i] + 5);
    }
}

static bool
lockCreate(sshDest *d, const char *path, const char *text)
{
    sftp_file f = sftp_open(d->sftp, path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    bool ok;

    if (!f)
        return false;
    ok = sftp_write(f, text, strlen(text)) == (ssize_t)strlen(text) && sftp_fsync(f) == 0;
    if (sftp_close(f) < 0)
        ok = false;
    if (!ok)
        sftp_unlink(d->sftp, path);
    return ok;
}

/* Serializes the takeover of stale locks among the vmrps of this host. */
static int
lockLocalGuard(void)
{
    g_autofree char *path = g_build_filename(vmrpStateDir(), "sftp-lock.guard", NULL);
    int fd;

    if (g_mkdir_with_parents(vmrpStateDir(), 0711) < 0 ||
        (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return -1;
    if (flock(fd, LOCK_EX) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
sshLock(vmrpDest *dest, const char *rel, GError **error)
{
    sshDest *d = sshOf(dest);
    g_autofree char *dir = g_path_get_dirname(rel);
    g_autofree char *lrel = g_build_filename(dir, VMRP_DEST_SFTP_LOCK, NULL);
    g_autofree char *path = sshPath(dest, lrel);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *when = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    g_autofree char *text = g_strdup_printf("vmrp lock\nhost %s\npid %d\ntime %s\n",
                                            g_get_host_name(), (int)getpid(), when);
    g_autofree char *held = NULL;
    g_autofree char *host = NULL;
    g_autofree char *since = NULL;
    long pid = 0;
    int guard;

    if (lockCreate(d, path, text))
        goto locked;
    if (!(held = sshReadFile(dest, lrel, 4096, error))) {
        if (error && *error)
            return -1;
        if (lockCreate(d, path, text))   /* removed in between */
            goto locked;
        sftpFail(d, error, "create the lock", lrel);
        return -1;
    }
    lockParse(held, &host, &pid, &since);
    /* a lock of this host whose vmrp is gone: taken over */
    if (pid > 0 && g_strcmp0(host, g_get_host_name()) == 0 && kill(pid, 0) < 0 &&
        errno == ESRCH && (guard = lockLocalGuard()) >= 0) {
        g_autofree char *again = sshReadFile(dest, lrel, 4096, NULL);
        bool taken = false;

        if (g_strcmp0(again, held) == 0 && sftp_unlink(d->sftp, path) == 0)
            taken = lockCreate(d, path, text);
        close(guard);
        if (taken)
            goto locked;
    }
    {
        g_autofree char *h = g_strescape(host ? host : "?", NULL);
        g_autofree char *t = g_strescape(since ? since : "?", NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                    "%s is busy: locked by vmrp pid %ld on host %s since %s (if no such vmrp "
                    "runs, remove %s there)", dest->spec, pid, h, t, path);
    }
    return -1;

 locked:
    g_free(d->lock_rel);
    d->lock_rel = g_steal_pointer(&lrel);
    return 1;
}

static void
sshUnlock(vmrpDest *dest, int handle)
{
    sshDest *d = sshOf(dest);

    if (handle < 0 || !d->lock_rel)
        return;
    {
        g_autofree char *path = sshPath(dest, d->lock_rel);
        sftp_unlink(d->sftp, path);
    }
    g_clear_pointer(&d->lock_rel, g_free);
}

static char *
sshLocalPath(vmrpDest *dest, const char *rel)
{
    return NULL;
}

static gint
compareNames(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *
sshCheckCopy(vmrpDest *dest, const char *dir, GPtrArray *files, GError **error)
{
    sshDest *d = sshOf(dest);
    g_autoptr(GString) sums = g_string_new(NULL);
    g_autoptr(GPtrArray) sorted = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *sums_rel = g_build_filename(dir, VMRP_DEST_SUMS, NULL);
    guint i;

    for (i = 0; i < files->len; i++)
        g_ptr_array_add(sorted, g_strdup(g_ptr_array_index(files, i)));
    g_ptr_array_sort(sorted, compareNames);
    for (i = 0; i < sorted->len; i++) {
        const char *name = g_ptr_array_index(sorted, i);
        g_autofree char *rel = g_build_filename(dir, name, NULL);
        const char *sent = g_hash_table_lookup(d->sent, rel);
        g_autofree char *there = NULL;

        if (!sent)
            return g_strdup_printf("%s was not sent", name);
        if (!(there = sshDigestFile(dest, rel, NULL, error)))
            return NULL;
        if (!g_str_equal(sent, there))
            return g_strdup_printf("%s read back does not match the SHA-256 of what was sent",
                                   name);
        g_string_append_printf(sums, "%s  %s\n", sent, name);
    }
    if (!sshWriteFile(dest, sums_rel, sums->str, sums->len, error))
        return NULL;
    return NULL;
}

static void
sshClose(vmrpDest *dest)
{
    sshDest *d = sshOf(dest);

    if (d->lock_rel)
        sshUnlock(dest, 1);
    if (d->sftp)
        sftp_free(d->sftp);
    if (d->session) {
        ssh_disconnect(d->session);
        ssh_free(d->session);
    }
    if (d->sent)
        g_hash_table_unref(d->sent);
    g_free(d->user);
    g_free(d->host);
}

static const vmrpDestOps sshOps = {
    .scheme = "ssh",
    .make_dir = sshMakeDir,
    .write_file = sshWriteFile,
    .copy_file = sshCopyFile,
    .read_file = sshReadFile,
    .list = sshList,
    .rename = sshRename,
    .remove_tree = sshRemoveTree,
    .sync_dir = sshSyncDir,
    .lock = sshLock,
    .unlock = sshUnlock,
    .local_path = sshLocalPath,
    .close = sshClose,
    .check_copy = sshCheckCopy,
    .digest_file = sshDigestFile,
    .fetch_file = sshFetchFile,
    .file_size = sshFileSize,
};

/* ssh://[user@]host[:port]/path: an absolute path without '..', backslashes
 * or control characters. */
static bool
sshParse(sshDest *d, const char *spec, GError **error)
{
    g_autofree char *shown = g_strescape(spec, NULL);
    g_autoptr(GUri) uri = g_uri_parse(spec, G_URI_FLAGS_NONE, NULL);
    const char *path;
    const char *p;

    if (!uri || !g_uri_get_host(uri) || !*g_uri_get_host(uri) || g_uri_get_query(uri) ||
        g_uri_get_fragment(uri) || !(path = g_uri_get_path(uri)) || path[0] != '/' ||
        g_str_equal(path, "/")) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "destination '%s': expected ssh://[user@]host[:port]/path", shown);
        return false;
    }
    for (p = path; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\') {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "destination '%s': the path holds a control character or '\\'", shown);
            return false;
        }
    }
    if (strstr(path, "/../") || g_str_has_suffix(path, "/..")) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "destination '%s': the path holds '..'", shown);
        return false;
    }
    d->host = g_strdup(g_uri_get_host(uri));
    d->port = g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : 22;
    d->user = g_strdup(g_uri_get_user(uri));
    d->base.root = g_canonicalize_filename(path, "/");
    return true;
}

/* The host key against known_hosts: anything but a known, matching key is
 * refused, naming the host and the key's fingerprint. */
static bool
sshCheckHostKey(sshDest *d, const char *known, GError **error)
{
    ssh_key key = NULL;
    unsigned char *hash = NULL;
    size_t hlen = 0;
    g_autofree char *fp = NULL;
    g_autofree char *where = g_strdup_printf("%s port %d", d->host, d->port);
    enum ssh_known_hosts_e state;
    char *tmp;

    if (ssh_get_server_publickey(d->session, &key) < 0 ||
        ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) < 0) {
        ssh_key_free(key);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "%s: no host key from %s: %s",
                    d->base.spec, where, ssh_get_error(d->session));
        return false;
    }
    tmp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    fp = g_strdup_printf("%s %s", ssh_key_type_to_char(ssh_key_type(key)), tmp);
    ssh_string_free_char(tmp);
    ssh_clean_pubkey_hash(&hash);
    ssh_key_free(key);

    state = ssh_session_is_known_server(d->session);
    switch (state) {
    case SSH_KNOWN_HOSTS_OK:
        return true;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "the host key of %s (%s) does not match the one in %s: refused, nothing "
                    "written (a changed key can mean an attack; fix known_hosts only once "
                    "the new key is confirmed)", where, fp, known);
        return false;
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "the host key of %s (%s) is not in %s: refused, nothing written (add it "
                    "once the fingerprint is confirmed, e.g. with ssh-keyscan -p %d %s)",
                    where, fp, known, d->port, d->host);
        return false;
    default:
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "cannot check the host key of %s "
                    "(%s) against %s: %s", where, fp, known, ssh_get_error(d->session));
        return false;
    }
}

static bool
sshAuth(sshDest *d, GError **error)
{
    const char *identity = g_getenv("VMRP_SSH_IDENTITY");
    int rc;

    if (identity && *identity) {
        ssh_key key = NULL;

        if (ssh_pki_import_privkey_file(identity, NULL, NULL, NULL, &key) != SSH_OK) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "cannot read the key %s (VMRP_SSH_IDENTITY; a key without a "
                        "passphrase, or use an ssh-agent)", identity);
            return false;
        }
        rc = ssh_userauth_publickey(d->session, NULL, key);
        ssh_key_free(key);
    } else {
        rc = ssh_userauth_publickey_auto(d->session, NULL, NULL);
    }
    if (rc != SSH_AUTH_SUCCESS) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "%s: the server refused the key (%s; key authentication only: an "
                    "ssh-agent, ~/.ssh/id_* or VMRP_SSH_IDENTITY)", d->base.spec,
                    identity && *identity ? identity : "ssh-agent and ~/.ssh/id_*");
        return false;
    }
    return true;
}

vmrpDest *
vmrpDestSshOpen(const char *spec, GError **error)
{
    g_autoptr(vmrpDest) dest = (vmrpDest *)g_new0(sshDest, 1);
    sshDest *d = sshOf(dest);
    const char *known = g_getenv("VMRP_SSH_KNOWN_HOSTS");
    const char *tmo = g_getenv("VMRP_SSH_TIMEOUT");
    g_autofree char *known_default = NULL;
    long timeout = tmo && atol(tmo) > 0 ? atol(tmo) : SSH_TIMEOUT_DEFAULT;
    int no = 0, yes = 1;

    dest->ops = &sshOps;
    dest->spec = g_strdup(spec);
    d->sent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (!sshParse(d, spec, error))
        return NULL;
    if (!(d->session = ssh_new())) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "cannot start an ssh session");
        return NULL;
    }
    ssh_options_set(d->session, SSH_OPTIONS_PROCESS_CONFIG, &no);
    ssh_options_set(d->session, SSH_OPTIONS_HOST, d->host);
    ssh_options_set(d->session, SSH_OPTIONS_PORT, &d->port);
    ssh_options_set(d->session, SSH_OPTIONS_TIMEOUT, &timeout);
    /* each SFTP write waits for its reply: no Nagle delay on it */
    ssh_options_set(d->session, SSH_OPTIONS_NODELAY, &yes);
    if (d->user)
        ssh_options_set(d->session, SSH_OPTIONS_USER, d->user);
    if (known && *known) {
        /* only this file */
        ssh_options_set(d->session, SSH_OPTIONS_KNOWNHOSTS, known);
        ssh_options_set(d->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, known);
    } else {
        known_default = g_build_filename(g_get_home_dir(), ".ssh", "known_hosts", NULL);
        known = known_default;
    }
    if (ssh_connect(d->session) != SSH_OK) {
        g_autofree char *why = g_strescape(ssh_get_error(d->session), NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "cannot connect to %s port %d (timeout %ld s): %s", d->host, d->port,
                    timeout, why);
        return NULL;
    }
    if (!sshCheckHostKey(d, known, error) || !sshAuth(d, error))
        return NULL;
    if (!(d->sftp = sftp_new(d->session)) || sftp_init(d->sftp) != SSH_OK) {
        g_autofree char *why = g_strescape(ssh_get_error(d->session), NULL);
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "%s: no SFTP service: %s", spec,
                    why);
        return NULL;
    }
    return g_steal_pointer(&dest);
}
