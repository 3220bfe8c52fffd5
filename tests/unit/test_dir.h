/* Temporary directories of the unit tests that use a real store (store_test.c, core_fixture.h). */
#ifndef CF_TESTS_TEST_DIR_H
#define CF_TESTS_TEST_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Removes dir and the files in it (a flat directory: the database and its journal). */
static inline void test_dir_remove(const char *dir_path)
{
    DIR *dir = opendir(dir_path);
    if (dir) {
        struct dirent *entry;
        char path[512];
        while ((entry = readdir(dir))) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir_path, entry->d_name);
            unlink(path);
        }
        closedir(dir);
    }
    rmdir(dir_path);
}

#endif
