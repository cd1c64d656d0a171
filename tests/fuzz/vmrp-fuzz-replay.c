/*
 * vmrp-fuzz-replay.c: runs a fuzz harness over files, without libFuzzer
 *
 * Usage: fuzz-TARGET-replay PATH...   (files, or folders whose files are run
 * in name order; a missing path and README files are skipped).  The unit
 * suite runs each harness this way over its seed corpus and its
 * regressions, under ASan/UBSan and valgrind.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-fuzz.h"

static int
replayFile(const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, &error)) {
        fprintf(stderr, "cannot read %s: %s\n", path, error->message);
        return -1;
    }
    fprintf(stderr, "replay %s (%zu bytes)\n", path, (size_t)len);
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    return 0;
}

static gint
compareNames(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
    unsigned int runs = 0;
    int i;

    if (LLVMFuzzerInitialize(&argc, &argv) != 0)
        return EXIT_FAILURE;
    for (i = 1; i < argc; i++) {
        g_autoptr(GDir) dir = NULL;
        g_autoptr(GPtrArray) names = NULL;
        const char *ent;
        size_t j;

        if (!g_file_test(argv[i], G_FILE_TEST_EXISTS))
            continue;
        if (!g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
            if (replayFile(argv[i]) < 0)
                return EXIT_FAILURE;
            runs++;
            continue;
        }
        if (!(dir = g_dir_open(argv[i], 0, NULL)))
            return EXIT_FAILURE;
        names = g_ptr_array_new_with_free_func(g_free);
        while ((ent = g_dir_read_name(dir))) {
            if (!g_str_has_prefix(ent, "README"))
                g_ptr_array_add(names, g_build_filename(argv[i], ent, NULL));
        }
        g_ptr_array_sort(names, compareNames);
        for (j = 0; j < names->len; j++) {
            if (replayFile(g_ptr_array_index(names, j)) < 0)
                return EXIT_FAILURE;
            runs++;
        }
    }
    fprintf(stderr, "%u inputs replayed\n", runs);
    return runs > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
