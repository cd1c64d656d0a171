/*
 * fuzz-repo.c: the repository's files as vmrp finds them on disk
 * (vmrpRepoOpen, vmrpRepoListCollections, vmrpRepoFindCollection,
 * vmrpRepoListPoints/ListCreating, vmrpRepoFindPoint(Entry), vmrpRepoLoadPoint,
 * vmrpRepoCleanStale).  Every path built from a name or value read there
 * stays inside the repository: the points' images and backing images, and
 * what the stale cleanup removes (a sentinel beside the repository stays).
 *
 * Input: up to six parts separated by VMRP_FUZZ_SEPARATOR:
 *   0  REPO/repository.json
 *   1  REPO/collections/UUID_A/collection.json
 *   2  REPO/collections/UUID_A/points/POINT_1/point.json
 *   3  REPO/collections/UUID_A/points/.creating-POINT_2/point.json
 *   4  REPO/collections/UUID_B/collection.json
 *   5  the name of one more folder in UUID_A/points (when it is a valid
 *      file name), holding a copy of part 2 as its point.json
 * The repository lives below /dev/shm when it exists (fsync is free there).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmrp-fuzz.h"
#include "vmrp-file.h"
#include "vmrp-repo.h"
#include "vmrp-names.h"

#define UUID_A "6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11"
#define UUID_B "0d8a7c55-13c4-4b0e-8e2f-5a1d2c3b4e5f"
#define POINT_1 "20240102-030405-abcdef"
#define POINT_2 "20240102-040506-012345"

static char *topdir;

static void
removeTop(void)
{
    if (topdir) {
        vmrpFileRemoveTree(topdir, NULL);
        g_clear_pointer(&topdir, g_free);
    }
}

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    g_autofree char *tmpl = NULL;

    if (g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) && access("/dev/shm", W_OK) == 0)
        tmpl = g_strdup("/dev/shm/vmrp-fuzz-repo-XXXXXX");
    else
        tmpl = g_build_filename(g_get_tmp_dir(), "vmrp-fuzz-repo-XXXXXX", NULL);
    if (!(topdir = g_mkdtemp(tmpl))) {
        fprintf(stderr, "cannot make a temporary folder: %s\n", g_strerror(errno));
        return -1;
    }
    g_steal_pointer(&tmpl);
    atexit(removeTop);
    return 0;
}

static void
writeFile(const char *dir, const char *name, const char *text)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    size_t len = strlen(text);
    int fd;

    VMRP_FUZZ_ASSERT(g_mkdir_with_parents(dir, 0700) == 0);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    VMRP_FUZZ_ASSERT(fd >= 0);
    VMRP_FUZZ_ASSERT(write(fd, text, len) == (ssize_t)len);
    close(fd);
}

/* A name that a directory entry can have. */
static bool
validFileName(const char *name)
{
    return *name && strlen(name) < 200 && !strchr(name, '/') &&
           !g_str_equal(name, ".") && !g_str_equal(name, "..");
}

/* @rel joined to @dir stays inside @top, ".." resolved by name. */
static bool
staysInside(const char *top, const char *dir, const char *rel)
{
    g_autofree char *joined = g_build_filename(dir, rel, NULL);
    g_autofree char *canon = g_canonicalize_filename(joined, NULL);

    return g_str_has_prefix(canon, top) && canon[strlen(top)] == '/';
}

