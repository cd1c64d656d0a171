/*
 * vmrp-restore-journal.h: the journal of an in-place restore in the state
 * folder (restore-UUID.json); vmrpRestoreRecover (vmrp-restore.h) reads it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

/* Records that the in-place restore of domain @uuid reached @phase
 * ("set-aside": the original's files @files are being moved to @asides and
 * replaced; "defined": the restored domain is defined), whether the domain
 * ran and had autostart before. */
bool vmrpRestoreJournalWrite(const char *uuid, const char *phase, bool was_running,
                             bool autostart, GPtrArray *files, GPtrArray *asides,
                             GError **error);

/* Whether an in-place restore of domain @uuid left its journal (it runs,
 * or it was killed: vmrpRestoreRecover ends it). */
bool vmrpRestoreJournalExists(const char *uuid);

/* The restore ended (done or undone): no journal. */
void vmrpRestoreJournalRemove(const char *uuid);
