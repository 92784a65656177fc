// SPDX-License-Identifier: Apache-2.0
/* The plugins chained after sluice-cni in --cni-conf-dir (cnichain.h). */
#include "cnichain.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "log.h"

struct cnichain {
	char dir[PATH_MAX];
	uint64_t sig;		/* of the directory and its files at the last read */
	bool read_once;
	struct cnichain_net nets[CNICHAIN_NETWORKS_MAX];
	size_t n;
};

static bool positive_number(const json_t *v)
{
	return (json_is_integer(v) && json_integer_value(v) > 0) ||
	       (json_is_real(v) && json_real_value(v) > 0);
}

static void append_type(char *buf, size_t len, const char *type)
{
	size_t used = strlen(buf);

	if (used + strlen(type) + 2 > len)
		return;
	snprintf(buf + used, len - used, "%s%s", used ? "," : "", type);
}

int cnichain_parse_doc(const json_t *doc, const char *file, struct cnichain_net *out)
{
	const json_t *plugins, *p, *name = json_object_get(doc, "name");
	json_t *single = NULL;
	int found = 0;
	size_t i;

	if (!json_is_object(doc) || !json_is_string(name))
		return 0;
	plugins = json_object_get(doc, "plugins");
	if (!plugins) {
		/* A .conf: the document is the one plugin. */
		single = json_array();
		if (!single || json_array_append(single, (json_t *)doc))
			goto cleanup;
		plugins = single;
	}
	if (!json_is_array(plugins))
		goto cleanup;
	memset(out, 0, sizeof(*out));
	out->bw_index = -1;
	snprintf(out->file, sizeof(out->file), "%s", file);
	snprintf(out->name, sizeof(out->name), "%s", json_string_value(name));
	json_array_foreach(plugins, i, p) {
		const char *type = json_string_value(json_object_get(p, "type"));

		if (!type)
			continue;
		if (!found) {
			found = !strcmp(type, "sluice-cni");
			continue;
		}
		append_type(out->after, sizeof(out->after), type);
		if (strcmp(type, "bandwidth") || out->bw_index >= 0)
			continue;
		out->bw_capability =
			json_is_true(json_object_get(json_object_get(p, "capabilities"), "bandwidth"));
		out->bw_static = positive_number(json_object_get(p, "ingressRate")) ||
				 positive_number(json_object_get(p, "egressRate"));
		if (out->bw_capability || out->bw_static)
			out->bw_index = (int)i;
	}
cleanup:
	json_decref(single);
	return found;
}

static const char *bw_how(const struct cnichain_net *net)
{
	return net->bw_capability && net->bw_static ? "capabilities.bandwidth and static rates"
	       : net->bw_capability		     ? "capabilities.bandwidth"
						     : "static ingressRate/egressRate";
}

static const struct cnichain_net *find_net(const struct cnichain_net *nets, size_t n,
					   const char *network)
{
	/* Files are read in name order, as runtimes pick them: the first
	 * network of that name is the one in use. */
	for (size_t i = 0; i < n; i++)
		if (!strcmp(nets[i].name, network))
			return &nets[i];
	return NULL;
}

int cnichain_decide(const struct cnichain_net *nets, size_t n, const char *network,
		    bool tc_mode, bool has_limits, char *err, size_t errlen)
{
	const struct cnichain_net *net = find_net(nets, n, network);

	if (!tc_mode || !net || net->bw_index < 0)
		return 0;
	if (!net->bw_static && !has_limits)
		return 0;	/* the plugin gets no limits: it does nothing */
	snprintf(err, errlen,
		 "pod bandwidth limits on network \"%s\": %s chains the bandwidth plugin "
		 "(plugins[%d], %s) after sluice-cni, and with --attach-mode tc its ingress "
		 "qdisc cannot be created next to sluice's clsact (it would fail with "
		 "\"create ingress qdisc: file exists\"); sluice enforces pod bandwidth limits "
		 "itself: remove the bandwidth plugin from the chain (or its %s), or run "
		 "sluice-agent with --attach-mode tcx",
		 net->name, net->file, net->bw_index, bw_how(net),
		 net->bw_static ? "rates" : "capabilities.bandwidth");
	return CNI_ERR_INVALID_CONFIG;
}

