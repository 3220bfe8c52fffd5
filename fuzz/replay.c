/* Replays inputs through a fuzz target without libFuzzer: `replay_NAME PATH...` feeds every file
 * under each PATH (a file or a directory, not recursive) to LLVMFuzzerTestOneInput, in name order,
 * and prints "NAME: N inputs". A target that finds a broken property aborts, and a sanitizer
 * build reports what it saw; either way the exit status is not 0. `make test` runs it on the
 * committed corpus and regression inputs of every target. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *grown = realloc(data, cap);
            if (!grown)
                abort();
            data = grown;
        }
        size_t got = fread(data + size, 1, cap - size, f);
        size += got;
        if (got == 0)
            break;
    }
    fclose(f);
    /* an exact-size copy, so that a read past the input is caught as it is under libFuzzer */
    uint8_t *exact = malloc(size ? size : 1);
    if (!exact)
        abort();
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    long inputs = 0;
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                return 2;
            inputs++;
            continue;
        }
        struct dirent **names = NULL;
        int n = scandir(argv[i], &names, NULL, by_name);
        if (n < 0) {
            perror(argv[i]);
            return 2;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            if (names[j]->d_name[0] != '.') {
                snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
                if (run_file(path) != 0)
                    return 2;
                inputs++;
            }
            free(names[j]);
        }
        free(names);
    }
    const char *name = strrchr(argv[0], '/');
    printf("%s: %ld inputs\n", name ? name + 1 : argv[0], inputs);
    return 0;
}
