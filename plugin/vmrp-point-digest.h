/*
 * vmrp-point-digest.h: a point's digests and its last verification, in its
 * manifest (optional fields of point.json format 1: older points have none)
 *
 *   "digests": { "algorithm": ALGO, "manifest": HEX,
 *                "files": { "domain.xml": HEX, ... } }
 *   disk:      "data_ALGO": HEX, "data_extents": [[OFFSET, LENGTH], ...]
 *
 * ALGO is xxh128 in points of today's vmrp, sha256 in those before
 * 2026-12-04 (nbd/vmrp-digest.h); the UEFI and vTPM files are always
 * SHA-256 ("files" of point.json format 1, vmrp-firmware.c).
 *   "verified": ISO 8601, "verify_state": "OK"|"Failed", "verify_reason": TEXT
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

#include "vmrp-point.h"

void vmrpPointDigestsClear(vmrpPoint *point);

void vmrpPointDigestsToJSON(const vmrpPoint *point, json_object *obj);
bool vmrpPointDigestsFromJSON(vmrpPoint *point, json_object *obj, GError **error);
void vmrpPointDiskDigestToJSON(const vmrpPointDisk *disk, json_object *d);
bool vmrpPointDiskDigestFromJSON(vmrpPointDisk *disk, json_object *d, GError **error);

/* The digest of the manifest's content: point.json as vmrp writes it,
 * without the manifest digest, the verification fields and 'protected'
 * (which change after the point is made). */
char *vmrpPointManifestDigest(vmrpPoint *point);

/* Records the digest of every regular file in the point's folder @dir
 * other than point.json and the disks' images (domain.xml, checkpoint.xml,
 * ...), then the manifest digest.  Called when the point is complete. */
bool vmrpPointDigestFiles(vmrpPoint *point, const char *dir, GError **error);

/* Whether a point failed its last verification. */
bool vmrpPointVerifyFailed(const vmrpPoint *point);

/* Fails (INVALID, saying why and that --force overrides it) when @point or a
 * point it builds on in @points (its collection's) failed its last
 * verification. */
bool vmrpPointCheckVerified(GPtrArray *points, const vmrpPoint *point, GError **error);
