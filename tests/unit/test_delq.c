// SPDX-License-Identifier: Apache-2.0
/* Unit tests for DEL while the agent is down: the plugin's queue
 * (cni-plugin/queue.c, lib/delq.c) and the agent's replay of it
 * (agent/delq_replay.c). Each test works in its own directory under /tmp;
 * the agent is a stub transport, the replay's DEL a recording function. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api.h"
#include "cni.h"
#include "delq.h"
#include "delq_replay.h"
#include "queue.h"
#include "statefile.h"

#define CONF "{\"cniVersion\":\"1.1.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\",\"socket\":\"%s\"}"

/* The test's directory: <tmp>/run holds the socket and the queue. */
struct env {
	char tmp[64];
	char run[96];
	char sock[128];
	char queue[128];
	char conf[512];
};

/* The agent: what each call returns, in order (the last one repeats). */
struct fake_agent {
	int rets[4];
	const char *answers[4];
	int nrets;
	int calls;
	json_t *req;		/* the last request sent */
	struct env *env;
	atomic_int *released;	/* when set: must be 1 by the second call */
	int lock_seen;		/* the plugin held the queue's lock at the second call */
};

static int fake_call(const char *socket_path, const json_t *req, json_t **resp, int timeout_ms,
		     char *err, size_t errlen, void *ctx)
{
	struct fake_agent *fa = ctx;
	int i = fa->calls < fa->nrets ? fa->calls : fa->nrets - 1, fd;

	(void)timeout_ms;
	fa->calls++;
	json_decref(fa->req);
	fa->req = json_deep_copy(req);
	if (fa->calls == 2) {
		if (fa->released)
			assert_int_equal(atomic_load(fa->released), 1);
		/* The plugin holds the lock across its second try: an agent
		 * starting now cannot scan before the entry is settled. */
		fd = open(fa->env->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fa->lock_seen = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK;
		if (fd >= 0)
			close(fd);
	}
	if (fa->rets[i]) {
		snprintf(err, errlen, "fake agent at %s: %s", socket_path, strerror(-fa->rets[i]));
		return fa->rets[i];
	}
	*resp = json_loads(fa->answers[i] ? fa->answers[i] : "{\"ok\":true,\"result\":{}}", 0,
			   NULL);
	assert_non_null(*resp);
	return 0;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->tmp, sizeof(e->tmp), "/tmp/sluice-delq-test.XXXXXX");
	assert_non_null(mkdtemp(e->tmp));
	snprintf(e->run, sizeof(e->run), "%s/run", e->tmp);
	snprintf(e->sock, sizeof(e->sock), "%s/agent.sock", e->run);
	snprintf(e->queue, sizeof(e->queue), "%s/" DELQ_DIR, e->run);
	snprintf(e->conf, sizeof(e->conf), CONF, e->sock);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->tmp);
	assert_int_equal(system(cmd), 0);
	free(e);
	return 0;
}

static int run_cmd(struct env *e, const char *cmd, const char *cid, const char *ifname,
		   struct fake_agent *fa, json_t **out)
{
	char c[64], id[128], ifn[64];
	const char *envp[] = { c, id, "CNI_NETNS=/run/netns/p", ifn, "CNI_PATH=/opt/cni/bin",
			       NULL };

	snprintf(c, sizeof(c), "CNI_COMMAND=%s", cmd);
	snprintf(id, sizeof(id), "CNI_CONTAINERID=%s", cid);
	snprintf(ifn, sizeof(ifn), "CNI_IFNAME=%s", ifname);
	fa->env = e;
	*out = NULL;
	return cni_run(envp, e->conf, strlen(e->conf), fake_call, fa, out);
}

static int del(struct env *e, const char *cid, struct fake_agent *fa, json_t **out)
{
	return run_cmd(e, "DEL", cid, "eth0", fa, out);
}

