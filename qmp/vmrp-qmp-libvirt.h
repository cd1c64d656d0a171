/* vmrp-qmp-libvirt.h: QMP and guest-agent transport through libvirt's passthrough APIs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libvirt/libvirt.h>

#include "vmrp-qmp.h"

/*
 * Sends @cmd (borrowed) to the domain's QEMU monitor with virDomainQemuMonitorCommand and
 * returns the whole parsed reply (new reference; may be an error reply: see
 * vmrpQmpReplyGetReturn). libvirt marks the domain tainted (custom-monitor).
 * libvirt failures become "CMD: MESSAGE"; a domain that is not running gives
 * VMRP_QMP_ERROR_UNAVAILABLE.
 */
json_object *
vmrpQmpLibvirtMonitorExec(virDomainPtr dom, json_object *cmd, GError **error);

/*
 * Sends @cmd (borrowed) to the domain's guest agent with virDomainQemuAgentCommand,
 * waiting at most @timeout_s seconds (negative: no limit), and returns the whole parsed
 * reply (new reference). libvirt checks the agent's error replies itself: they come back
 * as GError "CMD: DESC" (VMRP_QMP_ERROR_COMMAND). An agent that is not configured, not
 * connected or a domain not running gives VMRP_QMP_ERROR_UNAVAILABLE; no reply within the
 * timeout gives "CMD: timed out after N s" (VMRP_QMP_ERROR_TIMEOUT: the command may still
 * have run in the guest).
 */
json_object *
vmrpQmpLibvirtAgentExec(virDomainPtr dom, json_object *cmd, int timeout_s, GError **error);
