/*
 * vmrp-names.h: which names are safe to use in the repository's paths and
 * in the names of new domains
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

/* A domain name that vmrp may give a new domain and use in file names:
 * 1 to 64 characters of [A-Za-z0-9._+-], not starting with '.' or '-'. */
bool vmrpNameCheckDomain(const char *name, GError **error);

/* A restore point id as vmrp makes them: YYYYMMDD-HHMMSS-xxxxxx. */
bool vmrpNameCheckPoint(const char *id, GError **error);

/* One component of a file's name in a point's folder: not empty, not
 * starting with '.', no '/' and no control character (the name is joined to
 * the folder and shown in messages, on one line). */
bool vmrpNameIsPlainFile(const char *name);

/* A disk target as libvirt names them (vda, sdb, hdc, ...). */
bool vmrpNameCheckTarget(const char *target, GError **error);

/* Splits "vda,vdb" into a NULL-terminated, duplicate-free list of targets. */
GStrv vmrpNameParseTargetList(const char *list, GError **error);
