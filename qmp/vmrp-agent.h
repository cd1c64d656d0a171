/* vmrp-agent.h: the QEMU guest agent (qemu-ga) over libvirt or a UNIX socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libvirt/libvirt.h>

#include "vmrp-qmp.h"
#include "vmrp-qmp-socket.h"

typedef struct _vmrpAgent vmrpAgent;

/* One guest filesystem of guest-get-fsinfo. */
typedef struct {
    char *name;          /* e.g. "vda1" */
    char *mountpoint;    /* e.g. "/" */
    char *type;          /* e.g. "ext4" */
    GStrv disks;         /* per disk: its "dev" (e.g. "/dev/vda") or else its "serial";
                          * never NULL, may be empty */
    GStrv serials;       /* the disks' serial numbers where the agent gives them */
    long long used_bytes;   /* -1 when the agent does not say */
    long long total_bytes;  /* -1 when the agent does not say */
} vmrpAgentFsinfo;

void
vmrpAgentFsinfoFree(vmrpAgentFsinfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpAgentFsinfo, vmrpAgentFsinfoFree)

/* The agent of @dom through virDomainQemuAgentCommand (takes a domain reference). */
vmrpAgent *
vmrpAgentNewLibvirt(virDomainPtr dom);

/* The agent behind @sock, which must be in VMRP_QMP_SOCKET_AGENT mode (consumed). */
vmrpAgent *
vmrpAgentNewSocket(vmrpQmpSocket *sock);

/* Accepts NULL. */
void
vmrpAgentFree(vmrpAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpAgent, vmrpAgentFree)

/*
 * Every call waits at most @timeout_s seconds in all (negative: no limit).
 * Errors are VMRP_QMP_ERROR codes (see vmrp-qmp.h): VMRP_QMP_ERROR_UNAVAILABLE when there
 * is no agent to talk to, VMRP_QMP_ERROR_TIMEOUT, VMRP_QMP_ERROR_COMMAND with the agent's
 * own message ("guest-fsfreeze-freeze: Command guest-fsfreeze-freeze has been disabled").
 */

/* Sends any agent command (borrowed, see vmrpQmpCommandNew) and returns its "return"
 * value (new reference). */
json_object *
vmrpAgentCommand(vmrpAgent *agent, json_object *cmd, int timeout_s, GError **error);

bool
vmrpAgentPing(vmrpAgent *agent, int timeout_s, GError **error);

/* guest-fsfreeze-freeze: the number of filesystems frozen, or -1. A timeout may leave the
 * guest frozen: thaw after any failure. */
int
vmrpAgentFsfreezeFreeze(vmrpAgent *agent, int timeout_s, GError **error);

/* guest-fsfreeze-freeze-list of the guest @mountpoints (NULL-terminated). */
int
vmrpAgentFsfreezeFreezeList(vmrpAgent *agent, const char *const *mountpoints, int timeout_s,
                            GError **error);

/* guest-fsfreeze-thaw: the number of filesystems thawed, or -1. */
int
vmrpAgentFsfreezeThaw(vmrpAgent *agent, int timeout_s, GError **error);

/* guest-fsfreeze-status: *ret_frozen is true when frozen. */
bool
vmrpAgentFsfreezeStatus(vmrpAgent *agent, int timeout_s, bool *ret_frozen, GError **error);

/* guest-get-fsinfo: a GPtrArray of vmrpAgentFsinfo (freed with the array). */
GPtrArray *
vmrpAgentGetFsinfo(vmrpAgent *agent, int timeout_s, GError **error);

/*
 * Runs @argv (argv[0] is searched in the guest's PATH) with guest-exec, feeding @input
 * (nullable) to its stdin, and polls guest-exec-status until it exits:
 * *ret_exitcode is its exit status, *ret_stdout / *ret_stderr (each nullable) what it
 * wrote. A non-zero exit is not an error; a process killed by a signal is
 * ("guest-exec ARGV0: killed by signal N"), as is output the agent truncated (16 MiB) and
 * "guest-exec ARGV0: timed out after N s" (the process is left running in the guest).
 */
bool
vmrpAgentExec(vmrpAgent *agent, const char *const *argv, const char *input, int timeout_s,
              int *ret_exitcode, GBytes **ret_stdout, GBytes **ret_stderr, GError **error);

/* As vmrpAgentExec with any bytes (nullable, borrowed) as input. */
bool
vmrpAgentExecBytes(vmrpAgent *agent, const char *const *argv, GBytes *input, int timeout_s,
                   int *ret_exitcode, GBytes **ret_stdout, GBytes **ret_stderr,
                   GError **error);

/* Reads the whole guest file @path (guest-file-open/read/close). */
GBytes *
vmrpAgentFileRead(vmrpAgent *agent, const char *path, int timeout_s, GError **error);
