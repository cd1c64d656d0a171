/*
 * vmrp-hook.h: libvirt's qemu hook
 *
 * libvirtd runs /etc/libvirt/hooks/qemu.d/vmrp synchronously, with the
 * domain XML on stdin, and a hook that calls back into libvirt deadlocks it.
 * So the hook only records the event (one JSON line in the state folder's
 * hook.log) and, when a domain whose collection has an on-start policy has
 * started, hands off to a detached worker ("vmrp __on-start UUID") that
 * waits for the domain and its agent, then takes a point.  It returns in
 * milliseconds and always exits 0: vmrp never blocks nor fails a VM's start
 * (problems go to hook.log).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

/* argv: {DOMAIN, OPERATION, SUB-OPERATION, EXTRA}; the domain XML on stdin. */
int vmrpHookMain(const char *repo_path, int argc, char **argv);
