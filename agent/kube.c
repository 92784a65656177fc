// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <fcntl.h>
#include "kube.h"
#include "log.h"
#include "manifest.h"

#include "sluice_version.h"

/* ---- configuration ----------------------------------------------------- */

bool kube_in_cluster(void)
{
	const char *h = getenv("KUBERNETES_SERVICE_HOST"), *p = getenv("KUBERNETES_SERVICE_PORT");

	return h && *h && p && *p;
}

void kube_config_free(struct kube_config *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca_data);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	free(c->key_data);
	memset(c, 0, sizeof(*c));
}

char *kube_base64_decode(const char *in, size_t *len)
{
	size_t n = strlen(in), o = 0;
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	char *out = malloc(n / 4 * 3 + 4);

	if (!out)
		return NULL;
	for (const char *p = in; *p; p++) {
		int v;

		if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			continue;
		if (*p == '=') {
			pad++;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		if (*p >= 'A' && *p <= 'Z')
			v = *p - 'A';
		else if (*p >= 'a' && *p <= 'z')
			v = *p - 'a' + 26;
		else if (*p >= '0' && *p <= '9')
			v = *p - '0' + 52;
		else if (*p == '+')
			v = 62;
		else if (*p == '/')
			v = 63;
		else
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits);
		}
	}
	if (bits >= 6 || pad > 2)
		goto bad;
	out[o] = '\0';
	*len = o;
	return out;
bad:
	free(out);
	return NULL;
}

/* path made absolute against the kubeconfig's directory, as kubectl does. */
static char *resolve(const char *dir, const char *path)
{
	char *r;

	if (path[0] == '/' || !dir)
		return strdup(path);
	if (asprintf(&r, "%s/%s", dir, path) < 0)
		return NULL;
	return r;
}

static const json_t *named(const json_t *list, const char *name, const char *field)
{
	const json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));

		if (n && !strcmp(n, name))
			return json_object_get(e, field);
	}
	return NULL;
}

/* A file path field or its -data twin (base64) from a kubeconfig map. */
static int file_or_data(const json_t *m, const char *field, const char *dir, char **file,
			char **data, size_t *len, const char *where, char *err, size_t errlen)
{
	char key[64];
	const char *f = json_string_value(json_object_get(m, field)), *d;

	snprintf(key, sizeof(key), "%s-data", field);
	d = json_string_value(json_object_get(m, key));
	if (d) {
		*data = kube_base64_decode(d, len);
		if (!*data) {
			snprintf(err, errlen, "%s.%s is not valid base64", where, key);
			return -EINVAL;
		}
		return 0;
	}
	if (f) {
		*file = resolve(dir, f);
		if (!*file)
			return -ENOMEM;
		if (access(*file, R_OK)) {
			snprintf(err, errlen, "%s.%s: cannot read %s: %s", where, field, *file,
				 strerror(errno));
			return -ENOENT;
		}
	}
	return 0;
}

static int load_kubeconfig(struct kube_config *c, const char *path, char *err, size_t errlen)
{
	json_t *objs = NULL, *srcs = NULL;
	const json_t *cfg, *ctx, *cluster, *user;
	const char *cur, *cname, *uname, *server;
	char why[1024], dirbuf[PATH_MAX], *dir;
	int ret;

	ret = manifest_read(path, &objs, &srcs, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "kubeconfig: %s", why);
		goto cleanup;
	}
	cfg = json_array_get(objs, 0);
	if (json_array_size(objs) != 1 ||
	    strcmp(json_string_value(json_object_get(cfg, "kind")) ?: "", "Config")) {
		snprintf(err, errlen, "kubeconfig %s: expected one document of kind: Config", path);
		ret = -EINVAL;
		goto cleanup;
	}
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	dir = dirname(dirbuf);
	cur = json_string_value(json_object_get(cfg, "current-context"));
	if (!cur || !*cur) {
		snprintf(err, errlen, "kubeconfig %s: no current-context (set one with kubectl "
				      "config use-context)", path);
		ret = -EINVAL;
		goto cleanup;
	}
	ctx = named(json_object_get(cfg, "contexts"), cur, "context");
	if (!ctx) {
		snprintf(err, errlen, "kubeconfig %s: current-context %s is not in contexts", path,
			 cur);
		ret = -EINVAL;
		goto cleanup;
	}
	cname = json_string_value(json_object_get(ctx, "cluster")) ?: "";
	uname = json_string_value(json_object_get(ctx, "user")) ?: "";
	cluster = named(json_object_get(cfg, "clusters"), cname, "cluster");
	if (!cluster) {
		snprintf(err, errlen, "kubeconfig %s: context %s names cluster '%s', which is not "
				      "in clusters", path, cur, cname);
		ret = -EINVAL;
		goto cleanup;
	}
	user = named(json_object_get(cfg, "users"), uname, "user");
	if (*uname && !user) {
		snprintf(err, errlen, "kubeconfig %s: context %s names user '%s', which is not in "
				      "users", path, cur, uname);
		ret = -EINVAL;
		goto cleanup;
	}
	server = json_string_value(json_object_get(cluster, "server"));
	if (!server || strncmp(server, "https://", 8)) {
		snprintf(err, errlen, "kubeconfig %s: cluster %s: server must be an https:// URL, "
				      "not '%s'", path, cname, server ?: "");
		ret = -EINVAL;
		goto cleanup;
	}
	c->server = strdup(server);
	if (!c->server) {
		ret = -ENOMEM;
		goto cleanup;
	}
	c->server[strcspn(c->server + 8, "/") + 8] = '\0';
	c->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
	snprintf(why, sizeof(why), "clusters[%s].cluster", cname);
	ret = file_or_data(cluster, "certificate-authority", dir, &c->ca_file, &c->ca_data,
			   &c->ca_len, why, err, errlen);
	if (ret)
		goto cleanup;
	if (user) {
		const char *tok = json_string_value(json_object_get(user, "token"));
		const char *tf = json_string_value(json_object_get(user, "tokenFile"));

		if (json_object_get(user, "exec") || json_object_get(user, "auth-provider") ||
		    json_object_get(user, "username")) {
			snprintf(err, errlen, "kubeconfig %s: user %s: only token, tokenFile and "
					      "client certificates are supported (not exec, "
					      "auth-provider or basic auth)", path, uname);
			ret = -EINVAL;
			goto cleanup;
		}
		if (tok && !(c->token = strdup(tok))) {
			ret = -ENOMEM;
			goto cleanup;
		}
		if (!tok && tf && !(c->token_file = resolve(dir, tf))) {
			ret = -ENOMEM;
			goto cleanup;
		}
		snprintf(why, sizeof(why), "users[%s].user", uname);
		ret = file_or_data(user, "client-certificate", dir, &c->cert_file, &c->cert_data,
				   &c->cert_len, why, err, errlen);
		if (!ret)
			ret = file_or_data(user, "client-key", dir, &c->key_file, &c->key_data,
					   &c->key_len, why, err, errlen);
		if (ret)
			goto cleanup;
		if (!(c->cert_file || c->cert_data) != !(c->key_file || c->key_data)) {
			snprintf(err, errlen, "kubeconfig %s: user %s: a client certificate needs "
					      "its key and the other way round", path, uname);
			ret = -EINVAL;
			goto cleanup;
		}
	}
	snprintf(c->source, sizeof(c->source), "kubeconfig %s, context %s", path, cur);