static bool conf_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	return name[0] != '.' && dot &&
	       (!strcmp(dot, ".conflist") || !strcmp(dot, ".conf") || !strcmp(dot, ".json"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x100000001b3ULL;
}

/* The sorted configuration file names of c->dir and a signature of the
 * directory and their inodes, sizes and mtimes. -errno. */
static int scan(const struct cnichain *c, char ***names, size_t *n, uint64_t *sig)
{
	char path[PATH_MAX + 256], **list = NULL, **grown;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int err = 0;

	*sig = 0xcbf29ce484222325ULL;
	if (stat(c->dir, &st)) {
		err = -errno;
		goto cleanup;
	}
	*sig = mix(mix(*sig, (uint64_t)st.st_mtim.tv_sec), (uint64_t)st.st_mtim.tv_nsec);
	d = opendir(c->dir);
	if (!d) {
		err = -errno;
		goto cleanup;
	}
	while ((de = readdir(d))) {
		if (!conf_name(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		*sig = mix(mix(mix(mix(*sig, (uint64_t)st.st_ino), (uint64_t)st.st_size),
			       (uint64_t)st.st_mtim.tv_sec),
			   (uint64_t)st.st_mtim.tv_nsec);
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(list, cap * sizeof(*list));
			if (!grown) {
				err = -ENOMEM;
				goto cleanup;
			}
			list = grown;
		}
		list[cnt] = strdup(de->d_name);
		if (!list[cnt]) {
			err = -ENOMEM;
			goto cleanup;
		}
		cnt++;
	}
	if (cnt)
		qsort(list, cnt, sizeof(*list), cmp_names);
cleanup:
	if (d)
		closedir(d);
	if (err) {
		while (cnt)
			free(list[--cnt]);
		free(list);
		list = NULL;
	}
	*names = list;
	*n = cnt;
	return err;
}

static bool had_bw(const struct cnichain_net *old, size_t n, const struct cnichain_net *net)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(old[i].file, net->file) && !strcmp(old[i].name, net->name))
			return old[i].bw_index >= 0;
	return false;
}

void cnichain_refresh(struct cnichain *c)
{
	struct cnichain_net old[CNICHAIN_NETWORKS_MAX];
	char path[PATH_MAX + 256], **names = NULL;
	size_t n = 0, oldn = c->n, i;
	json_error_t jerr;
	uint64_t sig;
	int err;

	err = scan(c, &names, &n, &sig);
	if (c->read_once && sig == c->sig)
		goto cleanup;
	if (err && err != -ENOENT)
		pr_warn("--cni-conf-dir %s: cannot read it: %s; chained plugins are not checked",
			c->dir, strerror(-err));
	memcpy(old, c->nets, sizeof(old));
	c->sig = sig;
	c->read_once = true;
	c->n = 0;
	for (i = 0; i < n && c->n < CNICHAIN_NETWORKS_MAX; i++) {
		struct cnichain_net *net = &c->nets[c->n];
		json_t *doc;

		snprintf(path, sizeof(path), "%s/%s", c->dir, names[i]);
		doc = json_load_file(path, 0, &jerr);
		if (!doc) {
			pr_debug("%s: not JSON (%s), skipped", path, jerr.text);
			continue;
		}
		if (cnichain_parse_doc(doc, path, net)) {
			c->n++;
			pr_debug("%s: network \"%s\" chains [%s] after sluice-cni", path, net->name,
				 net->after);
			if (net->bw_index >= 0 && !had_bw(old, oldn, net))
				pr_warn("%s: network \"%s\" chains the bandwidth plugin (plugins[%d], "
					"%s) after sluice-cni; sluice enforces pod bandwidth limits "
					"itself and the plugin cannot (docs/CNI.md, Chained plugins): "
					"remove it from the chain",
					path, net->name, net->bw_index, bw_how(net));
		}
		json_decref(doc);
	}
cleanup:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

struct cnichain *cnichain_new(const char *dir)
{
	struct cnichain *c = calloc(1, sizeof(*c));

	if (c)
		snprintf(c->dir, sizeof(c->dir), "%s", dir);
	return c;
}

void cnichain_free(struct cnichain *c)
{
	free(c);
}

int cnichain_check_add(struct cnichain *c, const char *network, bool tc_mode,
		       bool has_limits, char *err, size_t errlen)
{
	/* Only tc mode refuses: in tcx mode no ADD pays for the scan. */
	if (!tc_mode)
		return 0;
	cnichain_refresh(c);
	return cnichain_decide(c->nets, c->n, network, tc_mode, has_limits, err, errlen);
}

json_t *cnichain_conditions_json(struct cnichain *c, bool tc_mode)
{
	json_t *arr = json_array();
	char msg[PATH_MAX + 1024];

	cnichain_refresh(c);
	for (size_t i = 0; arr && i < c->n; i++) {
		const struct cnichain_net *net = &c->nets[i];

		if (net->bw_index < 0)
			continue;
		snprintf(msg, sizeof(msg),
			 "%s: network \"%s\" chains the bandwidth plugin (plugins[%d], %s) after "
			 "sluice-cni; sluice enforces pod bandwidth limits itself, %s; remove the "
			 "plugin from the chain (or its %s)",
			 net->file, net->name, net->bw_index, bw_how(net),
			 tc_mode ? "and in tc mode an ADD that would hand the plugin limits is "
				   "refused (it cannot create its ingress qdisc next to sluice's)"
				 : "and in tcx mode the plugin shapes only the traffic sluice "
				   "hands to the kernel's stack",
			 net->bw_static ? "rates" : "capabilities.bandwidth");
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type",
						     "ChainedBandwidthPlugin", "status", "True",
						     "network", net->name, "file", net->file,
						     "message", msg));
	}
	return arr;
}

size_t cnichain_networks(const struct cnichain *c, const struct cnichain_net **nets)
{
	*nets = c->nets;
	return c->n;
}
