/*
 * vmrp-guest.h: the guest agent of a libvirt domain through libvirt's
 * public calls (virDomainFSFreeze, virDomainFSThaw, virDomainGetHostname),
 * which leave the domain untainted, unlike the agent passthrough
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

/*
 * Each call is bounded by @timeout_s: libvirt waits for the agent without
 * limit by default, so the domain's agent response timeout
 * (virDomainAgentSetResponseTimeout, `virsh guest-agent-timeout`) is set to
 * @timeout_s for the call and put back to libvirt's default (block) after.
 */

/* Whether the agent answers (a hostname query). */
bool vmrpGuestPing(virDomainPtr dom, int timeout_s, GError **error);

/* Freezes every guest filesystem (the agent runs the guest's fsfreeze
 * hooks); returns how many, or -1. */
int vmrpGuestFreeze(virDomainPtr dom, int timeout_s, GError **error);

/* Thaws them; returns how many, or -1. */
int vmrpGuestThaw(virDomainPtr dom, int timeout_s, GError **error);
