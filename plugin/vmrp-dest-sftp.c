/*
 * vmrp-dest-sftp.c: the file operations of the ssh:// destination over
 * SFTP (libssh); the connection is vmrp-dest-ssh.c's (see there)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmrp-dest-ssh-priv.h"
#include "vmrp-digest.h"
#include "vmrp-error.h"

char *
vmrpSftpPath(vmrpDest *dest, const char *rel)
{
    if (!rel || !*rel)
        return g_strdup(dest->root);
    return g_build_filename(dest->root, rel, NULL);
}

static const char *
sftpReason(vmrpSshDest *d)
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
        return "the server refused it (a full file system? an existing name?)";
    default:
        break;
    }
    return ssh_get_error(d->session);
}

bool
vmrpSftpFail(vmrpSshDest *d, GError **error, const char *what, const char *rel)
{
    g_autofree char *shown = g_strescape(sftpReason(d), NULL);

    g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s: cannot %s %s: %s", d->base.spec, what,
                rel && *rel ? rel : "its folder", shown);
    return false;
}

static bool
sftpNotFound(vmrpSshDest *d)
{
    int err = sftp_get_error(d->sftp);
    return err == SSH_FX_NO_SUCH_FILE || err == SSH_FX_NO_SUCH_PATH;
}

/* A folder, and the folders above it (mkdir -p): 0700 when made. */
bool
vmrpSftpMakeDir(vmrpDest *dest, const char *rel, GError **error)
{
    vmrpSshDest *d = vmrpSshOf(dest);
    g_autofree char *path = vmrpSftpPath(dest, rel);
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
            return vmrpSftpFail(d, error, "make the folder", cur->str);
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
sftpWriteAll(vmrpSshDest *d, sftp_file f, const char *buf, size_t len, const char *rel,
             GError **error)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = sftp_write(f, buf + done, MIN((size_t)SSH_CHUNK, len - done));
        if (n <= 0)
            return vmrpSftpFail(d, error, "write", rel);
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
sshPosixRename(vmrpSshDest *d, const char *from, const char *to)
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

/* Reads one reply off the session's channel into @ret (its payload). */
static bool
channelReadReply(ssh_channel ch, GByteArray *ret)
{
    uint8_t hdr[4];
    uint32_t len;

    if (!channelReadAll(ch, hdr, 4) || (len = getU32(hdr)) < 9 || len > 256 * 1024)
        return false;
    g_byte_array_set_size(ret, len);
    return channelReadAll(ch, ret->data, len);
}

/* Pipelined writes: SSH_WRITE_AHEAD SSH_FXP_WRITE requests in flight, their
 * STATUS replies read as they come.  libssh 0.10 only writes one request
 * and waits for its reply (a round trip per 64 KiB: latency bound over a
 * real network), so the requests are sent on the session's channel here,
 * with the file's handle, while no other request is in flight. */
#define SSH_WRITE_AHEAD 16
#define SSH_WRITE_ID0 0x7e000000u     /* far from libssh's ids (counted from 1) */

typedef struct {
    vmrpSshDest *d;
    sftp_file f;
    const char *rel;
    uint32_t next_id;
    guint inflight;
    bool failed;
} sftpWriter;

/* One reply; false (error set once) when the write failed. */
static bool
writerReap(sftpWriter *w, GError **error)
{
    g_autoptr(GByteArray) reply = g_byte_array_new();
    uint32_t id, status;

    w->inflight--;
    if (!channelReadReply(w->d->sftp->channel, reply) || reply->data[0] != SSH_FXP_STATUS ||
        (id = getU32(reply->data + 1)) < SSH_WRITE_ID0 || id >= w->next_id) {
        if (!w->failed)
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s: cannot write %s: the SFTP "
                        "session broke (%s)", w->d->base.spec, w->rel,
                        ssh_get_error(w->d->session));
        w->failed = true;
        w->inflight = 0;        /* nothing more can be read in step */
        return false;
    }
    status = getU32(reply->data + 5);
    if (status != SSH_FX_OK) {
        w->d->sftp->errnum = (int)status;
        if (!w->failed)
            vmrpSftpFail(w->d, error, "write", w->rel);
        w->failed = true;
        return false;
    }
    return true;
}

/* Waits for every write in flight; false when one failed. */
static bool
writerFlush(sftpWriter *w, GError **error)
{
    while (w->inflight > 0)
        writerReap(w, error);
    return !w->failed;
}

