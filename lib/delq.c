// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "delq.h"
#include "statefile.h"

int delq_dir_path(const char *socket_path, char *buf, size_t len)
{
	const char *slash = strrchr(socket_path, '/');
	int n;

	/* dirname(3) semantics without its copy: "sock" is in ".", "/sock" in "/". */
	if (!slash)
		n = snprintf(buf, len, "./" DELQ_DIR);
	else
		n = snprintf(buf, len, "%.*s/" DELQ_DIR, (int)(slash - socket_path), socket_path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int delq_open(const char *socket_path, const char *alternative, char *err, size_t errlen)
{
	char dir[4096];
	struct stat st;
	int fd = -1, ret;

	ret = delq_dir_path(socket_path, dir, sizeof(dir));
	if (ret) {
		snprintf(err, errlen, "the DEL queue's path next to %s is too long", socket_path);
		return ret;
	}
	ret = api_socket_dirs_check(socket_path, alternative, err, errlen);
	if (ret)
		return ret;
	if (!mkdir(dir, 0700)) {
		/* Exactly 0700, whatever the umask. */
		if (chmod(dir, 0700)) {
			ret = -errno;
			snprintf(err, errlen, "cannot set the mode of the DEL queue %s: %s", dir,
				 strerror(errno));
			return ret;
		}
	} else if (errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot create the DEL queue %s: %s", dir, strerror(errno));
		return ret;
	}
	/* Checked on the open directory, not the path: nothing can swap it
	 * between the check and the use. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the DEL queue %s: %s%s", dir, strerror(errno),
			 errno == ELOOP || errno == ENOTDIR
				 ? " (it must be a directory, not a symlink or a file: remove it)"
				 : "");
		goto cleanup;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "cannot check the DEL queue %s: %s", dir, strerror(errno));
		goto cleanup;
	}
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen,
			 "the DEL queue %s is owned by uid %u with mode %04o: whoever can write there "
			 "chooses what sluice-agent deletes; make it root's without group/other "
			 "write (chown root %s; chmod 0700 %s)",
			 dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), dir, dir);
		ret = -EPERM;
		goto cleanup;
	}
	ret = fd;
	fd = -1;
cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}

int delq_lock(int dirfd, int op, int timeout_ms)
{
	long long deadline = api_now_ms() + timeout_ms;

	/* flock has no timeout of its own: poll it. The holders are short
	 * (a plugin writing one file; an agent replaying its queue). */
	while (flock(dirfd, op | LOCK_NB)) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (api_now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
	return 0;
}

/* FNV-1a, 64 bits: a name per attachment, not a defence (only root writes
 * here); at DELQ_MAX_ENTRIES entries a collision is ~1e-12 likely. */
void delq_entry_name(const char *container_id, const char *ifname, char name[DELQ_NAME_MAX])
{
	uint64_t h = 0xcbf29ce484222325ull;
	const char *parts[] = { container_id, "/", ifname };
	size_t i;

	for (i = 0; i < 3; i++)
		for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
			h ^= *p;
			h *= 0x100000001b3ull;
		}
	snprintf(name, DELQ_NAME_MAX, DELQ_PREFIX "%016llx", (unsigned long long)h);
}

int delq_is_entry(const char *name)
{
	size_t n = sizeof(DELQ_PREFIX) - 1;

	return !strncmp(name, DELQ_PREFIX, n) && strlen(name + n) == 16 &&
	       strspn(name + n, "0123456789abcdef") == 16;
}

int delq_count(int dirfd)
{
	struct dirent *de;
	int n = 0;
	DIR *d = sf_opendir(dirfd);

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    !sf_is_temporary(de->d_name))
			n++;
	closedir(d);
	return n;
}

int delq_entry_encode(const json_t *req, long long queued_at, char **out, size_t *len)
{
	json_t *doc;
	char *text;

	*out = NULL;
	*len = 0;
	doc = json_pack("{s:i, s:I, s:O}", "version", DELQ_VERSION, "queuedAt",
			(json_int_t)queued_at, "request", req);
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	if (strlen(text) > DELQ_MAX_ENTRY) {
		free(text);
		return -EFBIG;
	}
	*out = text;
	*len = strlen(text);
	return 0;
}

int delq_entry_decode(const char *name, const char *buf, size_t len, json_t **req, char *err,
		      size_t errlen)
{
	char want[DELQ_NAME_MAX];
	json_error_t jerr;
	json_t *doc, *r, *cni, *v;
	const char *cid, *ifname;
	int ret = -EINVAL;

	*req = NULL;
	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		snprintf(err, errlen, "not JSON: line %d column %d: %s", jerr.line, jerr.column,
			 jerr.text);
		return -EINVAL;
	}
	v = json_object_get(doc, "version");
	if (!json_is_integer(v) || json_integer_value(v) != DELQ_VERSION) {
		snprintf(err, errlen, "\"version\" is not %d (the format this agent reads)",
			 DELQ_VERSION);
		goto cleanup;
	}
	r = json_object_get(doc, "request");
	if (!json_is_object(r) || !json_is_string(json_object_get(r, "op")) ||
	    strcmp(json_string_value(json_object_get(r, "op")), "del")) {
		snprintf(err, errlen, "\"request\" is not a request with op \"del\"");
		goto cleanup;
	}
	cni = json_object_get(r, "cni");
	cid = json_string_value(json_object_get(cni, "containerId"));
	ifname = json_string_value(json_object_get(cni, "ifname"));
	if (!cid || !ifname) {
		snprintf(err, errlen, "\"request\".cni lacks containerId or ifname");
		goto cleanup;
	}
	/* A file under another attachment's name was not written by the
	 * plugin: replaying it could shadow that attachment's own DEL. */
	delq_entry_name(cid, ifname, want);
	if (strcmp(name, want)) {
		snprintf(err, errlen, "the attachment %s/%s is queued as %s, not %s", cid, ifname,
			 want, name);
		goto cleanup;
	}
	*req = json_incref(r);
	ret = 0;
cleanup:
	json_decref(doc);
	return ret;
}
