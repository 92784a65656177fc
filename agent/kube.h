/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes API as a source of objects for the store: one thread per
 * watched kind lists it (paged), then watches from the list's
 * resourceVersion with bookmarks, resumes from the last resourceVersion it
 * saw when a stream ends, relists on 410 Gone, and backs off with jitter
 * while the server is unreachable. The threads only talk HTTP and parse
 * JSON; they hand events to the main thread through a queue, and the main
 * thread alone changes the store (kube_drain), so the store and the
 * datapath need no locks. A list goes to the store page by page as it
 * comes (a watcher fetches a page only once all but one it fetched are
 * applied), so no whole list is ever held; what its pages change is
 * reported at its end, so a relist still lands as one change.
 */
#ifndef SLUICE_AGENT_KUBE_H
#define SLUICE_AGENT_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "prom.h"
#include "store.h"

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* How to reach and authenticate to the API server. Each credential is a
 * file path or in-memory data (from a kubeconfig's *-data fields). */
struct kube_config {
	char *server;		/* https://host:port, no trailing slash */
	char *ca_file;
	char *ca_data;
	size_t ca_len;
	char *token;		/* a fixed bearer token */
	char *token_file;	/* read on every request: rotated tokens are picked up */
	char *cert_file, *key_file;
	char *cert_data, *key_data;
	size_t cert_len, key_len;
	bool insecure;		/* insecure-skip-tls-verify */
	char source[512];	/* for logs: "kubeconfig F, context C" or "in-cluster" */
};

/*
 * Load path (a kubeconfig: its current-context's cluster and user), or,
 * with path NULL, the in-cluster configuration: KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT, and the service account's ca.crt and token in
 * sa_dir. server (--k8s-api-server, or NULL): the API server's address,
 * "HOST:PORT" or "https://HOST:PORT", instead of KUBERNETES_SERVICE_HOST and
 * _PORT or the kubeconfig's cluster.server (without kube-proxy the kubernetes
 * Service's clusterIP may not answer the agent). Returns 0, or
 * -EINVAL/-ENOENT/-ENOMEM with err naming the file and field to fix.
 */
int kube_config_load(struct kube_config *c, const char *path, const char *sa_dir,
		     const char *server, char *err, size_t errlen);
/* True when the environment describes an in-cluster API server. */
bool kube_in_cluster(void);
void kube_config_free(struct kube_config *c);

struct kube;

/* Start the watcher threads; takes over cfg. node_name is sent in the
 * User-Agent. Returns 0 or a negative errno with err set. */
int kube_start(struct kube **out, struct kube_config *cfg, const char *node_name, char *err,
	       size_t errlen);
/* Readable (an eventfd) while events wait for kube_drain. */
int kube_fd(const struct kube *k);
/* Apply the waiting events to the store, in order, and append what changed
 * to changes (a list's changes at its end). Returns 0 or -ENOMEM. */
int kube_drain(struct kube *k, struct store *s, json_t *changes);
/* Every kind has been listed and applied at least once. */
bool kube_synced(const struct kube *k);
/* One kind's list has been applied (kind as in "Node"). */
bool kube_kind_synced(const struct kube *k, const char *kind);
/* {"server", "source", "synced", "connected", "resources": [...]}, for status. */
json_t *kube_status_json(struct kube *k);
/* Per kind, for /metrics: counters the watcher threads keep (copied
 * under their lock). by_type: watch events by enum kube_ev_type. */
enum kube_ev_type { KUBE_EV_ADDED, KUBE_EV_MODIFIED, KUBE_EV_DELETED, KUBE_EV_BOOKMARK,
		    KUBE_EV_TYPES };
struct kube_kind_counters {
	const char *kind;
	unsigned long lists, relists, errors;
	unsigned long by_type[KUBE_EV_TYPES];
	bool connected, synced;
};
/* Fill up to max entries (one per kind); returns how many. */
size_t kube_counters(struct kube *k, struct kube_kind_counters *out, size_t max);
/* Seconds from a watch event's arrival (its watcher thread parsed it) to
 * its application to the store by kube_drain: the main thread's backlog.
 * Read and updated by the main thread only. */
const struct prom_hist *kube_watch_lag(const struct kube *k);
/* Stop and join the threads, drop queued events, free k. */
void kube_stop(struct kube *k);

/* Decode base64 (standard alphabet, padding optional, whitespace skipped).
 * Returns a malloc'd buffer and its length, or NULL on bad input. */
char *kube_base64_decode(const char *in, size_t *len);

#endif /* SLUICE_AGENT_KUBE_H */