cleanup:
	json_decref(objs);
	json_decref(srcs);
	return ret;
}

/*
 * --k8s-api-server: "HOST:PORT", "[V6]:PORT" or "https://..." as given. A
 * bare HOST takes 443. http:// is refused: the token must not travel in
 * the clear.
 */
static int server_override(struct kube_config *c, const char *server, char *err, size_t errlen)
{
	const char *colon = strrchr(server, ':');
	int n;

	if (!strncmp(server, "https://", 8)) {
		n = asprintf(&c->server, "%s", server);
	} else if (strstr(server, "://") || !*server || strchr(server, '/')) {
		snprintf(err, errlen, "--k8s-api-server %s: give HOST:PORT or https://HOST:PORT "
				      "(the API server's own address, e.g. 192.168.1.10:6443)", server);
		return -EINVAL;
	} else if (colon && (server[0] != '[' || colon[-1] == ']')) {
		n = asprintf(&c->server, "https://%s", server);
	} else {
		n = asprintf(&c->server, "https://%s:443", server);
	}
	return n < 0 ? -ENOMEM : 0;
}

static int load_in_cluster(struct kube_config *c, const char *sa_dir, const char *server,
			   char *err, size_t errlen)
{
	const char *h = getenv("KUBERNETES_SERVICE_HOST"), *p = getenv("KUBERNETES_SERVICE_PORT");
	int n, ret;

	if (server) {
		ret = server_override(c, server, err, errlen);
		if (ret)
			return ret;
	} else if (!kube_in_cluster()) {
		snprintf(err, errlen, "not in a cluster: KUBERNETES_SERVICE_HOST and "
				      "KUBERNETES_SERVICE_PORT are not set; pass --kubeconfig or "
				      "--k8s-api-server");
		return -EINVAL;
	} else {
		n = strchr(h, ':') ? asprintf(&c->server, "https://[%s]:%s", h, p)
				   : asprintf(&c->server, "https://%s:%s", h, p);
		if (n < 0)
			return -ENOMEM;
	}
	if (asprintf(&c->ca_file, "%s/ca.crt", sa_dir) < 0 ||
	    asprintf(&c->token_file, "%s/token", sa_dir) < 0)
		return -ENOMEM;
	if (access(c->ca_file, R_OK) || access(c->token_file, R_OK)) {
		snprintf(err, errlen, "in-cluster: cannot read the service account's ca.crt and "
				      "token in %s: %s (is a service account mounted?)", sa_dir,
			 strerror(errno));
		return -ENOENT;
	}
	snprintf(c->source, sizeof(c->source), "in-cluster service account %s%s", sa_dir,
		 server ? ", --k8s-api-server" : "");
	return 0;
}

int kube_config_load(struct kube_config *c, const char *path, const char *sa_dir,
		     const char *server, char *err, size_t errlen)
{
	int ret;

	memset(c, 0, sizeof(*c));
	if (path) {
		ret = load_kubeconfig(c, path, err, errlen);
		/* The flag wins over the kubeconfig's cluster.server too. */
		if (!ret && server) {
			free(c->server);
			c->server = NULL;
			ret = server_override(c, server, err, errlen);
		}
	} else {
		ret = load_in_cluster(c, sa_dir, server, err, errlen);
	}
	if (ret)
		kube_config_free(c);
	return ret;
}

/* ---- the watched kinds --------------------------------------------------- */

static const struct resource {
	const char *api_version;
	const char *kind;
	const char *path;	/* cluster-wide collection */
	bool optional;		/* a CRD: 404 means "not installed", not an error */
} resources[] = {
	{ "v1", "Namespace", "/api/v1/namespaces", false },
	{ "v1", "Node", "/api/v1/nodes", false },
	{ "v1", "Pod", "/api/v1/pods", false },
	{ "v1", "Service", "/api/v1/services", false },
	{ "discovery.k8s.io/v1", "EndpointSlice", "/apis/discovery.k8s.io/v1/endpointslices", false },
	{ "networking.k8s.io/v1", "NetworkPolicy", "/apis/networking.k8s.io/v1/networkpolicies",
	  false },
	{ "sluice.io/v1alpha1", "SluiceNetworkPolicy",
	  "/apis/sluice.io/v1alpha1/sluicenetworkpolicies", true },
	{ "sluice.io/v1alpha1", "SluiceClusterNetworkPolicy",
	  "/apis/sluice.io/v1alpha1/sluiceclusternetworkpolicies", true },
	{ "sluice.io/v1alpha1", "SluicePrefilter", "/apis/sluice.io/v1alpha1/sluiceprefilters",
	  true },
};
#define NRES (sizeof(resources) / sizeof(resources[0]))

