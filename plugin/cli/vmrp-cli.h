/*
 * vmrp-cli.h: what the commands of the vmrp command line share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include <libvirt/libvirt.h>
#include <gio/gio.h>

#include "vmrp-point.h"
#include "vmrp-job.h"
#include "vmrp-repo.h"

typedef struct {
    const char *uri;
    const char *repo_path;
    bool json;
    bool tty;                  /* stderr is a terminal: progress bars */
    bool force;                /* --force: use points that failed verification */
    virConnectPtr conn;
    GCancellable *cancel;      /* cancelled by SIGINT, SIGTERM, SIGHUP */
    char **global_argv;        /* the global options, to start a job's worker */
    vmrpJob *job;              /* set in a job's worker */
    char *job_result;          /* what a command made (a point id, a domain) */
    char *job_message;         /* and a line saying so */
} vmrpCLI;

/* A command: argv[0] is its name; it reports failure through @error only. */
typedef bool (*vmrpCommandFunc)(vmrpCLI *cli, int argc, char **argv, GError **error);

bool vmrpCLIConnect(vmrpCLI *cli, GError **error);
virDomainPtr vmrpCLILookupDomain(vmrpCLI *cli, const char *name, GError **error);
vmrpRepo *vmrpCLIOpenRepo(vmrpCLI *cli, bool create, GError **error);

/* Parses a command's options and checks its count of arguments; --help
 * prints and exits. */
bool vmrpCLIParse(const char *command, const char *args, const char *summary,
                  GOptionEntry *entries, int *argc, char ***argv,
                  int nargs_min, int nargs_max, GError **error);

char *vmrpCLIHumanBytes(uint64_t bytes);
/* Prints @obj on stdout and releases it. */
void vmrpCLIPrintJSON(json_object *obj);
/* Each line of @note (NULL or "": nothing) as "note: LINE" on stderr. */
void vmrpCLIPrintNote(const char *note);
json_object *vmrpCLIPointToJSON(const vmrpPoint *point);
/* A JSON array of the strings of @strv (NULL-terminated). */
json_object *vmrpCLIStrvToJSON(const char *const *strv);

/* Progress on stderr: a bar on a terminal, a line every 10 % otherwise. */
typedef struct {
    vmrpCLI *cli;
    int last_percent;
    char *last_target;
} vmrpCLIProgress;

void vmrpCLIProgressShow(vmrpCLIProgress *p, const char *what, uint64_t done, uint64_t total);

/* --async: starts the command @argv (as given, options included) in a
 * detached worker, waits until it has checked its input, and prints the job
 * id.  Only a command that makes the repository (rp-create) passes
 * @create_repo: the others fail on a missing one without making it. */
bool vmrpCLIAsyncStart(vmrpCLI *cli, char **argv, const char *subject, bool create_repo,
                       GError **error);
/* In a job's worker: the input is checked, the work begins. */
void vmrpCLIJobStarted(vmrpCLI *cli);
/* In a job's worker: the command's end, recorded in the job. */
void vmrpCLIJobEnd(vmrpCLI *cli, bool ok, const GError *error);

/* the commands */
bool vmrpCmdPolicySet(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdPolicyShow(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdPrune(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRunPolicies(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdOnStart(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdJobList(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdJobInfo(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdJobWait(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdJobAbort(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpCreate(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpList(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpProtect(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpUnprotect(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpDelete(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpInfo(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpRestore(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdDiskCreate(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpAccess(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpAccessList(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpAccessRevoke(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdFileList(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdFileRestore(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdCollectionList(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdCollectionInfo(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdCollectionDelete(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpCopy(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdCollectionSync(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRpVerify(vmrpCLI *cli, int argc, char **argv, GError **error);
bool vmrpCmdRepoCheck(vmrpCLI *cli, int argc, char **argv, GError **error);