static void
checkPoints(const char *points_dir, GPtrArray *points, bool creating)
{
    guint i, j;

    for (i = 0; i < points->len; i++) {
        const vmrpPoint *point = g_ptr_array_index(points, i);
        g_autofree char *dir = g_build_filename(points_dir, point->id, NULL);

        /* a point is only ever loaded from the folder that bears its id */
        VMRP_FUZZ_ASSERT(vmrpNameCheckPoint(point->id, NULL));
        /* a damaged or failed point says why, in one line */
        if (point->state == VMRP_POINT_DAMAGED || point->state == VMRP_POINT_FAILED)
            VMRP_FUZZ_ASSERT(point->message && *point->message &&
                             !strchr(point->message, '\n'));
        /* every path a restore builds from the manifest stays in the
         * point's folder (images) or the collection's (backing images) */
        for (j = 0; j < point->disks->len; j++) {
            const vmrpPointDisk *disk = g_ptr_array_index(point->disks, j);

            if (disk->image)
                VMRP_FUZZ_ASSERT(staysInside(dir, dir, disk->image));
            if (disk->backing)
                VMRP_FUZZ_ASSERT(staysInside(points_dir, dir, disk->backing));
        }
        if (!creating)
            VMRP_FUZZ_ASSERT(i == 0 ||
                             strcmp(((vmrpPoint *)g_ptr_array_index(points, i - 1))->id,
                                    point->id) < 0);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_auto(GStrv) parts = vmrpFuzzSplit(data, size, 6);
    g_autofree char *repo_dir = g_build_filename(topdir, "repo", NULL);
    g_autofree char *coll_a = g_build_filename(repo_dir, "collections", UUID_A, NULL);
    g_autofree char *coll_b = g_build_filename(repo_dir, "collections", UUID_B, NULL);
    g_autofree char *points_a = g_build_filename(coll_a, "points", NULL);
    g_autofree char *point_1 = g_build_filename(points_a, POINT_1, NULL);
    g_autofree char *point_2 = g_build_filename(points_a, ".creating-" POINT_2, NULL);
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) collections = NULL;
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GPtrArray) creating = NULL;
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(vmrpPoint) loaded = NULL;
    g_autoptr(vmrpPoint) point_entry = NULL;
    g_autofree char *sentinel = g_build_filename(topdir, "sentinel", NULL);
    g_auto(GStrv) stale = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *found_dir = NULL;
    g_autofree char *uuid = NULL;
    const char *id;
    guint n = g_strv_length(parts);
    guint i;

    VMRP_FUZZ_ASSERT(vmrpFileRemoveTree(repo_dir, NULL));
    writeFile(repo_dir, "repository.json", n > 0 ? parts[0] : "");
    VMRP_FUZZ_ASSERT(g_mkdir_with_parents(points_a, 0700) == 0);
    if (n > 1)
        writeFile(coll_a, "collection.json", parts[1]);
    if (n > 2)
        writeFile(point_1, "point.json", parts[2]);
    if (n > 3)
        writeFile(point_2, "point.json", parts[3]);
    if (n > 4)
        writeFile(coll_b, "collection.json", parts[4]);
    if (n > 5 && validFileName(parts[5])) {
        g_autofree char *extra = g_build_filename(points_a, parts[5], NULL);
        writeFile(extra, "point.json", parts[2]);
    }

    if (!(repo = vmrpRepoOpen(repo_dir, false, &error))) {
        vmrpFuzzCheckError(error);
        return 0;
    }
    if (!(collections = vmrpRepoListCollections(repo, &error))) {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    } else {
        for (i = 0; i < collections->len; i++) {
            char **pair = g_ptr_array_index(collections, i);
            VMRP_FUZZ_ASSERT(g_uuid_string_is_valid(pair[0]) && pair[1]);
        }
    }
    if (!(uuid = vmrpRepoFindCollection(repo, n > 5 ? parts[5] : "vm1", &error))) {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    } else {
        VMRP_FUZZ_ASSERT(g_uuid_string_is_valid(uuid));
    }

    if (!(points = vmrpRepoListPoints(repo, UUID_A, &error))) {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    } else {
        checkPoints(points_a, points, false);
    }
    if (!(creating = vmrpRepoListCreating(repo, UUID_A, &error))) {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    } else {
        checkPoints(points_a, creating, true);
    }

    if (!(point = vmrpRepoFindPoint(repo, POINT_1, &found_dir, &error))) {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    } else {
        VMRP_FUZZ_ASSERT(g_str_equal(point->id, POINT_1));
        VMRP_FUZZ_ASSERT(found_dir && g_str_has_prefix(found_dir, repo_dir));
    }
    if ((point_entry = vmrpRepoFindPointEntry(repo, POINT_1, NULL, &error)))
        VMRP_FUZZ_ASSERT(g_str_equal(point_entry->id, POINT_1));
    else
        vmrpFuzzCheckError(error);
    g_clear_error(&error);

    /* the stale cleanup removes only below the points folder, and hands back
     * only ids (its caller builds state paths from them) */
    writeFile(topdir, "sentinel", "x");
    if (!(stale = vmrpRepoCleanStale(repo, UUID_A, &error))) {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    } else {
        for (i = 0; stale[i]; i++)
            VMRP_FUZZ_ASSERT(vmrpNameCheckPoint(stale[i], NULL));
    }
    VMRP_FUZZ_ASSERT(g_file_test(sentinel, G_FILE_TEST_IS_REGULAR));
    VMRP_FUZZ_ASSERT(g_file_test(points_a, G_FILE_TEST_IS_DIR));

    /* callers hand LoadPoint a checked id (a folder's name or the user's, checked) */
    id = n > 5 && vmrpNameCheckPoint(parts[5], NULL) ? parts[5] : POINT_1;
    if (!(loaded = vmrpRepoLoadPoint(point_1, id, &error))) {
        vmrpFuzzCheckError(error);
        g_clear_error(&error);
    } else {
        VMRP_FUZZ_ASSERT(g_str_equal(loaded->id, id));
    }
    return 0;
}
