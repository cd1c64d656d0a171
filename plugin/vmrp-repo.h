/*
 * vmrp-repo.h: the repository on disk
 *
 *   REPO/repository.json
 *   REPO/collections/<domain-uuid>/collection.json
 *   REPO/collections/<domain-uuid>/points/<point-id>/{point.json,domain.xml,<target>.qcow2}
 *
 * A point is written in a folder named .creating-<point-id> and renamed to
 * <point-id> only once every file in it is complete and fsync'd.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "vmrp-point.h"

typedef struct _vmrpRepo vmrpRepo;

/* Opens the repository at @path; with @create, makes it when it does not
 * exist (mode 0700).  A file, a foreign folder or an unsupported format is
 * an error. */
vmrpRepo *vmrpRepoOpen(const char *path, bool create, GError **error);
void vmrpRepoFree(vmrpRepo *repo);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpRepo, vmrpRepoFree)

const char *vmrpRepoGetPath(vmrpRepo *repo);

/* The repository's id (repository.json). */
char *vmrpRepoGetId(vmrpRepo *repo, GError **error);

/* What a new repository.json and collection.json hold (rp-copy makes them in
 * a destination repository through its own file operations), and the id in
 * a repository.json's text. */
char *vmrpRepoNewManifestText(void);
char *vmrpRepoNewCollectionText(const char *name, const char *uuid, bool copy);

/* Whether a collection was made by rp-copy ("copy": true in its
 * collection.json): its points' libvirt checkpoints are the source
 * repository's, never deleted or repaired through the copy, and no point is
 * taken into it. */
bool vmrpRepoCollectionIsCopy(vmrpRepo *repo, const char *uuid);
bool vmrpRepoCollectionTextIsCopy(const char *text);
char *vmrpRepoIdFromText(const char *text, GError **error);

/* Makes (or updates the name, and the host, of) the collection of a domain:
 * @uri is the libvirt URI that reaches it (run-policies uses it), @hostname
 * that host's name; either may be NULL (kept as it was).  A damaged
 * collection.json is moved aside to collection.json.damaged and made anew;
 * @ret_note (may be NULL) then says so. */
bool vmrpRepoEnsureCollection(vmrpRepo *repo, const char *name, const char *uuid,
                              const char *uri, const char *hostname, char **ret_note,
                              GError **error);

/* The libvirt URI recorded for collection @uuid, or NULL (none recorded,
 * or an unreadable collection.json). */
char *vmrpRepoGetCollectionURI(vmrpRepo *repo, const char *uuid);

/* The collection's policy (policy/vmrp-policy.h's text form; NULL: none)
 * and whether a point is taken when its domain starts (the libvirt hook). */
bool vmrpRepoGetPolicy(vmrpRepo *repo, const char *uuid, char **ret_text, bool *ret_on_start,
                       GError **error);
/* Sets the policy; a NULL @text removes it. */
bool vmrpRepoSetPolicy(vmrpRepo *repo, const char *uuid, const char *text, bool on_start,
                       GError **error);

/* Takes the collection's lock, held until the returned fd is closed; a
 * collection locked by another vmrp is a BUSY error. */
int vmrpRepoLockCollection(vmrpRepo *repo, const char *uuid, GError **error);

/* Whether a vmrp holds the collection's lock now (read from /proc/locks:
 * looking never takes it). */
bool vmrpRepoCollectionBusy(vmrpRepo *repo, const char *uuid);

/* Removes the collection's folder, points and all: out of sight at once (a
 * rename), then deleted.  The caller holds the collection's lock. */
bool vmrpRepoRemoveCollection(vmrpRepo *repo, const char *uuid, GError **error);

/* Collections as (name, uuid) pairs: a GPtrArray of GStrv {uuid, name, damage}.
 * damage is NULL, or why collection.json cannot be read (then name is ""):
 * one damaged collection.json does not hide the others. */
GPtrArray *vmrpRepoListCollections(vmrpRepo *repo, GError **error);

/* The collection's uuid for a domain name or uuid, from the repository
 * alone (the domain may be gone). */
char *vmrpRepoFindCollection(vmrpRepo *repo, const char *name_or_uuid, GError **error);

