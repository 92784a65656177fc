/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SLUICE_FSUTIL_H
#define SLUICE_FSUTIL_H

#include <dirent.h>

/* A DIR stream over the directory dirfd refers to, from its first entry;
 * dirfd stays open and usable (the stream works on a duplicate). */
DIR *opendir_fd(int dirfd);

#endif /* SLUICE_FSUTIL_H */
