/*
 * vmrp-point.h: a restore point's manifest (point.json)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "vmrp-consistency.h"
#include "vmrp-digest.h"

typedef enum {
    VMRP_POINT_CREATING = 0,  /* being written; not restorable */
    VMRP_POINT_SUCCEEDED,
    VMRP_POINT_FAILED,
    VMRP_POINT_DAMAGED,       /* committed, but its manifest or files cannot be read;
                               * never written to a manifest */

    VMRP_POINT_STATE_LAST
} vmrpPointState;

typedef struct {
    char *target;          /* vda */
    char *source;          /* the disk's path in the domain at the point */
    char *format;          /* the disk's format in the domain: qcow2, raw */
    char *image;           /* the image's file name in the point's folder; NULL if excluded */
    char *backing;         /* an increment's backing image, "../<parent-id>/<image>" */
    bool excluded;
    uint64_t size;         /* virtual size in bytes */
    uint64_t bytes_total;  /* bytes to copy */
    uint64_t bytes_done;   /* bytes copied so far */
    char *data_digest;     /* digest of the data written (nbd/vmrp-digest.h), or NULL */
    vmrpDigestAlgorithm data_algorithm;  /* data_digest's */
    GArray *data_extents;  /* of vmrpDigestExtent: what data_digest covers, or NULL */
} vmrpPointDisk;

/* A file of the VM beside its disks, copied at the point: the UEFI
 * variable store, a file of the emulated TPM's state. */
typedef struct {
    char *kind;            /* "nvram" or "tpm" */
    char *path;            /* in the point's folder: nvram/VARS.fd, tpm/<relative path> */
    char *source;          /* where it was on the host */
    uint64_t size;
    char *sha256;          /* of its content, lowercase hex */
} vmrpPointFile;

typedef struct {
    char *id;                    /* YYYYMMDD-HHMMSS-xxxxxx, UTC */
    char *domain_name;
    char *domain_uuid;
    char *created;               /* ISO 8601, UTC */
    vmrpPointState state;
    char *kind;                  /* "full" or "incremental" */
    char *parent;                /* the parent point of an increment */
    char *checkpoint;            /* the libvirt checkpoint, or NULL */
    char *message;               /* why the point failed or was taken as a full */
    vmrpConsistency requested;
    vmrpConsistency achieved;
    char *fallback_reason;       /* why achieved is below requested */
    int64_t freeze_ms;           /* -1 when the guest was not frozen */
    int64_t duration_ms;
    bool protected_;             /* never pruned (rp-protect) */
    GPtrArray *disks;            /* of vmrpPointDisk */
    /* digests and verification (vmrp-point-digest.h); all NULL in older points */
    vmrpDigestAlgorithm digest_algorithm;  /* of the next two */
    GHashTable *file_digests;    /* the point's other files: name -> hex */
    char *manifest_digest;       /* of the manifest itself (vmrpPointManifestDigest) */
    char *verified;              /* ISO 8601, UTC: the last rp-verify */
    char *verify_state;          /* "OK" or "Failed" */
    char *verify_reason;         /* why it failed */
    GPtrArray *files;            /* of vmrpPointFile: NVRAM, vTPM state; may be empty */
} vmrpPoint;

void vmrpPointDiskFree(vmrpPointDisk *disk);
void vmrpPointFree(vmrpPoint *point);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpPoint, vmrpPointFree)

/* A new point in state Creating, with a fresh id from the current time. */
vmrpPoint *vmrpPointNew(const char *domain_name, const char *domain_uuid);
/* The same, created at @unix_time (seconds; run-policies --now, a test's clock). */
vmrpPoint *vmrpPointNewAt(const char *domain_name, const char *domain_uuid, gint64 unix_time);

/* A committed point that cannot be read: state Damaged, @reason in its
 * message, the time of its id as its creation time, no disks. */
vmrpPoint *vmrpPointNewDamaged(const char *id, const char *domain_uuid, const char *reason);

void vmrpPointFileFree(vmrpPointFile *file);
vmrpPointFile *vmrpPointAddFile(vmrpPoint *point, const char *kind, const char *path);
/* Whether the point holds files of @kind. */
bool vmrpPointHasFiles(const vmrpPoint *point, const char *kind);

vmrpPointDisk *vmrpPointAddDisk(vmrpPoint *point, const char *target);
vmrpPointDisk *vmrpPointFindDisk(vmrpPoint *point, const char *target);

const char *vmrpPointStateToString(vmrpPointState state);
unsigned int vmrpPointDiskPercent(const vmrpPointDisk *disk);
uint64_t vmrpPointBytes(const vmrpPoint *point);

/* The parent point an image's backing path names, or NULL. */
char *vmrpPointDiskBackingPoint(const vmrpPointDisk *disk);

/* The point that @point's images build on (the first disk's that has one),
 * or NULL: a full. */
char *vmrpPointBackingPoint(const vmrpPoint *point);

/* The manifest as JSON text, and back; FromJSON rejects anything malformed
 * with one line that says what is wrong in words ("truncated JSON at byte 40",
 * "missing field 'disks'", "field 'size' of disk vda is not a number"). */
char *vmrpPointToJSON(const vmrpPoint *point);
vmrpPoint *vmrpPointFromJSON(const char *text, GError **error);
