/*
 * vmrp-dest-ssh.c: a destination repository on another host, over SFTP
 * (libssh): ssh://[user@]host[:port]/path.  This file: the connection, the
 * lock and the ops table; the file operations are in vmrp-dest-sftp.c.
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

#include "vmrp-dest-ssh-priv.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-state.h"

#define SSH_TIMEOUT_DEFAULT 10
#define SSH_SMALL_MAX (16 * 1024 * 1024)

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
lockCreate(vmrpSshDest *d, const char *path, const char *text)
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
    vmrpSshDest *d = vmrpSshOf(dest);
    g_autofree char *dir = g_path_get_dirname(rel);
    g_autofree char *lrel = g_build_filename(dir, VMRP_DEST_SFTP_LOCK, NULL);
    g_autofree char *path = vmrpSftpPath(dest, lrel);
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
    if (!(held = vmrpSftpReadFile(dest, lrel, 4096, error))) {
        if (error && *error)
            return -1;
        if (lockCreate(d, path, text))   /* removed in between */
            goto locked;
        vmrpSftpFail(d, error, "create the lock", lrel);
        return -1;
    }
    lockParse(held, &host, &pid, &since);
    /* a lock of this host whose vmrp is gone: taken over */
    if (pid > 0 && g_strcmp0(host, g_get_host_name()) == 0 && kill(pid, 0) < 0 &&
        errno == ESRCH && (guard = lockLocalGuard()) >= 0) {
        g_autofree char *again = vmrpSftpReadFile(dest, lrel, 4096, NULL);
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
    vmrpSshDest *d = vmrpSshOf(dest);

    if (handle < 0 || !d->lock_rel)
        return;
    {
        g_autofree char *path = vmrpSftpPath(dest, d->lock_rel);
        sftp_unlink(d->sftp, path);
    }
    g_clear_pointer(&d->lock_rel, g_free);
}

static char *
sshLocalPath(vmrpDest *dest, const char *rel)
{
    return NULL;
}

static void
sshClose(vmrpDest *dest)
{
    vmrpSshDest *d = vmrpSshOf(dest);

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
    .make_dir = vmrpSftpMakeDir,
    .write_file = vmrpSftpWriteFile,
    .copy_file = vmrpSftpCopyFile,
    .read_file = vmrpSftpReadFile,
    .list = vmrpSftpList,
    .rename = vmrpSftpRename,
    .remove_tree = vmrpSftpRemoveTree,
    .sync_dir = vmrpSftpSyncDir,
    .lock = sshLock,
    .unlock = sshUnlock,
    .local_path = sshLocalPath,
    .close = sshClose,
    .check_copy = vmrpSftpCheckCopy,
    .digest_file = vmrpSftpDigestFile,
    .fetch_file = vmrpSftpFetchFile,
    .file_size = vmrpSftpFileSize,
};

/* ssh://[user@]host[:port]/path: an absolute path without '..', backslashes
 * or control characters. */
static bool
sshParse(vmrpSshDest *d, const char *spec, GError **error)
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
sshCheckHostKey(vmrpSshDest *d, const char *known, GError **error)
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
sshAuth(vmrpSshDest *d, GError **error)
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
    g_autoptr(vmrpDest) dest = (vmrpDest *)g_new0(vmrpSshDest, 1);
    vmrpSshDest *d = vmrpSshOf(dest);
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
