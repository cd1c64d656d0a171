/* vmrp-fake-peer.h: a scripted QMP / guest-agent peer on a socket, for unit tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

/*
 * A thread that plays a script of steps against the client end of a socketpair (or of a
 * listening UNIX socket), records every command the client sent (parsed) and notes every
 * departure from the script. Build the script, vmrpFakePeerStart(), run the client, free
 * the client (the peer reads on until the client hangs up), then vmrpFakePeerFinish().
 * The peer never calls CUnit: the test asserts on what Finish returns.
 */
typedef struct _vmrpFakePeer vmrpFakePeer;

/* A peer on a socketpair; *ret_fd is the client's end. */
vmrpFakePeer *
vmrpFakePeerNew(int *ret_fd);

/* A peer that listens on the UNIX socket @path and plays to the first client. */
vmrpFakePeer *
vmrpFakePeerNewListen(const char *path);

/* Sends @data as it is (may hold 0xFF bytes; @len -1 for a string). */
void
vmrpFakePeerSend(vmrpFakePeer *peer, const char *data, gssize len);

/* Sleeps @ms milliseconds. */
void
vmrpFakePeerSleep(vmrpFakePeer *peer, int ms);

/* Reads one command, which must be @execute, and answers @reply plus a newline
 * (nothing when NULL). */
void
vmrpFakePeerExpect(vmrpFakePeer *peer, const char *execute, const char *reply);

/* Reads guest-sync-delimited and answers @junk (nullable), 0xFF and {"return": ID}. */
void
vmrpFakePeerExpectSync(vmrpFakePeer *peer, const char *junk);

/* As vmrpFakePeerExpectSync, with the junk, the delimiter and two halves of the reply
 * each in a write of its own. */
void
vmrpFakePeerExpectSyncSplit(vmrpFakePeer *peer, const char *junk);

/* Answers every further command, which must be @execute, with @reply. */
void
vmrpFakePeerAnswerAll(vmrpFakePeer *peer, const char *execute, const char *reply);

/* Closes the peer's end at once. */
void
vmrpFakePeerHangup(vmrpFakePeer *peer);

void
vmrpFakePeerStart(vmrpFakePeer *peer);

/*
 * Waits for the script to end and the client to hang up, then frees the peer. Returns
 * the commands received (json_object, freed with the array); *ret_failures gets the
 * departures from the script, one per line, or NULL; *ret_delimiters (nullable) the
 * number of 0xFF bytes the client sent.
 */
GPtrArray *
vmrpFakePeerFinish(vmrpFakePeer *peer, char **ret_failures, int *ret_delimiters);

/* The "execute" of command @i in @cmds, or NULL. */
const char *
vmrpFakePeerCommandName(GPtrArray *cmds, guint i);

/* The "arguments" of command @i in @cmds, or NULL. */
json_object *
vmrpFakePeerCommandArgs(GPtrArray *cmds, guint i);