#define LIST_PAGE 500
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define CRD_RETRY_MS 30000	/* how often a missing CRD is looked for again */
#define LINE_MAX_BYTES (16u << 20)
#define LIST_BUF_KEEP (64u << 10)	/* a body buffer larger than this goes after a list */

/* Pages of a list the watcher may have fetched and not yet seen applied:
 * one applied while the next is fetched, so a list costs the store plus
 * two pages, never the whole list twice (a 50 000-pod relist held every
 * page until the last had come: 445 MiB peak against 373). */
#define LIST_AHEAD 2
/* Changes of one list named one by one (kube_drain), the rest counted as
 * one: the main loop logs 20 at most and looks only at their kinds. */
#define LIST_CHANGES_MAX 1024

/*
 * A list reaches the main thread as it comes: EV_LIST_BEGIN, EV_LIST_PAGE
 * for each page (its items), then EV_LIST_END (the objects no page named
 * go), or EV_LIST_ABORT when it failed midway (nothing goes; the next list
 * begins again).
 */
enum ev_type { EV_LIST_BEGIN, EV_LIST_PAGE, EV_LIST_END, EV_LIST_ABORT, EV_ADDED, EV_MODIFIED,
	       EV_DELETED };

struct event {
	unsigned res;
	enum ev_type type;
	json_t *data;		/* the object, a page's items, or NULL */
	double queued;		/* CLOCK_MONOTONIC seconds: the watch lag's start */
};

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Per-kind state. The thread owns curl and buf; the counters and strings
 * below `lock` are shared with kube_status_json and guarded by k->lock. */
struct watcher {
	struct kube *k;
	unsigned res;
	pthread_t tid;
	bool started;
	CURL *curl;
	char *buf;
	size_t len, cap;
	long http;
	bool gone;		/* 410: relist */
	bool stream_err;	/* a watch ERROR event other than 410 */
	char rv[64];		/* the last resourceVersion seen */
	unsigned seed;
	/* shared, under k->lock */
	bool connected;
	bool installed;
	unsigned long lists, watches, events, relists, errors;
	unsigned long by_type[KUBE_EV_TYPES];	/* watch events by enum kube_ev_type */
	char last_error[256];
	char status_rv[64];
	unsigned pages;		/* EV_LIST_PAGEs queued and not yet applied */
	/* main thread only */
	bool synced;
	size_t listed;		/* objects in the pages of the list being applied */
	/* What the pages of the list being applied changed, handed to
	 * kube_drain's caller at its end: a relist in pages lands as one
	 * change, not one policy sync per page. */
	json_t *list_changes;
	bool list_more;		/* changes past LIST_CHANGES_MAX not named */
};

struct kube {
	struct kube_config cfg;
	char user_agent[160];
	int efd;
	atomic_bool stop;
	pthread_mutex_t lock;	/* the queue and the watchers' shared fields */
	pthread_cond_t wake;	/* signalled on stop, for sleeping threads */
	struct event *q;
	size_t nq, capq;
	struct watcher w[NRES];
	/* From a watch event's arrival to its application (main thread only). */
	struct prom_hist lag;
};

static void set_error(struct watcher *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct watcher *w, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&w->k->lock);
	va_start(ap, fmt);
	vsnprintf(w->last_error, sizeof(w->last_error), fmt, ap);
	va_end(ap);
	w->errors++;
	w->connected = false;
	pthread_mutex_unlock(&w->k->lock);
}

static int push(struct kube *k, unsigned res, enum ev_type type, json_t *data)
{
	uint64_t one = 1;
	int ret = 0;

	pthread_mutex_lock(&k->lock);
	if (k->nq == k->capq) {
		size_t cap = k->capq ? k->capq * 2 : 64;
		struct event *q = realloc(k->q, cap * sizeof(*q));

		if (!q) {
			ret = -ENOMEM;
			goto out;
		}
		k->q = q;
		k->capq = cap;
	}
	k->q[k->nq++] = (struct event){ res, type, data, mono_s() };
	data = NULL;
	if (type == EV_LIST_PAGE)
		k->w[res].pages++;
out:
	pthread_mutex_unlock(&k->lock);
	json_decref(data);
	if (!ret && write(k->efd, &one, sizeof(one)) < 0)
		pr_debug("kubernetes: eventfd write: %s", strerror(errno));
	return ret;
}

/* Sleep ms, or less if the agent stops. Returns true when stopping. */
static bool nap(struct kube *k, long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&k->lock);
	while (!atomic_load(&k->stop))
		if (pthread_cond_timedwait(&k->wake, &k->lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&k->lock);
	return atomic_load(&k->stop);
}

/* Exponential backoff with jitter: half the step plus a random half. */
static long backoff(struct watcher *w, long *step)
{
	long ms = *step / 2 + (long)(rand_r(&w->seed) % (unsigned)(*step / 2 + 1));

	*step = *step * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *step * 2;
	return ms;
}

/* ---- what is kept of an object ------------------------------------------- */

/* A shared reference, not a copy (copies were a tenth of a relist's
 * CPU): the watcher thread drops the object the value comes from (the
 * page, the event) before it queues the pruned one (push, under the
 * lock), so the main thread is the only one that holds the value when
 * it uses it and frees it. */
static void copy_field(json_t *to, const json_t *from, const char *key)
{
	json_t *v = json_object_get(from, key);

	if (v)
		json_object_set(to, key, v);
}

