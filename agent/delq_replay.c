// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delq.h"
#include "delq_replay.h"
#include "log.h"
#include "request.h"
#include "statefile.h"

/* Rename name to prefix+name so no later start replays it; the file stays
 * for whoever wants to know what it held. */
static void set_aside(int dirfd, const char *dir, const char *name, const char *prefix,
		      const char *why)
{
	char to[DELQ_NAME_MAX + 16];

	snprintf(to, sizeof(to), "%s%s", prefix, name);
	if (renameat(dirfd, name, dirfd, to) || sf_sync_dir(dirfd)) {
		pr_err("DEL queue %s: %s: %s; cannot set it aside as %s: %s (it stays, and is "
		       "tried again at the next start)", dir, name, why, to, strerror(errno));
		return;
	}
	pr_warn("DEL queue %s: %s: %s; set aside as %s", dir, name, why, to);
}

static void replay_one(int dirfd, const char *dir, const char *name, delq_run_fn run, void *ctx,
		       struct delq_stats *st)
{
	char why[1024] = "", *buf = NULL;
	json_t *req = NULL;
	struct cni_req cr;
	struct stat sb;
	size_t len;
	int ret;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW)) {
		if (errno == ENOENT)
			return;
		snprintf(why, sizeof(why), "cannot stat it: %s", strerror(errno));
		goto bad;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(why, sizeof(why), "not a regular file");
		goto bad;
	}
	ret = sf_read(dirfd, name, DELQ_MAX_ENTRY, &buf, &len);
	if (ret) {
		if (ret == -EFBIG)
			snprintf(why, sizeof(why), "larger than %u bytes", DELQ_MAX_ENTRY);
		else
			snprintf(why, sizeof(why), "cannot read it: %s", strerror(-ret));
		goto bad;
	}
	if (delq_entry_decode(name, buf, len, &req, why, sizeof(why)))
		goto bad;
	/* The API's decoder: what it refuses, the DEL would refuse too. */
	if (request_parse_cni(json_object_get(req, "cni"), 0, &cr, why, sizeof(why)))
		goto bad;
	if (run(ctx, req, why, sizeof(why))) {
		st->failed++;
		set_aside(dirfd, dir, name, "failed-", why);
		goto cleanup;
	}
	st->replayed++;
	ret = sf_remove(dirfd, name);
	if (ret)
		pr_err("DEL queue %s: %s replayed, but cannot be removed: %s (the DEL is done "
		       "again at the next start)", dir, name, strerror(-ret));
	goto cleanup;
bad:
	st->malformed++;
	set_aside(dirfd, dir, name, "bad-", why);
cleanup:
	json_decref(req);
	free(buf);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The queued entries' names, sorted; NULL with *n 0 for none or on error
 * (logged: the start goes on, the entries stay for the next one). */
static char **entry_names(int dirfd, const char *dir, size_t *n)
{
	char **names = NULL, **grown;
	size_t cap = 0;
	struct dirent *de;
	DIR *d;

	*n = 0;
	d = sf_opendir(dirfd);
	if (!d) {
		pr_err("DEL queue %s: cannot list it: %s", dir, strerror(errno));
		return NULL;
	}
	while ((de = readdir(d))) {
		if (!delq_is_entry(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			grown = realloc(names, cap * sizeof(*names));
			if (!grown)
				goto oom;
			names = grown;
		}
		names[*n] = strdup(de->d_name);
		if (!names[*n])
			goto oom;
		(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(names, *n, sizeof(*names), cmp_name);
	return names;
oom:
	pr_err("DEL queue %s: out of memory listing it", dir);
	closedir(d);
	while (*n)
		free(names[--*n]);
	free(names);
	return NULL;
}

void delq_replay(int dirfd, const char *dir, delq_run_fn run, void *ctx, struct delq_stats *st)
{
	char **names;
	size_t n, i;

	sf_remove_temporaries(dirfd);
	names = entry_names(dirfd, dir, &n);
	for (i = 0; i < n; i++) {
		replay_one(dirfd, dir, names[i], run, ctx, st);
		free(names[i]);
	}
	free(names);
}
