/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crash-safe small files: every piece of sluice state on disk (the agent's
 * --state-dir, the CNI plugin's queue of DELs) is written through here, so a
 * power cut leaves each file with its old content or its new one, never a
 * mix, and a file that appeared or went away stays so after the cut.
 */
#ifndef SLUICE_STATEFILE_H
#define SLUICE_STATEFILE_H

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

/* Replace (or create) name in the directory dirfd with buf[0..len): a fresh
 * temporary file in the same directory, written in full and fsynced,
 * renamed over name, then the directory fsynced. Returns 0 or -errno
 * (ENOSPC, EROFS, EDQUOT...); on failure name is untouched and no temporary
 * file is left behind. Safe from several threads (temporary names differ). */
int sf_write_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode);

/* Create name with buf, failing with -EEXIST when it exists (link(2) of a
 * synced temporary file, then the directory fsynced): a reservation nobody
 * else can take. Nothing is left behind on failure. */
int sf_create_exclusive(int dirfd, const char *name, const void *buf, size_t len, mode_t mode);

/* Remove name and fsync the directory, so the removal outlives a power cut.
 * A missing name is success. */
int sf_remove(int dirfd, const char *name);

/* fsync the directory dirfd (its entries: creations, renames, removals). */
int sf_sync_dir(int dirfd);

/* Read all of name (at most max bytes; -EFBIG past that) into a fresh
 * NUL-terminated buffer. *len excludes the NUL. */
int sf_read(int dirfd, const char *name, size_t max, char **out, size_t *len);

/* A DIR stream over the directory dirfd refers to, from its first entry;
 * dirfd stays open and usable (the stream works on a duplicate). NULL with
 * errno set on failure. */
DIR *sf_opendir(int dirfd);

/* Is the temporary-file name one sf_* made (".sf-tmp-...")? Directory scans
 * skip them and start-up removes the ones a crash left behind. */
int sf_is_temporary(const char *name);

/* Remove every temporary file a crash left in the directory (those of
 * processes that are gone; never one in flight); the count. */
int sf_remove_temporaries(int dirfd);

/* sf_write_atomic for a file named by its path (its directory is opened
 * for the call). */
int sf_write_path(const char *path, const void *buf, size_t len, mode_t mode);

/* Move a file that cannot be read (torn, garbage) out of the way, to
 * "<name>.corrupt" in the same directory (replacing an older one), so a
 * start-up repair leaves the evidence and never reads it again. */
int sf_quarantine(int dirfd, const char *name);

/* When an error writing state in dir (-errno or errno) is the storage's
 * fault (full, over quota, read-only, no permission, I/O error), a sentence
 * naming dir, the cause and the fix into buf ("state directory D is full
 * (No space left on device): free space on it") and 1; else 0. */
int sf_storage_error(const char *dir, int err, char *buf, size_t len);

#endif /* SLUICE_STATEFILE_H */