/*
 * Keep what sluice reads and drop the rest (managedFields, status
 * conditions, resourceVersion...): objects stay small in memory and in
 * objects.json, and an update that changes nothing sluice uses compares
 * equal, so it costs no recompilation.
 */
static json_t *prune(const struct resource *r, const json_t *obj)
{
	const json_t *meta = json_object_get(obj, "metadata");
	json_t *out = json_pack("{s:s, s:s, s:{}}", "apiVersion", r->api_version, "kind", r->kind,
				"metadata");
	json_t *m = json_object_get(out, "metadata");

	if (!out)
		return NULL;
	copy_field(m, meta, "name");
	copy_field(m, meta, "namespace");
	copy_field(m, meta, "labels");
	if (!strcmp(r->kind, "Pod")) {
		const json_t *spec = json_object_get(obj, "spec"), *c;
		json_t *ps = json_object(), *pst = json_object(), *cs = json_array();
		size_t i;

		/* Only what decides its ports and address: the store keeps
		 * the Pod's parsed form, not this (agent/store.c, pod_text). */
		copy_field(ps, spec, "hostNetwork");
		json_array_foreach(json_object_get(spec, "containers"), i, c) {
			json_t *cc = json_object();

			copy_field(cc, c, "ports");
			json_array_append_new(cs, cc);
		}
		json_object_set_new(ps, "containers", cs);
		copy_field(pst, json_object_get(obj, "status"), "phase");
		copy_field(pst, json_object_get(obj, "status"), "podIP");
		copy_field(pst, json_object_get(obj, "status"), "podIPs");
		json_object_set_new(out, "spec", ps);
		json_object_set_new(out, "status", pst);
	} else if (!strcmp(r->kind, "Node")) {
		const json_t *spec = json_object_get(obj, "spec");
		json_t *ns = json_object(), *nst = json_object();

		/* The older of two Nodes claiming one range keeps it (store.c). */
		copy_field(m, meta, "creationTimestamp");
		copy_field(ns, spec, "podCIDR");
		copy_field(ns, spec, "podCIDRs");
		copy_field(nst, json_object_get(obj, "status"), "addresses");
		json_object_set_new(out, "spec", ns);
		json_object_set_new(out, "status", nst);
	} else if (!strcmp(r->kind, "Service")) {
		static const char *const fields[] = {
			"type", "clusterIP", "clusterIPs", "externalIPs", "ports", "sessionAffinity",
			"sessionAffinityConfig", "externalTrafficPolicy", "internalTrafficPolicy",
			"healthCheckNodePort", "publishNotReadyAddresses",
		};
		const json_t *spec = json_object_get(obj, "spec"), *ing;
		json_t *ss = json_object(), *ings = json_array();
		size_t i;

		/* The older of two Services claiming one frontend keeps it. */
		copy_field(m, meta, "creationTimestamp");
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			copy_field(ss, spec, fields[i]);
		json_object_set_new(out, "spec", ss);
		/* Of the status, only the load balancer's addresses: its
		 * conditions change without changing a frontend. */
		json_array_foreach(json_object_get(json_object_get(json_object_get(obj, "status"),
								   "loadBalancer"), "ingress"), i, ing) {
			json_t *e = json_object();

			copy_field(e, ing, "ip");
			copy_field(e, ing, "ipMode");
			json_array_append_new(ings, e);
		}
		if (json_array_size(ings))
			json_object_set_new(out, "status",
					    json_pack("{s:{s:o}}", "loadBalancer", "ingress", ings));
		else
			json_decref(ings);
	} else if (!strcmp(r->kind, "EndpointSlice")) {
		const json_t *e;
		json_t *eps = json_array();
		size_t i;

		copy_field(out, obj, "addressType");
		copy_field(out, obj, "ports");
		/* Not hints, zone or the targetRef's uid: they move no backend. */
		json_array_foreach(json_object_get(obj, "endpoints"), i, e) {
			const json_t *ref = json_object_get(e, "targetRef");
			json_t *c = json_object();

			copy_field(c, e, "addresses");
			copy_field(c, e, "conditions");
			copy_field(c, e, "nodeName");
			if (ref) {
				json_t *r2 = json_object();

				copy_field(r2, ref, "kind");
				copy_field(r2, ref, "namespace");
				copy_field(r2, ref, "name");
				json_object_set_new(c, "targetRef", r2);
			}
			json_array_append_new(eps, c);
		}
		json_object_set_new(out, "endpoints", eps);
	} else if (strcmp(r->kind, "Namespace")) {
		copy_field(out, obj, "spec"); /* policies: the spec is the policy */
	}
	return out;
}

/* ---- HTTP ------------------------------------------------------------------ */

static int stop_cb(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(&((struct watcher *)p)->k->stop) ? 1 : 0;
}

static size_t collect_cb(char *data, size_t size, size_t nmemb, void *p)
{
	struct watcher *w = p;
	size_t n = size * nmemb;

	if (w->len + n + 1 > LINE_MAX_BYTES * 4)
		return 0;
	if (w->len + n + 1 > w->cap) {
		size_t cap = (w->len + n + 1) * 2;
		char *b = realloc(w->buf, cap);

		if (!b)
			return 0;
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, data, n);
	w->len += n;
	w->buf[w->len] = '\0';
	return n;
}

/* Prepare w->curl for a GET of url; hdrs receives the header list to free.
 * The token file is read again for every request: rotation needs nothing. */
static int http_setup(struct watcher *w, const char *url, long timeout_s,
		      struct curl_slist **hdrs, char *err, size_t errlen)
{
	const struct kube_config *c = &w->k->cfg;
	char auth[8192];