static bool
writerPut(sftpWriter *w, uint64_t offset, const char *buf, size_t len, GError **error)
{
    g_autoptr(GByteArray) pkt = g_byte_array_sized_new(len + 64);
    ssh_string handle = w->f->handle;
    uint8_t type = SSH_FXP_WRITE;
    uint8_t off[8];
    int i;

    while (!w->failed && w->inflight >= SSH_WRITE_AHEAD)
        writerReap(w, error);
    if (w->failed)
        return writerFlush(w, NULL);
    for (i = 0; i < 8; i++)
        off[i] = offset >> (56 - 8 * i);
    putU32(pkt, 1 + 4 + 4 + ssh_string_len(handle) + 8 + 4 + len);
    g_byte_array_append(pkt, &type, 1);
    putU32(pkt, w->next_id++);
    putU32(pkt, ssh_string_len(handle));
    g_byte_array_append(pkt, ssh_string_data(handle), ssh_string_len(handle));
    g_byte_array_append(pkt, off, 8);
    putU32(pkt, len);
    g_byte_array_append(pkt, (const uint8_t *)buf, len);
    if (ssh_channel_write(w->d->sftp->channel, pkt->data, pkt->len) != (int)pkt->len) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "%s: cannot write %s: %s",
                    w->d->base.spec, w->rel, ssh_get_error(w->d->session));
        w->failed = true;
        return false;
    }
    w->inflight++;
    return true;
}

/* Written whole and fsync'd under a temporary name, then renamed over @rel
 * (posix-rename@openssh.com: it replaces an existing file). */
bool
vmrpSftpWriteFile(vmrpDest *dest, const char *rel, const char *data, size_t len, GError **error)
{
    vmrpSshDest *d = vmrpSshOf(dest);
    g_autofree char *path = vmrpSftpPath(dest, rel);
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *tmp = g_strdup_printf("%s/.%s.tmp-%d-%08x", dir, base, (int)getpid(),
                                           g_random_int());
    sftp_file f;
    bool ok;

    if (!(f = sftp_open(d->sftp, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600)))
        return vmrpSftpFail(d, error, "create", rel);
    ok = sftpWriteAll(d, f, data, len, rel, error);
    if (ok && sftp_fsync(f) < 0)
        ok = vmrpSftpFail(d, error, "write", rel);
    if (sftp_close(f) < 0 && ok)
        ok = vmrpSftpFail(d, error, "write", rel);
    if (ok && sshPosixRename(d, tmp, path) < 0)
        ok = vmrpSftpFail(d, error, "rename into place", rel);
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

bool
vmrpSftpCopyFile(vmrpDest *dest, const char *src, const char *rel, vmrpDestProgressFunc progress,
                 void *opaque, GCancellable *cancel, GError **error)
{
    vmrpSshDest *d = vmrpSshOf(dest);
    g_autofree char *path = vmrpSftpPath(dest, rel);
    g_autofree char *buf = g_malloc(SSH_CHUNK);
    g_autofree char *zeroes = g_malloc0(SSH_CHUNK);
    g_autoptr(vmrpDigest) dg = vmrpDigestNew(VMRP_DIGEST_SHA256);
    struct sftp_attributes_struct attr = { 0 };
    sftp_file out = NULL;
    sftpWriter w = { d, NULL, rel, SSH_WRITE_ID0, 0, false };
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
        vmrpSftpFail(d, error, "create", rel);
        goto cleanup;
    }
    w.f = out;
    attr.flags = SSH_FILEXFER_ATTR_SIZE;
    attr.size = sb.st_size;
    if (sftp_setstat(d->sftp, path, &attr) < 0) {
        vmrpSftpFail(d, error, "set the size of", rel);
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
            if (!writerPut(&w, pos, buf, n, error))
                goto cleanup;
            pos += n;
            done += n;
            if (progress)
                progress(done, pos, opaque);
        }
    }
    digestZeroes(dg, zeroes, sb.st_size - MIN(pos, sb.st_size));
    if (!writerFlush(&w, error))
        goto cleanup;
    if (sftp_fsync(out) < 0) {
        vmrpSftpFail(d, error, "write", rel);
        goto cleanup;
    }
    ok = true;

 cleanup:
    close(in);
    writerFlush(&w, NULL);      /* nothing of ours left on the channel */
    if (out && sftp_close(out) < 0 && ok)
        ok = vmrpSftpFail(d, error, "write", rel);
    if (ok)
        g_hash_table_replace(d->sent, g_strdup(rel), vmrpDigestFinish(dg, NULL));
    return ok;
}

