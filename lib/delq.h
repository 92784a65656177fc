/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The queue of DELs sluice-cni could not deliver because no agent was
 * running (docs/CNI.md#del-while-the-agent-is-down): one file per
 * attachment in <directory of the socket>/del-queue/, written by the
 * plugin, replayed by the agent at start-up before it listens.
 *
 * Locking: the plugin holds a shared flock(2) on the queue directory while
 * it writes an entry and asks the agent once more; the agent holds it
 * exclusively from its scan until its socket listens. So an entry written
 * while no agent listens is seen by the next agent's replay, and none is
 * left behind once an agent serves (replayed at a later start, after a
 * newer ADD of the same container, it would delete that attachment).
 */
#ifndef SLUICE_DELQ_H
#define SLUICE_DELQ_H

#include <stddef.h>
#include <jansson.h>

#define DELQ_DIR	 "del-queue"
#define DELQ_VERSION	 1
/* Entries the plugin writes at most (set-aside ones included), and the
 * size of one: a DEL request with its prevResult is well under 64 KiB. */
#define DELQ_MAX_ENTRIES 4096
#define DELQ_MAX_ENTRY	 (64u << 10)
/* Queued entries are "del-<16 hex digits>"; the agent renames the ones
 * it cannot decode to "bad-<name>" and the ones whose DEL failed to
 * "failed-<name>", and never replays either. */
#define DELQ_PREFIX	 "del-"
#define DELQ_NAME_MAX	 32

/* <directory of socket_path>/del-queue into buf; -ENAMETOOLONG if it does
 * not fit. */
int delq_dir_path(const char *socket_path, char *buf, size_t len);

/*
 * Open the queue of the agent at socket_path, creating it (root, 0700) and
 * the socket's missing directories (root, 0755) as the agent does. Every
 * directory above must pass api_socket_dirs_check, and the queue itself
 * must be a directory (not a symlink) owned by root and writable by no one
 * else: whoever writes there chooses what the agent deletes. alternative
 * ends the fix in messages (api_socket_dirs_check). Returns the directory's
 * fd or a negative errno with err naming the directory and the fix.
 */
int delq_open(const char *socket_path, const char *alternative, char *err, size_t errlen);

/* flock(dirfd, op) (LOCK_SH or LOCK_EX), waiting at most timeout_ms:
 * 0 or -ETIMEDOUT / another negative errno. Released by close(dirfd). */
int delq_lock(int dirfd, int op, int timeout_ms);

/* The entry name of the attachment (container_id, ifname): a repeated DEL
 * of one attachment replaces its entry. */
void delq_entry_name(const char *container_id, const char *ifname, char name[DELQ_NAME_MAX]);

/* Is name a queued entry (DELQ_PREFIX and 16 hex digits)? */
int delq_is_entry(const char *name);

/* Files in the queue (entries and set-aside ones, not temporaries), or a
 * negative errno. */
int delq_count(int dirfd);

/* The entry for req: {"version", "queuedAt" (seconds since the epoch),
 * "request"} as text in *out (free it). 0, -ENOMEM, or -EFBIG past
 * DELQ_MAX_ENTRY. */
int delq_entry_encode(const json_t *req, long long queued_at, char **out, size_t *len);

/*
 * Check an entry's text: JSON, this format version, a "del" request with
 * the cni object's containerId and ifname, stored under the name they
 * give. Returns 0 and a new reference to the request, or -EINVAL with err
 * saying what is wrong. The request's fields are the agent's to check.
 */
int delq_entry_decode(const char *name, const char *buf, size_t len, json_t **req, char *err,
		      size_t errlen);

#endif /* SLUICE_DELQ_H */