/* Files in the queue (entries and set-aside ones); -1 if there is none. */
static int queue_files(struct env *e)
{
	int fd = open(e->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	if (fd < 0)
		return -1;
	n = delq_count(fd);
	close(fd);
	return n;
}

static int queue_has(struct env *e, const char *name)
{
	char p[192];

	snprintf(p, sizeof(p), "%s/%s", e->queue, name);
	return access(p, F_OK) == 0;
}

static void assert_code(const json_t *out, int code, const char *needle)
{
	const char *msg = json_string_value(json_object_get(out, "msg"));
	const char *details = json_string_value(json_object_get(out, "details"));

	assert_non_null(out);
	assert_int_equal(json_integer_value(json_object_get(out, "code")), code);
	if (needle && !strstr(msg, needle) && !strstr(details, needle)) {
		fprintf(stderr, "error \"%s\" / \"%s\" lacks \"%s\"\n", msg, details, needle);
		fail();
	}
}

/* ---- the plugin ---------------------------------------------------------- */

static void test_del_queued_when_no_agent(void **state)
{
	static const int absent[] = { -ENOENT, -ECONNREFUSED };
	struct env *e = *state;
	char name[DELQ_NAME_MAX], p[192], *buf;
	json_t *out, *req;
	struct stat st;
	size_t i, len;
	int fd;

	for (i = 0; i < 2; i++) {
		struct fake_agent fa = { .rets = { absent[i] }, .nrets = 1 };
		char err[256];

		assert_int_equal(del(e, "ctr1", &fa, &out), 0);
		assert_null(out); /* nothing printed: a DEL's success */
		assert_int_equal(fa.calls, 2);	/* the first try, and once more after queueing */
		assert_true(fa.lock_seen);
		assert_int_equal(queue_files(e), 1);
		delq_entry_name("ctr1", "eth0", name);
		assert_true(queue_has(e, name));
		/* Created as the agent would: root's, 0700. */
		assert_int_equal(stat(e->queue, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0700);
		assert_int_equal(st.st_uid, 0);
		snprintf(p, sizeof(p), "%s/%s", e->queue, name);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		/* The entry is the request the agent would have got. */
		fd = open(e->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_int_equal(sf_read(fd, name, DELQ_MAX_ENTRY, &buf, &len), 0);
		assert_int_equal(delq_entry_decode(name, buf, len, &req, err, sizeof(err)), 0);
		assert_true(json_equal(req, fa.req));
		assert_string_equal(json_string_value(json_object_get(req, "op")), "del");
		json_decref(req);
		free(buf);
		close(fd);
		json_decref(fa.req);
	}
}

static void test_del_not_queued_for_a_live_agent(void **state)
{
	/* A live agent that times out or drops the connection may yet do the
	 * DEL: a queued copy replayed at its next start could then delete a
	 * newer ADD of the same container. The runtime retries instead. */
	static const int live[] = { -ETIMEDOUT, -ECONNRESET, -EPIPE };
	struct env *e = *state;
	json_t *out;
	size_t i;

	for (i = 0; i < 3; i++) {
		struct fake_agent fa = { .rets = { live[i] }, .nrets = 1 };

		assert_int_equal(del(e, "ctr1", &fa, &out), 1);
		assert_code(out, CNI_ERR_TRY_AGAIN, "unreachable");
		assert_int_equal(fa.calls, 1);
		assert_int_equal(queue_files(e), -1);
		json_decref(out);
		json_decref(fa.req);
	}
}

static void test_other_commands_not_queued(void **state)
{
	struct env *e = *state;
	struct fake_agent fa = { .rets = { -ENOENT }, .nrets = 1 };
	char gc_conf[512];
	const char *gc_env[] = { "CNI_COMMAND=GC", "CNI_PATH=/opt/cni/bin", NULL };
	const char *st_env[] = { "CNI_COMMAND=STATUS", NULL };
	const char *chk_env[] = { "CNI_COMMAND=CHECK", "CNI_CONTAINERID=ctr1",
				  "CNI_NETNS=/run/netns/p", "CNI_IFNAME=eth0", NULL };
	char chk_conf[512];
	json_t *out;

	assert_int_equal(run_cmd(e, "ADD", "ctr1", "eth0", &fa, &out), 1);
	assert_code(out, CNI_ERR_TRY_AGAIN, "unreachable");
	json_decref(out);
	snprintf(chk_conf, sizeof(chk_conf),
		 "{\"cniVersion\":\"1.1.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\","
		 "\"socket\":\"%s\",\"prevResult\":{}}", e->sock);
	assert_int_equal(cni_run(chk_env, chk_conf, strlen(chk_conf), fake_call, &fa, &out), 1);
	assert_code(out, CNI_ERR_TRY_AGAIN, "unreachable");
	json_decref(out);
	assert_int_equal(cni_run(st_env, e->conf, strlen(e->conf), fake_call, &fa, &out), 1);
	assert_code(out, CNI_ERR_NOT_AVAILABLE, "not available");
	json_decref(out);
	snprintf(gc_conf, sizeof(gc_conf),
		 "{\"cniVersion\":\"1.1.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\","
		 "\"socket\":\"%s\",\"cni.dev/valid-attachments\":[]}", e->sock);
	assert_int_equal(cni_run(gc_env, gc_conf, strlen(gc_conf), fake_call, &fa, &out), 1);
	assert_code(out, CNI_ERR_TRY_AGAIN, "unreachable");
	json_decref(out);
	assert_int_equal(fa.calls, 4);	/* one try each, no second */
	assert_int_equal(queue_files(e), -1);
	json_decref(fa.req);
}

static void test_del_dedup(void **state)
{
	struct env *e = *state;
	struct fake_agent fa = { .rets = { -ENOENT }, .nrets = 1 };
	char a[DELQ_NAME_MAX], b[DELQ_NAME_MAX], c[DELQ_NAME_MAX];
	json_t *out;

	assert_int_equal(del(e, "ctr1", &fa, &out), 0);
	assert_int_equal(del(e, "ctr1", &fa, &out), 0);
	assert_int_equal(queue_files(e), 1);	/* a repeated DEL replaces its entry */
	assert_int_equal(del(e, "ctr2", &fa, &out), 0);
	assert_int_equal(run_cmd(e, "DEL", "ctr1", "eth1", &fa, &out), 0);
	assert_int_equal(queue_files(e), 3);	/* other attachments have their own */
	delq_entry_name("ctr1", "eth0", a);
	delq_entry_name("ctr2", "eth0", b);
	delq_entry_name("ctr1", "eth1", c);
	assert_true(queue_has(e, a) && queue_has(e, b) && queue_has(e, c));
	assert_true(strcmp(a, b) && strcmp(a, c) && strcmp(b, c));
	json_decref(fa.req);
}

static void test_del_second_try_reaches_agent(void **state)
{
	struct env *e = *state;
	json_t *out;

	/* The agent came up in between: it gets the DEL, the entry goes. */
	{
		struct fake_agent fa = { .rets = { -ECONNREFUSED, 0 }, .nrets = 2 };

		assert_int_equal(del(e, "ctr1", &fa, &out), 0);
		assert_null(out);
		assert_int_equal(fa.calls, 2);
		assert_int_equal(queue_files(e), 0);
		json_decref(fa.req);
	}
	/* Its error is the runtime's, and the entry goes too: the runtime
	 * retries against a live agent. */
	{
		struct fake_agent fa = {
			.rets = { -ENOENT, 0 }, .nrets = 2,
			.answers = { NULL, "{\"ok\":false,\"error\":{\"code\":999,\"msg\":\"boom\","
					   "\"details\":\"\"}}" },
		};

		assert_int_equal(del(e, "ctr1", &fa, &out), 1);
		assert_code(out, 999, "boom");
		assert_int_equal(queue_files(e), 0);
		json_decref(out);
		json_decref(fa.req);
	}
	{
		struct fake_agent fa = { .rets = { -ENOENT, -ETIMEDOUT }, .nrets = 2 };

		assert_int_equal(del(e, "ctr1", &fa, &out), 1);
		assert_code(out, CNI_ERR_TRY_AGAIN, "unreachable");
		assert_int_equal(queue_files(e), 0);
		json_decref(out);
		json_decref(fa.req);
	}
}

static void *release_later(void *arg)
{
	int *fd = arg;
	atomic_int *released = (atomic_int *)(fd + 1);

	usleep(300 * 1000);
	atomic_store(released, 1);
	close(*fd);
	return NULL;
}

static void test_del_waits_for_a_replaying_agent(void **state)
{
	struct env *e = *state;
	struct fake_agent fa = { .rets = { -ENOENT }, .nrets = 1 };
	struct {
		int fd;
		atomic_int released;
	} lk = { -1, 0 };
	pthread_t t;
	json_t *out;

	/* An agent between its scan and its listen holds the lock: the DEL
	 * waits, so its entry is not written behind the scan. */
	assert_int_equal(mkdir(e->run, 0755), 0);
	assert_int_equal(mkdir(e->queue, 0700), 0);
	lk.fd = open(e->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(flock(lk.fd, LOCK_EX), 0);
	fa.released = &lk.released;
	assert_int_equal(pthread_create(&t, NULL, release_later, &lk), 0);
	assert_int_equal(del(e, "ctr1", &fa, &out), 0);
	pthread_join(t, NULL);
	assert_int_equal(fa.calls, 2);
	assert_int_equal(queue_files(e), 1);
	json_decref(fa.req);
}

static void expect_refused(struct env *e, const char *needle)
{
	struct fake_agent fa = { .rets = { -ENOENT }, .nrets = 1 };
	json_t *out;
	int n = queue_files(e);

	assert_int_equal(del(e, "ctr1", &fa, &out), 1);
	assert_code(out, CNI_ERR_TRY_AGAIN, "cannot be queued");
	assert_code(out, CNI_ERR_TRY_AGAIN, needle);
	assert_int_equal(fa.calls, 1);
	assert_int_equal(queue_files(e), n);	/* nothing written */
	json_decref(out);
	json_decref(fa.req);
}

static void test_unsafe_queue_refused(void **state)
{
	struct env *e = *state;
	char elsewhere[160];

	assert_int_equal(mkdir(e->run, 0755), 0);
	assert_int_equal(mkdir(e->queue, 0700), 0);
	assert_int_equal(chmod(e->queue, 0770), 0);
	expect_refused(e, "mode 0770");
	assert_int_equal(chmod(e->queue, 0703), 0);
	expect_refused(e, "mode 0703");
	assert_int_equal(chmod(e->queue, 0700), 0);
	assert_int_equal(chown(e->queue, 1234, 0), 0);
	expect_refused(e, "uid 1234");
	/* A symlink, even to a good directory, is not the queue. */
	assert_int_equal(rmdir(e->queue), 0);
	snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", e->tmp);
	assert_int_equal(mkdir(elsewhere, 0700), 0);
	assert_int_equal(symlink(elsewhere, e->queue), 0);
	expect_refused(e, "symlink");
	assert_int_equal(unlink(e->queue), 0);
	/* The socket's directory is checked as the agent checks it. */
	assert_int_equal(chmod(e->run, 0777), 0);
	expect_refused(e, "above the socket");
	assert_int_equal(queue_files(e), -1);
	/* Put right, the same DEL is queued. */
	assert_int_equal(chmod(e->run, 0755), 0);
	{
		struct fake_agent fa = { .rets = { -ENOENT }, .nrets = 1 };
		json_t *out;

		assert_int_equal(del(e, "ctr1", &fa, &out), 0);
		assert_int_equal(queue_files(e), 1);
		json_decref(fa.req);
	}
}

static void test_queue_bound(void **state)
{
	struct env *e = *state;
	struct fake_agent fa = { .rets = { -ENOENT }, .nrets = 1 };
	char name[64];
	json_t *out;
	int fd, f, i;

	assert_int_equal(del(e, "ctr1", &fa, &out), 0);
	fd = open(e->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Set-aside files count too (no fsync for these: speed). */
	for (i = 1; i < DELQ_MAX_ENTRIES; i++) {
		snprintf(name, sizeof(name), "bad-filler-%d", i);
		f = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(f >= 0);
		close(f);
	}
	close(fd);
	assert_int_equal(queue_files(e), DELQ_MAX_ENTRIES);
	assert_int_equal(del(e, "ctr2", &fa, &out), 1);
	assert_code(out, CNI_ERR_TRY_AGAIN, "is full");
	json_decref(out);
	/* A queued attachment's repeated DEL still replaces its entry. */
	assert_int_equal(del(e, "ctr1", &fa, &out), 0);
	assert_int_equal(queue_files(e), DELQ_MAX_ENTRIES);
	json_decref(fa.req);
}

/* ---- the agent's replay -------------------------------------------------- */

struct recorder {
	json_t *ran;	/* containerIds, in order */
};

static int record_del(void *ctx, const json_t *req, char *err, size_t errlen)
{
	struct recorder *r = ctx;
	const char *cid = json_string_value(json_object_get(json_object_get(req, "cni"),
							    "containerId"));

	assert_string_equal(json_string_value(json_object_get(req, "op")), "del");
	json_array_append_new(r->ran, json_string(cid));
	if (!strcmp(cid, "fail1")) {
		snprintf(err, errlen, "the DEL failed: policy sync");
		return -1;
	}
	return 0;
}

/* An entry as the plugin writes it, for (cid, ifname), under name (NULL:
 * its own), with op and version as given. */
static void put_entry(int dirfd, const char *name, const char *cid, const char *op, int version)
{
	char own[DELQ_NAME_MAX], *text;
	json_t *req = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "op", op, "cni", "containerId",
				cid, "ifname", "eth0", "netns", "", "network", "sluice");
	size_t len;

	assert_int_equal(delq_entry_encode(req, (long long)time(NULL), &text, &len), 0);
	if (version != DELQ_VERSION) {
		char *at = strstr(text, "\"version\":1");

		assert_non_null(at);
		at[10] = (char)('0' + version);
	}
	delq_entry_name(cid, "eth0", own);
	assert_int_equal(sf_write_atomic(dirfd, name ? name : own, text, len, 0600), 0);
	free(text);
	json_decref(req);
}

static void put_raw(int dirfd, const char *cid, const char *text, size_t len)
{
	char name[DELQ_NAME_MAX];

	delq_entry_name(cid, "eth0", name);
	assert_int_equal(sf_write_atomic(dirfd, name, text, len, 0600), 0);
}

static int exists_at(int dirfd, const char *prefix, const char *cid)
{
	char name[DELQ_NAME_MAX], p[DELQ_NAME_MAX + 16];

	delq_entry_name(cid, "eth0", name);
	snprintf(p, sizeof(p), "%s%s", prefix, name);
	return faccessat(dirfd, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static void test_replay(void **state)
{
	struct env *e = *state;
	struct recorder r = { json_array() };
	struct delq_stats st = { 0 };
	char other[DELQ_NAME_MAX], dirname_[DELQ_NAME_MAX], *big;
	int fd;

	assert_int_equal(mkdir(e->run, 0755), 0);
	assert_int_equal(mkdir(e->queue, 0700), 0);
	fd = open(e->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	put_entry(fd, NULL, "ok1", "del", DELQ_VERSION);
	put_entry(fd, NULL, "ok2", "del", DELQ_VERSION);
	put_entry(fd, NULL, "fail1", "del", DELQ_VERSION);
	put_raw(fd, "json1", "{\"version\":1,", 13);
	put_raw(fd, "empty1", "", 0);
	put_entry(fd, NULL, "version2", "del", 2);
	/* Only DELs are replayed: anything else is never run. */
	put_entry(fd, NULL, "add1", "add", DELQ_VERSION);
	delq_entry_name("victim", "eth0", other);
	put_entry(fd, other, "wrongname", "del", DELQ_VERSION);
	/* The API's decoder refuses this container ID. */
	put_entry(fd, NULL, "-dash", "del", DELQ_VERSION);
	big = malloc(DELQ_MAX_ENTRY + 2);
	assert_non_null(big);
	memset(big, ' ', DELQ_MAX_ENTRY + 1);
	put_raw(fd, "big1", big, DELQ_MAX_ENTRY + 1);
	free(big);
	delq_entry_name("dir1", "eth0", dirname_);
	assert_int_equal(mkdirat(fd, dirname_, 0700), 0);
	assert_int_equal(sf_create_exclusive(fd, ".sf-tmp-1-1", "x", 1, 0600), 0);
	assert_int_equal(sf_create_exclusive(fd, "README", "x", 1, 0600), 0);

	delq_replay(fd, e->queue, record_del, &r, &st);
	assert_int_equal(st.replayed, 2);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.malformed, 8);
	/* Sorted by name: ok1, ok2 and fail1 in some order, nothing else. */
	assert_int_equal(json_array_size(r.ran), 3);
	{
		json_t *want = json_pack("[s, s, s]", "ok1", "ok2", "fail1"), *v;
		size_t i, j;

		json_array_foreach(want, i, v) {
			int seen = 0;

			for (j = 0; j < json_array_size(r.ran); j++)
				seen += json_equal(v, json_array_get(r.ran, j));
			assert_int_equal(seen, 1);
		}
		json_decref(want);
	}
	assert_false(exists_at(fd, "", "ok1"));
	assert_false(exists_at(fd, "", "ok2"));
	assert_true(exists_at(fd, "failed-", "fail1"));
	assert_true(exists_at(fd, "bad-", "json1"));
	assert_true(exists_at(fd, "bad-", "empty1"));
	assert_true(exists_at(fd, "bad-", "version2"));
	assert_true(exists_at(fd, "bad-", "add1"));
	assert_true(exists_at(fd, "bad-", "victim"));
	assert_true(exists_at(fd, "bad-", "-dash"));
	assert_true(exists_at(fd, "bad-", "big1"));
	assert_true(exists_at(fd, "bad-", "dir1"));
	assert_int_equal(faccessat(fd, ".sf-tmp-1-1", F_OK, 0), -1);
	assert_int_equal(faccessat(fd, "README", F_OK, 0), 0);

	/* What was set aside stays aside: a second start runs nothing. */
	memset(&st, 0, sizeof(st));
	delq_replay(fd, e->queue, record_del, &r, &st);
	assert_int_equal(st.replayed + st.failed + st.malformed, 0);
	assert_int_equal(json_array_size(r.ran), 3);
	close(fd);
	json_decref(r.ran);
}

/* The plugin's entry is what the agent replays, whole. */
static void test_plugin_entry_replays(void **state)
{
	struct env *e = *state;
	struct fake_agent fa = { .rets = { -ENOENT }, .nrets = 1 };
	struct recorder r = { json_array() };
	struct delq_stats st = { 0 };
	json_t *out;
	int fd;

	assert_int_equal(del(e, "ctr1", &fa, &out), 0);
	fd = open(e->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	delq_replay(fd, e->queue, record_del, &r, &st);
	assert_int_equal(st.replayed, 1);
	assert_int_equal(st.failed + st.malformed, 0);
	assert_string_equal(json_string_value(json_array_get(r.ran, 0)), "ctr1");
	assert_int_equal(delq_count(fd), 0);
	close(fd);
	json_decref(r.ran);
	json_decref(fa.req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_del_queued_when_no_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_not_queued_for_a_live_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_commands_not_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_second_try_reaches_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_waits_for_a_replaying_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_queue_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plugin_entry_replays, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