typedef bool (*sshChunkFunc)(const char *buf, size_t len, uint64_t offset, void *opaque,
                             GError **error);

/* Reads the file @rel whole, in order, SSH_READ_AHEAD requests in flight;
 * NOT_FOUND when it does not exist. */
static bool
sshReadAll(vmrpSshDest *d, const char *rel, uint64_t max, sshChunkFunc func, void *opaque,
           GCancellable *cancel, GError **error)
{
    g_autofree char *path = vmrpSftpPath(&d->base, rel);
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
        return vmrpSftpFail(d, error, "read", rel);
    }
    while (!eof || inflight > 0) {
        int n;

        while (ok && !eof && inflight < SSH_READ_AHEAD) {
            int id = sftp_async_read_begin(f, SSH_CHUNK);
            if (id < 0) {
                ok = vmrpSftpFail(d, error, "read", rel);
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
            ok = vmrpSftpFail(d, error, "read", rel);
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

char *
vmrpSftpReadFile(vmrpDest *dest, const char *rel, size_t max, GError **error)
{
    g_autoptr(GString) text = g_string_new(NULL);
    g_autoptr(GError) local = NULL;

    if (!sshReadAll(vmrpSshOf(dest), rel, max, collectChunk, text, NULL, &local)) {
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
    GPtrArray *dgs = opaque;
    guint i;

    for (i = 0; i < dgs->len; i++)
        vmrpDigestAddBytes(g_ptr_array_index(dgs, i), buf, len);
    return true;
}

GStrv
vmrpSftpDigestFile(vmrpDest *dest, const char *rel, guint n,
                   const vmrpDigestAlgorithm *algorithms, GCancellable *cancel, GError **error)
{
    g_autoptr(GPtrArray) dgs = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpDigestFree);
    GStrv ret;
    guint i;

    for (i = 0; i < n; i++)
        g_ptr_array_add(dgs, vmrpDigestNew(algorithms[i]));
    if (!sshReadAll(vmrpSshOf(dest), rel, G_MAXUINT64, digestChunk, dgs, cancel, error))
        return NULL;
    ret = g_new0(char *, n + 1);
    for (i = 0; i < n; i++)
        ret[i] = vmrpDigestFinish(g_ptr_array_index(dgs, i), NULL);
    return ret;
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
        fs->progress(offset + len, offset + len, fs->opaque);
    return true;
}

bool
vmrpSftpFetchFile(vmrpDest *dest, const char *rel, const char *path, vmrpDestProgressFunc progress,
                  void *opaque, GCancellable *cancel, char **ret_sha256, GError **error)
{
    g_autoptr(vmrpDigest) dg = vmrpDigestNew(VMRP_DIGEST_SHA256);
    fetchState fs = { -1, path, dg, progress, opaque };
    int64_t size;
    bool ok;

    if ((size = dest->ops->file_size(dest, rel, error)) < 0)
        return false;
    if ((fs.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return ioError(error, "cannot create", path);
    ok = sshReadAll(vmrpSshOf(dest), rel, G_MAXUINT64, fetchChunk, &fs, cancel, error);
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

int64_t
vmrpSftpFileSize(vmrpDest *dest, const char *rel, GError **error)
{
    vmrpSshDest *d = vmrpSshOf(dest);
    g_autofree char *path = vmrpSftpPath(dest, rel);
    sftp_attributes st = sftp_lstat(d->sftp, path);
    int64_t size;

    if (!st) {
        vmrpSftpFail(d, error, "read", rel);
        return -1;
    }
    size = st->type == SSH_FILEXFER_TYPE_REGULAR ? (int64_t)st->size : -1;
    sftp_attributes_free(st);
    if (size < 0)
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "%s: %s is not a regular file",
                    dest->spec, rel);
    return size;
}

/* A name as a folder listing may hold: a hostile server's "../x" is none. */
static bool
sshNameOk(const char *name)
{
    return name && *name && !strchr(name, '/');
}

GPtrArray *
vmrpSftpList(vmrpDest *dest, const char *rel, GError **error)
{
    vmrpSshDest *d = vmrpSshOf(dest);
    g_autofree char *path = vmrpSftpPath(dest, rel);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    sftp_attributes ent;
    sftp_dir dir;

    if (!(dir = sftp_opendir(d->sftp, path))) {
        if (!sftpNotFound(d))
            vmrpSftpFail(d, error, "list", rel);
        return NULL;
    }
    while ((ent = sftp_readdir(d->sftp, dir))) {
        if (!sshNameOk(ent->name)) {
            g_autofree char *shown = g_strescape(ent->name, NULL);
            sftp_attributes_free(ent);
            sftp_closedir(dir);
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "%s: the server lists '%s' in %s: not a file name", dest->spec, shown,
                        rel && *rel ? rel : "its folder");
            return NULL;
        }
        if (!g_str_equal(ent->name, ".") && !g_str_equal(ent->name, ".."))
            g_ptr_array_add(names, g_strdup(ent->name));
        sftp_attributes_free(ent);
    }
    if (!sftp_dir_eof(dir)) {
        sftp_closedir(dir);
        vmrpSftpFail(d, error, "list", rel);
        return NULL;
    }
    sftp_closedir(dir);
    return g_steal_pointer(&names);
}

bool
vmrpSftpRename(vmrpDest *dest, const char *from, const char *to, GError **error)
{
    vmrpSshDest *d = vmrpSshOf(dest);
    g_autofree char *a = vmrpSftpPath(dest, from);
    g_autofree char *b = vmrpSftpPath(dest, to);

    if (sftp_rename(d->sftp, a, b) < 0)
        return vmrpSftpFail(d, error, "rename", from);
    return true;
}

static bool
sshRemovePath(vmrpSshDest *d, const char *path, int depth, GError **error)
{
    sftp_attributes st = sftp_lstat(d->sftp, path);
    sftp_attributes ent;
    sftp_dir dir;
    bool ok = true;

    if (!st)
        return sftpNotFound(d) ? true : vmrpSftpFail(d, error, "remove", path);
    if (st->type != SSH_FILEXFER_TYPE_DIRECTORY) {
        sftp_attributes_free(st);
        return sftp_unlink(d->sftp, path) == 0 || sftpNotFound(d) ||
               vmrpSftpFail(d, error, "remove", path);
    }
    sftp_attributes_free(st);
    if (depth > 32 || !(dir = sftp_opendir(d->sftp, path)))
        return vmrpSftpFail(d, error, "remove", path);
    while (ok && (ent = sftp_readdir(d->sftp, dir))) {
        if (!sshNameOk(ent->name)) {
            ok = false;
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "%s: the server lists a name with '/' in %s", d->base.spec, path);
        } else if (!g_str_equal(ent->name, ".") && !g_str_equal(ent->name, "..")) {
            g_autofree char *sub = g_build_filename(path, ent->name, NULL);
            ok = sshRemovePath(d, sub, depth + 1, error);
        }
        sftp_attributes_free(ent);
    }
    sftp_closedir(dir);
    if (ok && sftp_rmdir(d->sftp, path) < 0 && !sftpNotFound(d))
        ok = vmrpSftpFail(d, error, "remove", path);
    return ok;
}

bool
vmrpSftpRemoveTree(vmrpDest *dest, const char *rel, GError **error)
{
    g_autofree char *path = vmrpSftpPath(dest, rel);
    return sshRemovePath(vmrpSshOf(dest), path, 0, error);
}

bool
vmrpSftpSyncDir(vmrpDest *dest, const char *rel, GError **error)
{
    return true;        /* no fsync of a folder over SFTP (see the top) */
}

static gint
compareNames(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *
vmrpSftpCheckCopy(vmrpDest *dest, const char *dir, GPtrArray *files, GError **error)
{
    vmrpSshDest *d = vmrpSshOf(dest);
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
        const vmrpDigestAlgorithm sha256 = VMRP_DIGEST_SHA256;
        g_auto(GStrv) there = NULL;

        if (!sent)
            return g_strdup_printf("%s was not sent", name);
        if (!(there = vmrpSftpDigestFile(dest, rel, 1, &sha256, NULL, error)))
            return NULL;
        if (!g_str_equal(sent, there[0]))
            return g_strdup_printf("%s read back does not match the SHA-256 of what was sent",
                                   name);
        g_string_append_printf(sums, "%s  %s\n", sent, name);
    }
    if (!vmrpSftpWriteFile(dest, sums_rel, sums->str, sums->len, error))
        return NULL;
    return NULL;
}
