// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: a Kubernetes watch stream as the agent decodes it
 * (agent/kube.c): the body split into lines as watch_cb splits it, each
 * line decoded by handle_line (the event's type, resourceVersion, ERROR
 * and 410 Gone, the object pruned to what sluice keeps), and the queued
 * events applied to a store by kube_drain, as the main loop does.
 *
 * The first byte picks the watched kind (its index in kube.c's
 * resources[], modulo their number); the rest is the body.
 *
 * handle_line and the watcher state are kube.c's own (static): this file
 * includes kube.c to reach them without changing its interface. No thread
 * or connection is made: a struct kube is set up by hand with what
 * handle_line and kube_drain use.
 */
#include "../../agent/kube.c"

#include <dirent.h>
#include <stdint.h>

#include "fuzz_state_dir.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_state_dir_init("fuzz-watch");
	return 0;
}

/* What kube_start sets up that handle_line, push and kube_drain use. */
static int kube_init(struct kube *k)
{
	memset(k, 0, sizeof(*k));
	k->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (k->efd < 0)
		return -1;
	atomic_init(&k->stop, false);
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->wake, NULL);
	for (unsigned i = 0; i < NRES; i++) {
		k->w[i].k = k;
		k->w[i].res = i;
		k->w[i].synced = true;
	}
	return 0;
}

static void kube_fini(struct kube *k)
{
	for (size_t i = 0; i < k->nq; i++)
		json_decref(k->q[i].data);
	free(k->q);
	for (unsigned i = 0; i < NRES; i++)
		json_decref(k->w[i].list_changes);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->wake);
	close(k->efd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kube k;	/* ~ a few KiB: not on the stack */
	struct watcher *w;
	struct store *s = NULL;
	json_t *changes = NULL;
	const char *body;
	size_t len, start = 0;
	char err[512];

	if (!size || kube_init(&k))
		return 0;
	w = &k.w[data[0] % NRES];
	body = (const char *)data + 1;
	len = size - 1;
	/* watch_cb's split: a line per event, empty lines skipped; it stops
	 * at an ERROR event (relist or back off). A last line without its
	 * newline is not an event yet. */
	for (size_t i = 0; i < len && !w->gone && !w->stream_err; i++) {
		if (body[i] != '\n')
			continue;
		if (i > start)
			handle_line(w, body + start, i - start);
		start = i + 1;
	}
	changes = json_array();
	if (changes && !store_open(&s, fuzz_state_dir, err, sizeof(err)))
		kube_drain(&k, s, changes);
	store_close(s);
	fuzz_state_dir_empty();
	json_decref(changes);
	kube_fini(&k);
	return 0;
}