	curl_easy_reset(w->curl);
	curl_easy_setopt(w->curl, CURLOPT_URL, url);
	curl_easy_setopt(w->curl, CURLOPT_USERAGENT, w->k->user_agent);
	curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(w->curl, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(w->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(w->curl, CURLOPT_XFERINFOFUNCTION, stop_cb);
	curl_easy_setopt(w->curl, CURLOPT_XFERINFODATA, w);
	curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->curl, CURLOPT_ACCEPT_ENCODING, "");
	if (c->insecure) {
		curl_easy_setopt(w->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(w->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca_file)
		curl_easy_setopt(w->curl, CURLOPT_CAINFO, c->ca_file);
	if (c->ca_data) {
		struct curl_blob b = { c->ca_data, c->ca_len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(w->curl, CURLOPT_CAINFO_BLOB, &b);
	}
	if (c->cert_file) {
		curl_easy_setopt(w->curl, CURLOPT_SSLCERT, c->cert_file);
		curl_easy_setopt(w->curl, CURLOPT_SSLKEY, c->key_file);
	}
	if (c->cert_data) {
		struct curl_blob cb = { c->cert_data, c->cert_len, CURL_BLOB_NOCOPY };
		struct curl_blob kb = { c->key_data, c->key_len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(w->curl, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(w->curl, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(w->curl, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(w->curl, CURLOPT_SSLKEYTYPE, "PEM");
	}
	*hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (c->token || c->token_file) {
		char tok[8000] = "";

		if (c->token) {
			snprintf(tok, sizeof(tok), "%s", c->token);
		} else {
			int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
			ssize_t n = fd < 0 ? -1 : read(fd, tok, sizeof(tok) - 1);

			if (fd >= 0)
				close(fd);
			if (n < 0) {
				snprintf(err, errlen, "cannot read token file %s: %s", c->token_file,
					 strerror(errno));
				return -errno;
			}
			tok[n] = '\0';
			tok[strcspn(tok, "\r\n")] = '\0';
		}
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
		*hdrs = curl_slist_append(*hdrs, auth);
		explicit_bzero(tok, sizeof(tok));
		explicit_bzero(auth, sizeof(auth));
	}
	if (!*hdrs)
		return -ENOMEM;
	curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, *hdrs);
	return 0;
}

/* A Kubernetes Status's message, or the body's start, for errors. */
static void status_message(const char *body, char *out, size_t len)
{
	json_t *st = json_loads(body ? body : "", 0, NULL);
	const char *msg = json_string_value(json_object_get(st, "message"));

	snprintf(out, len, "%.200s", msg ? msg : body ? body : "");
	json_decref(st);
}

/* Explain an HTTP failure of kind r: what the operator should look at. */
static void http_error(struct watcher *w, const char *what, CURLcode cc, long code)
{
	const struct resource *r = &resources[w->res];
	char msg[256];

	if (cc != CURLE_OK) {
		set_error(w, "%s %s: %s", what, r->path, curl_easy_strerror(cc));
		return;
	}
	status_message(w->buf, msg, sizeof(msg));
	if (code == 401)
		set_error(w, "%s %s: 401 Unauthorized (%s): check the token or client "
			     "certificate in %s", what, r->path, msg, w->k->cfg.source);
	else if (code == 403)
		set_error(w, "%s %s: 403 Forbidden (%s): the agent's ClusterRole must allow list "
			     "and watch on %s (see deploy/sluice.yaml)", what, r->path, msg, r->kind);
	else
		set_error(w, "%s %s: HTTP %ld: %s", what, r->path, code, msg);
}

/* ---- list ------------------------------------------------------------------ */

/* Wait until fewer than LIST_AHEAD pages of w's list wait to be applied.
 * Returns true when stopping. */
static bool pages_wait(struct watcher *w)
{
	struct kube *k = w->k;

	pthread_mutex_lock(&k->lock);
	while (w->pages >= LIST_AHEAD && !atomic_load(&k->stop))
		pthread_cond_wait(&k->wake, &k->lock);
	pthread_mutex_unlock(&k->lock);
	return atomic_load(&k->stop);
}

/*
 * List every object of the kind, page by page, each page queued for the
 * main thread as it comes (EV_LIST_*) and its text freed before the next
 * is asked for. Returns 0 with w->rv the list's resourceVersion and
 * *count the objects listed, 1 for a CRD that is not installed (nothing
 * queued), or -1 after recording the error (EV_LIST_ABORT queued if a
 * page was).
 */
static int list_pages(struct watcher *w, size_t *count)
{
	const struct resource *r = &resources[w->res];
	char url[2048], cont[1024] = "", err[256] = "";
	bool begun = false;
	int ret = -1;

	*count = 0;
	pthread_mutex_lock(&w->k->lock);
	w->lists++;
	pthread_mutex_unlock(&w->k->lock);
	for (;;) {
		struct curl_slist *hdrs = NULL;
		json_t *page = NULL, *items, *it;
		const char *rv, *next;
		CURLcode cc;
		size_t i;
		char *esc = NULL;

		if (pages_wait(w))
			goto cleanup;
		if (*cont)
			esc = curl_easy_escape(w->curl, cont, 0);
		snprintf(url, sizeof(url), "%s%s?limit=%d%s%s", w->k->cfg.server, r->path, LIST_PAGE,
			 esc ? "&continue=" : "", esc ? esc : "");
		curl_free(esc);
		w->len = 0;
		if (http_setup(w, url, 60, &hdrs, err, sizeof(err))) {
			set_error(w, "list %s: %s", r->path, err);
			curl_slist_free_all(hdrs);
			goto cleanup;
		}
		cc = curl_easy_perform(w->curl);
		curl_slist_free_all(hdrs);
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->http);
		if (cc == CURLE_OK && w->http == 404 && r->optional && !begun) {
			ret = 1;
			goto cleanup;
		}
		if (cc == CURLE_OK && w->http == 410 && *cont) {
			/* The continue token expired: start the list again (the
			 * store starts its list over at the next EV_LIST_BEGIN). */
			*cont = '\0';
			*count = 0;
			begun = false;
			continue;
		}
		if (cc != CURLE_OK || w->http != 200) {
			http_error(w, "list", cc, w->http);
			goto cleanup;
		}
		page = json_loadb(w->buf, w->len, 0, NULL);
		w->len = 0;
		rv = json_string_value(json_object_get(json_object_get(page, "metadata"),
						       "resourceVersion"));
		if (!rv || !json_is_array(json_object_get(page, "items"))) {
			set_error(w, "list %s: the answer is not a %sList", r->path, r->kind);
			json_decref(page);
			goto cleanup;
		}
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
		items = json_array();
		json_array_foreach(json_object_get(page, "items"), i, it)
			json_array_append_new(items, prune(r, it));
		next = json_string_value(json_object_get(json_object_get(page, "metadata"),
							 "continue"));
		snprintf(cont, sizeof(cont), "%s", next ? next : "");
		json_decref(page);
		*count += json_array_size(items);
		if (!begun && push(w->k, w->res, EV_LIST_BEGIN, NULL)) {
			json_decref(items);
			set_error(w, "list %s: out of memory queueing a page", r->path);
			goto cleanup;
		}
		begun = true;
		if (push(w->k, w->res, EV_LIST_PAGE, items)) {
			set_error(w, "list %s: out of memory queueing a page", r->path);
			goto cleanup;
		}
		if (!*cont)
			break;
	}
	if (push(w->k, w->res, EV_LIST_END, NULL)) {
		set_error(w, "list %s: out of memory queueing its end", r->path);
		goto cleanup;
	}
	ret = 0;
cleanup:
	/* The buffer held a page (~1 MB): the watch's events need less. */
	if (w->cap > LIST_BUF_KEEP) {
		free(w->buf);
		w->buf = NULL;
		w->len = w->cap = 0;
	}
	/* Out of memory even for this, the next EV_LIST_BEGIN starts over
	 * all the same. */
	if (ret < 0 && begun && push(w->k, w->res, EV_LIST_ABORT, NULL))
		pr_err("kubernetes: out of memory queueing the end of a failed %s list", r->kind);
	return ret;
}

/* ---- watch ----------------------------------------------------------------- */

static void handle_line(struct watcher *w, const char *line, size_t len)
{
	const struct resource *r = &resources[w->res];
	json_t *ev = json_loadb(line, len, 0, NULL), *obj;
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *rv;
	enum ev_type t;

	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		pr_warn("kubernetes: watch %s: ignoring a line that is not an event", r->path);
		goto out;
	}
	if (!strcmp(type, "ERROR")) {
		if (json_integer_value(json_object_get(obj, "code")) == 410) {
			w->gone = true;
		} else {
			w->stream_err = true;
			set_error(w, "watch %s: ERROR event: %s", r->path,
				  json_string_value(json_object_get(obj, "message")) ?: "?");
		}
		goto out;
	}
	rv = json_string_value(json_object_get(json_object_get(obj, "metadata"),
					       "resourceVersion"));
	if (rv)
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
	pthread_mutex_lock(&w->k->lock);
	snprintf(w->status_rv, sizeof(w->status_rv), "%s", w->rv);
	w->connected = true;
	if (strcmp(type, "BOOKMARK"))
		w->events++;
	w->by_type[!strcmp(type, "ADDED")      ? KUBE_EV_ADDED
		   : !strcmp(type, "MODIFIED") ? KUBE_EV_MODIFIED
		   : !strcmp(type, "DELETED")  ? KUBE_EV_DELETED
					       : KUBE_EV_BOOKMARK]++;
	pthread_mutex_unlock(&w->k->lock);
	if (!strcmp(type, "ADDED"))
		t = EV_ADDED;
	else if (!strcmp(type, "MODIFIED"))
		t = EV_MODIFIED;
	else if (!strcmp(type, "DELETED"))
		t = EV_DELETED;
	else
		goto out; /* BOOKMARK: only the resourceVersion matters */
	/* The event goes before the pruned object is queued: they share
	 * values (copy_field). */
	obj = prune(r, obj);
	json_decref(ev);
	if (push(w->k, w->res, t, obj))
		pr_err("kubernetes: out of memory queueing a %s event", r->kind);
	return;
out:
	json_decref(ev);
}

/* Streamed watch body: split into lines, one event each. */
static size_t watch_cb(char *data, size_t size, size_t nmemb, void *p)
{
	struct watcher *w = p;
	size_t n = size * nmemb, start = 0;
	long code = 0;

	if (collect_cb(data, size, nmemb, p) != n)
		return 0;
	/* Not a stream of events but an error (a Status): keep it for the
	 * message. */
	curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200)
		return n;
	for (size_t i = 0; i < w->len; i++) {
		if (w->buf[i] != '\n')
			continue;
		if (i > start)
			handle_line(w, w->buf + start, i - start);
		start = i + 1;
		if (w->gone || w->stream_err)
			return 0; /* end the stream: relist or back off */
	}
	memmove(w->buf, w->buf + start, w->len - start);
	w->len -= start;
	if (w->len > LINE_MAX_BYTES)
		return 0;
	return n;
}

/* Watch from w->rv until the stream ends. Returns 0 when it ended normally
 * (timeout: watch again), 1 on 410 (relist), -1 on an error (back off). */
static int watch(struct watcher *w)
{
	const struct resource *r = &resources[w->res];
	long timeout = 240 + (long)(rand_r(&w->seed) % 120);
	struct curl_slist *hdrs = NULL;
	char url[2048], err[256] = "";
	CURLcode cc;

	snprintf(url, sizeof(url),
		 "%s%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%ld",
		 w->k->cfg.server, r->path, w->rv, timeout);
	w->len = 0;
	w->gone = w->stream_err = false;
	if (http_setup(w, url, timeout + 30, &hdrs, err, sizeof(err))) {
		set_error(w, "watch %s: %s", r->path, err);
		curl_slist_free_all(hdrs);
		return -1;
	}
	curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, watch_cb);
	pthread_mutex_lock(&w->k->lock);
	w->watches++;
	pthread_mutex_unlock(&w->k->lock);
	cc = curl_easy_perform(w->curl);
	curl_slist_free_all(hdrs);
	curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->http);
	if (w->gone || (cc == CURLE_OK && w->http == 410))
		return 1;
	if (w->stream_err)
		return -1;
	if (cc == CURLE_OK && w->http == 200)
		return 0;
	if (cc == CURLE_WRITE_ERROR && w->http == 200) {
		set_error(w, "watch %s: an event longer than %u bytes", r->path, LINE_MAX_BYTES);
		return -1;
	}
	if (atomic_load(&w->k->stop))
		return -1;
	/* A stream cut by the server or the network after it had started is
	 * the normal end of a watch as far as the resourceVersion goes. */
	if (w->http == 200 && (cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR ||
			       cc == CURLE_GOT_NOTHING)) {
		set_error(w, "watch %s: stream cut: %s", r->path, curl_easy_strerror(cc));
		return -1;
	}
	http_error(w, "watch", cc, w->http);
	return -1;
}

static void *watcher_main(void *p)
{
	struct watcher *w = p;
	struct kube *k = w->k;
	const struct resource *r = &resources[w->res];
	long step = BACKOFF_MIN_MS;
	bool need_list = true;

	while (!atomic_load(&k->stop)) {
		if (need_list) {
			size_t count;
			int ret = list_pages(w, &count);

			if (ret < 0) {
				pr_warn("kubernetes: %s", w->last_error);
				if (nap(k, backoff(w, &step)))
					break;
				continue;
			}
			pthread_mutex_lock(&k->lock);
			w->installed = ret == 0;
			w->connected = true;
			snprintf(w->status_rv, sizeof(w->status_rv), "%s", ret ? "" : w->rv);
			pthread_mutex_unlock(&k->lock);
			if (ret == 1) {
				/* CRD not installed: nothing of this kind exists. */
				pr_info("kubernetes: %s is not served (CRD not installed); looking "
					"again in %d s", r->kind, CRD_RETRY_MS / 1000);
				if (push(k, w->res, EV_LIST_BEGIN, NULL) ||
				    push(k, w->res, EV_LIST_END, NULL))
					pr_err("kubernetes: out of memory queueing the empty %s list",
					       r->kind);
				if (nap(k, CRD_RETRY_MS))
					break;
				continue;
			}
			pr_debug("kubernetes: listed %zu %s(s) at resourceVersion %s", count, r->kind,
				 w->rv);
			need_list = false;
			step = BACKOFF_MIN_MS;
		}
		switch (watch(w)) {
		case 0:
			step = BACKOFF_MIN_MS;
			break;
		case 1:
			pr_info("kubernetes: watch %s: resourceVersion %s is too old (410 Gone); "
				"listing again", r->path, w->rv);
			pthread_mutex_lock(&k->lock);
			w->relists++;
			pthread_mutex_unlock(&k->lock);
			need_list = true;
			break;
		default:
			if (atomic_load(&k->stop))
				break;
			pr_warn("kubernetes: %s; retrying from resourceVersion %s", w->last_error,
				w->rv);
			if (nap(k, backoff(w, &step)))
				break;
		}
	}
	return NULL;
}

/* ---- the main thread's side --------------------------------------------------- */

int kube_start(struct kube **out, struct kube_config *cfg, const char *node_name, char *err,
	       size_t errlen)
{
	struct kube *k;
	int ret = 0;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->efd = -1;
	prom_hist_init(&k->lag, prom_latency_bounds, prom_latency_nbounds);
	k->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	snprintf(k->user_agent, sizeof(k->user_agent), "sluice-agent/%s (node %s)", SLUICE_VERSION,
		 node_name);
	atomic_init(&k->stop, false);
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->wake, NULL);
	k->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (k->efd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	for (unsigned i = 0; i < NRES; i++) {
		struct watcher *w = &k->w[i];

		w->k = k;
		w->res = i;
		w->seed = (unsigned)time(NULL) ^ (i * 2654435761u) ^ (unsigned)getpid();
		w->curl = curl_easy_init();
		if (!w->curl) {
			ret = -ENOMEM;
			snprintf(err, errlen, "curl_easy_init failed");
			goto fail;
		}
	}
	for (unsigned i = 0; i < NRES; i++) {
		ret = -pthread_create(&k->w[i].tid, NULL, watcher_main, &k->w[i]);
		if (ret) {
			snprintf(err, errlen, "cannot start the %s watcher: %s", resources[i].kind,
				 strerror(-ret));
			goto fail;
		}
		k->w[i].started = true;
	}
	pr_info("kubernetes: watching %s via %s", k->cfg.server, k->cfg.source);
	*out = k;
	return 0;
fail:
	kube_stop(k);
	return ret;
}

int kube_fd(const struct kube *k)
{
	return k->efd;
}

/* Hand what the pages of w's list changed to the caller's changes. */
static void list_changes_give(struct watcher *w, json_t *changes)
{
	if (!w->list_changes)
		return;
	/* Named up to LIST_CHANGES_MAX; past that, one entry for the rest
	 * (the log counts it as one more; the kind is what syncs look at). */
	if (w->list_more)
		json_array_append_new(w->list_changes,
				      json_pack("{s:s, s:s, s:s, s:s}", "kind", resources[w->res].kind,
						"namespace", "", "name", "(and more)", "action",
						"listed"));
	w->list_more = false;
	json_array_extend(changes, w->list_changes);
	json_decref(w->list_changes);
	w->list_changes = NULL;
}

int kube_drain(struct kube *k, struct store *s, json_t *changes)
{
	struct event *q;
	uint64_t cnt;
	size_t n, i;
	int ret = 0;

	if (read(k->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		pr_debug("kubernetes: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&k->lock);
	q = k->q;
	n = k->nq;
	k->q = NULL;
	k->nq = k->capq = 0;
	pthread_mutex_unlock(&k->lock);
	for (i = 0; i < n; i++) {
		const struct resource *r = &resources[q[i].res];
		struct watcher *w = &k->w[q[i].res];
		static const char *const types[] = { [EV_ADDED] = "ADDED",
						     [EV_MODIFIED] = "MODIFIED",
						     [EV_DELETED] = "DELETED" };

		switch (q[i].type) {
		case EV_LIST_BEGIN:
			if (!ret)
				ret = store_kube_list_begin(s, r->api_version, r->kind);
			w->listed = 0;
			break;
		case EV_LIST_PAGE:
			if (!w->list_changes)
				w->list_changes = json_array();
			if (!w->list_changes && !ret)
				ret = -ENOMEM;
			/* A long list's changes are named up to LIST_CHANGES_MAX, then
			 * counted: 100 000 change records held until the list's
			 * end were freed in pieces between the store's objects. */
			if (!ret && json_array_size(w->list_changes) >= LIST_CHANGES_MAX) {
				w->list_more = true;
				ret = store_kube_list_page(s, r->api_version, r->kind, q[i].data,
							   NULL);
			} else if (!ret) {
				ret = store_kube_list_page(s, r->api_version, r->kind, q[i].data,
							   w->list_changes);
			}
			w->listed += json_array_size(q[i].data);
			/* The page is applied: the watcher may fetch another. */
			json_decref(q[i].data);
			q[i].data = NULL;
			pthread_mutex_lock(&k->lock);
			w->pages--;
			pthread_cond_broadcast(&k->wake);
			pthread_mutex_unlock(&k->lock);
			break;
		case EV_LIST_END:
			if (!ret)
				ret = store_kube_list_end(s, r->api_version, r->kind, changes);
			list_changes_give(w, changes);
			/* The pages were allocated by the watcher thread, in its
			 * own malloc arena, and freed here: nothing gives that
			 * memory back unless asked (50 000 pods: 163 -> 126 MiB
			 * RSS after a relist that changed nothing). */
			if (w->listed > LIST_PAGE)
				malloc_trim(0);
			if (!ret && !w->synced) {
				w->synced = true;
				pr_info("kubernetes: %s synced (%zu object(s))", r->kind, w->listed);
			}
			break;
		case EV_LIST_ABORT:
			/* What its pages put in stays, and is a change all the
			 * same; nothing goes. */
			store_kube_list_abort(s, r->api_version, r->kind);
			list_changes_give(w, changes);
			break;
		default:
			if (!ret)
				ret = store_kube_event(s, types[q[i].type], q[i].data, changes);
			prom_hist_observe(&k->lag, mono_s() - q[i].queued);
		}
		json_decref(q[i].data);
	}
	free(q);
	return ret;
}

size_t kube_counters(struct kube *k, struct kube_kind_counters *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&k->lock);
	for (unsigned i = 0; i < NRES && n < max; i++, n++) {
		const struct watcher *w = &k->w[i];

		out[n] = (struct kube_kind_counters){ .kind = resources[i].kind,
						      .lists = w->lists, .relists = w->relists,
						      .errors = w->errors, .connected = w->connected,
						      .synced = w->synced };
		memcpy(out[n].by_type, w->by_type, sizeof(out[n].by_type));
	}
	pthread_mutex_unlock(&k->lock);
	return n;
}

const struct prom_hist *kube_watch_lag(const struct kube *k)
{
	return &k->lag;
}

bool kube_synced(const struct kube *k)
{
	for (unsigned i = 0; i < NRES; i++)
		if (!k->w[i].synced)
			return false;
	return true;
}

bool kube_kind_synced(const struct kube *k, const char *kind)
{
	for (unsigned i = 0; i < NRES; i++)
		if (!strcmp(resources[i].kind, kind))
			return k->w[i].synced;
	return false;
}

json_t *kube_status_json(struct kube *k)
{
	json_t *res = json_array();
	bool connected = true;

	pthread_mutex_lock(&k->lock);
	for (unsigned i = 0; i < NRES; i++) {
		struct watcher *w = &k->w[i];

		connected = connected && w->connected;
		json_array_append_new(
			res, json_pack("{s:s, s:b, s:b, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:s}",
				       "kind", resources[i].kind, "synced", w->synced, "connected",
				       w->connected, "installed", w->installed || !resources[i].optional,
				       "resourceVersion", w->status_rv, "lists", (json_int_t)w->lists,
				       "watches", (json_int_t)w->watches, "events",
				       (json_int_t)w->events, "relists", (json_int_t)w->relists,
				       "errors", (json_int_t)w->errors, "lastError", w->last_error));
	}
	pthread_mutex_unlock(&k->lock);
	return json_pack("{s:s, s:s, s:b, s:b, s:o}", "server", k->cfg.server, "source",
			 k->cfg.source, "synced", kube_synced(k), "connected", connected,
			 "resources", res);
}

void kube_stop(struct kube *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	atomic_store(&k->stop, true);
	pthread_cond_broadcast(&k->wake);
	pthread_mutex_unlock(&k->lock);
	for (unsigned i = 0; i < NRES; i++) {
		if (k->w[i].started)
			pthread_join(k->w[i].tid, NULL);
		if (k->w[i].curl)
			curl_easy_cleanup(k->w[i].curl);
		free(k->w[i].buf);
	}
	for (size_t i = 0; i < k->nq; i++)
		json_decref(k->q[i].data);
	free(k->q);
	for (unsigned i = 0; i < NRES; i++)
		json_decref(k->w[i].list_changes);
	if (k->efd >= 0)
		close(k->efd);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->lock);
	kube_config_free(&k->cfg);
	free(k);
}
