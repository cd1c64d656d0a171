/*
 * vmrp-acl.h: one user's entry in a file's POSIX access ACL
 *
 * Written as the system.posix_acl_access extended attribute, so vmrp needs
 * neither setfacl nor libacl.  Used to let QEMU (libvirt-qemu) read exactly
 * the repository images an instantly restored domain runs on.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>

#define VMRP_ACL_READ 4
#define VMRP_ACL_WRITE 2
#define VMRP_ACL_EXECUTE 1

/* Gives user @uid the permissions @perm (VMRP_ACL_*) on @path, replacing
 * an entry it had; the mask is widened to let them through. */
bool vmrpAclGrantUser(const char *path, uid_t uid, unsigned int perm, GError **error);

/* Removes the entry of @uid from @path's ACL; when no named entry is left
 * the ACL goes and the group bits are those of the owning group again.
 * A missing file or entry is no error. */
bool vmrpAclRevokeUser(const char *path, uid_t uid, GError **error);

/* The permissions @uid has by a named entry of @path's ACL, 0 without one. */
unsigned int vmrpAclGetUser(const char *path, uid_t uid);
