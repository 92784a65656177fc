// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <unistd.h>

#include "fsutil.h"

DIR *opendir_fd(int dirfd)
{
	int fd = dup(dirfd), saved;
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	/* The duplicate shares the file offset with dirfd: start over. */
	rewinddir(d);
	return d;
}