/* Committed points of a collection, oldest first (GPtrArray of vmrpPoint).
 * A point whose manifest or files cannot be read is listed all the same, in
 * state Damaged with the reason in its message ("point.json: truncated JSON
 * at byte 40", "image vdb.qcow2 is missing", "it builds on damaged point X"):
 * one bad point never hides the others. */
GPtrArray *vmrpRepoListPoints(vmrpRepo *repo, const char *uuid, GError **error);

/* Points still being created (.creating-*), e.g. for progress.  One whose
 * creator is gone (no vmrp holds the collection's lock) is in state Failed
 * with the message "interrupted: the creating process ended". */
GPtrArray *vmrpRepoListCreating(vmrpRepo *repo, const char *uuid, GError **error);

/* Both lists at once, committed points returned and half-made ones in
 * *creating: a point that commits meanwhile is in exactly one of them
 * (two calls of the above can miss it). */
GPtrArray *vmrpRepoListAll(vmrpRepo *repo, const char *uuid, GPtrArray **creating,
                           GError **error);

/* Whether vmrpRepoFindPoint returns a point that failed its last rp-verify
 * (or builds on one): --force of rp-restore and disk-create. */
void vmrpRepoSetAllowVerifyFailed(vmrpRepo *repo, bool allow);

/* Finds a usable point by id in any collection; @ret_dir gets its folder.
 * A Damaged point is an INVALID error that says why, a point not yet (or
 * never to be) complete one that says so, and so is a point that failed
 * its last verification or builds on one that did (unless allowed). */
vmrpPoint *vmrpRepoFindPoint(vmrpRepo *repo, const char *id, char **ret_dir, GError **error);

/* The same, but a Damaged point is returned as such (rp-info, rp-delete). */
vmrpPoint *vmrpRepoFindPointEntry(vmrpRepo *repo, const char *id, char **ret_dir,
                                  GError **error);

/* Loads a point folder's manifest, checking that it names @id. */
vmrpPoint *vmrpRepoLoadPoint(const char *dir, const char *id, GError **error);

/* The folder of committed point @id of collection @uuid, both already
 * checked (e.g. listed by vmrpRepoListPoints): no look-up. */
char *vmrpRepoPointDir(vmrpRepo *repo, const char *uuid, const char *id);

/* The path of @point's image of disk @target in the point's folder @dir,
 * found readable: NOT_FOUND when the point has no such disk or the image
 * is missing (the point is damaged), INVALID when the disk was excluded. */
char *vmrpRepoPointImage(const char *dir, vmrpPoint *point, const char *target,
                         GError **error);

/* Starts a point: creates its .creating-<id> folder and writes the manifest;
 * returns the folder.  Nothing in it is synced before vmrpRepoPointCommit:
 * a crash before the commit leaves a half point that the next command
 * removes whatever it holds. */
char *vmrpRepoPointBegin(vmrpRepo *repo, const vmrpPoint *point, GError **error);

/* Rewrites the manifest in @dir (progress, state). */
bool vmrpRepoPointSave(const char *dir, const vmrpPoint *point, GError **error);

/* Rewrites the manifest of a point being written (its .creating-<id>
 * folder: progress) without a sync; its commit syncs it. */
bool vmrpRepoPointSaveDraft(const char *dir, const vmrpPoint *point, GError **error);

/* Rewrites a committed point's manifest after vmrp changed what it says (a
 * merge: its backing, parent, kind): its manifest digest is taken anew.
 * Not for recording a verification, which must never bless a changed
 * manifest. */
bool vmrpRepoPointUpdate(const char *dir, vmrpPoint *point, GError **error);

/* fsyncs every file in @dir (written there by the caller without a sync,
 * or with one), marks the point Succeeded and renames the folder into
 * place.  @dir is updated to the final folder. */
bool vmrpRepoPointCommit(vmrpRepo *repo, vmrpPoint *point, char **dir, GError **error);

/* Marks a committed point protected or not, under its collection's lock. */
bool vmrpRepoPointSetProtected(vmrpRepo *repo, const char *id, bool protected_,
                               GError **error);

/* Removes the .creating-* folders of a collection (call with its lock held);
 * returns the ids of the points removed. */
GStrv vmrpRepoCleanStale(vmrpRepo *repo, const char *uuid, GError **error);
