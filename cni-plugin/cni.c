// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "bwconf.h"
#include "cni.h"
#include "queue.h"

/* Oldest first: command floors below compare positions in this list. */
static const char *const supported_versions[] = {
	"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL,
};

static int version_index(const char *v)
{
	int i;

	if (!v)
		return -1;
	for (i = 0; supported_versions[i]; i++)
		if (!strcmp(supported_versions[i], v))
			return i;
	return -1;
}

bool cni_version_supported(const char *v)
{
	return version_index(v) >= 0;
}

const char *const *cni_supported_versions(void)
{
	return supported_versions;
}

/* 0.x results tag every address with its family; 1.0.0 dropped that. */
static bool version_is_legacy(const char *v)
{
	return version_index(v) < version_index("1.0.0");
}

const char *cni_cmd_name(enum cni_cmd cmd)
{
	switch (cmd) {
	case CNI_CMD_ADD:
		return "ADD";
	case CNI_CMD_DEL:
		return "DEL";
	case CNI_CMD_CHECK:
		return "CHECK";
	case CNI_CMD_STATUS:
		return "STATUS";
	case CNI_CMD_GC:
		return "GC";
	case CNI_CMD_VERSION:
		return "VERSION";
	}
	return "?";
}

/* The spec version that introduced cmd; older configurations must not use it. */
static const char *cmd_min_version(enum cni_cmd cmd)
{
	switch (cmd) {
	case CNI_CMD_CHECK:
		return "0.4.0";
	case CNI_CMD_STATUS:
	case CNI_CMD_GC:
		return "1.1.0";
	default:
		return NULL;
	}
}

void cni_set_error(struct cni_error *err, int code, const char *details, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	snprintf(err->details, sizeof(err->details), "%s", details ? details : "");
}

static void set_oom(struct cni_error *err)
{
	cni_set_error(err, CNI_ERR_INTERNAL, NULL, "out of memory");
}

/* Strings we echo into JSON must be UTF-8 or jansson refuses them. */
static bool utf8_ok(const char *s)
{
	json_t *t = json_string(s);

	json_decref(t);
	return t != NULL;
}

/* Truncated or foreign text must still yield an error the runtime can
 * parse, so undecodable bytes degrade to '?' instead of losing the error. */
static json_t *json_string_lossy(const char *s)
{
	json_t *j = json_string(s);
	char *copy, *p;

	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

void cni_k8s_free(struct cni_k8s *k8s)
{
	free(k8s->namespace_);
	free(k8s->name);
	free(k8s->uid);
	free(k8s->infra_container_id);
	memset(k8s, 0, sizeof(*k8s));
}

/* Replace *dst with a copy of val; an empty value means "not given". */
static int replace_str(char **dst, const char *val)
{
	char *copy = NULL;

	if (val && *val) {
		copy = strdup(val);
		if (!copy)
			return -ENOMEM;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

/* Same spellings libcni's UnmarshallableBool takes. */
static int parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "1") || !strcasecmp(s, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "0") || !strcasecmp(s, "false")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

int cni_parse_args(const char *args, struct cni_k8s *k8s, struct cni_error *err)
{
	struct cni_k8s got = { 0 };
	char *copy = NULL, *save = NULL, *pair, *val;
	const char *unknown = NULL;
	bool ignore_unknown = false;
	int ret = -1;

	memset(k8s, 0, sizeof(*k8s));
	if (!args || !*args)
		return 0;
	copy = strdup(args);
	if (!copy) {
		set_oom(err);
		goto cleanup;
	}
	/* strtok_r skips empty fields, so "A=1;;B=2;" is accepted like libcni's
	 * callers produce it; IgnoreUnknown may come after the unknown key, hence
	 * the verdict on unknown keys waits for the end of the string. */
	for (pair = strtok_r(copy, ";", &save); pair; pair = strtok_r(NULL, ";", &save)) {
		char **slot = NULL;

		val = strchr(pair, '=');
		if (!val || val == pair) {
			cni_set_error(err, CNI_ERR_INVALID_ENV, args,
				      "invalid CNI_ARGS: pair \"%s\" is not KEY=VALUE", pair);
			goto cleanup;
		}
		*val++ = '\0';
		if (!strcmp(pair, "IgnoreUnknown")) {
			if (parse_bool(val, &ignore_unknown)) {
				cni_set_error(err, CNI_ERR_INVALID_ENV, args,
					      "invalid CNI_ARGS: IgnoreUnknown=%s is not a boolean", val);
				goto cleanup;
			}
			continue;
		}
		if (!strcmp(pair, "K8S_POD_NAMESPACE"))
			slot = &got.namespace_;
		else if (!strcmp(pair, "K8S_POD_NAME"))
			slot = &got.name;
		else if (!strcmp(pair, "K8S_POD_UID"))
			slot = &got.uid;
		else if (!strcmp(pair, "K8S_POD_INFRA_CONTAINER_ID"))
			slot = &got.infra_container_id;
		if (!slot) {
			if (!unknown)
				unknown = pair;
			continue;
		}
		if (!utf8_ok(val)) {
			cni_set_error(err, CNI_ERR_INVALID_ENV, NULL,
				      "invalid CNI_ARGS: %s is not valid UTF-8", pair);
			goto cleanup;
		}
		if (replace_str(slot, val)) {
			set_oom(err);
			goto cleanup;
		}
	}
	if (unknown && !ignore_unknown) {
		cni_set_error(err, CNI_ERR_INVALID_ENV, args,
			      "unknown key %s in CNI_ARGS (set IgnoreUnknown=1 to allow it)", unknown);
		goto cleanup;
	}
	*k8s = got;
	memset(&got, 0, sizeof(got));
	ret = 0;
cleanup:
	cni_k8s_free(&got);
	free(copy);
	return ret;
}

static const char *env_get(const char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static int parse_cmd(const char *s, enum cni_cmd *cmd)
{
	static const enum cni_cmd all[] = {
		CNI_CMD_ADD, CNI_CMD_DEL, CNI_CMD_CHECK, CNI_CMD_STATUS, CNI_CMD_GC, CNI_CMD_VERSION,
	};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(s, cni_cmd_name(all[i]))) {
			*cmd = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

#define REQ(c) (1u << (c))
#define REQ_ATTACH (REQ(CNI_CMD_ADD) | REQ(CNI_CMD_DEL) | REQ(CNI_CMD_CHECK))

/* Which variables each command must have (CNI spec, section 2). DEL may
 * arrive without CNI_NETNS once the namespace is gone; GC is the one
 * command the spec gives a required CNI_PATH without container variables. */
static const struct {
	const char *name;
	unsigned int required;
} env_vars[] = {
	{ "CNI_CONTAINERID", REQ_ATTACH },
	{ "CNI_NETNS", REQ(CNI_CMD_ADD) | REQ(CNI_CMD_CHECK) },
	{ "CNI_IFNAME", REQ_ATTACH },
	{ "CNI_PATH", REQ(CNI_CMD_GC) },
};

int cni_parse_env(const char *const *envp, struct cni_env *env, struct cni_error *err)
{
	char **dst[] = { &env->container_id, &env->netns, &env->ifname, &env->path };
	char missing[128] = "";
	const char *cmd, *val, *problem;
	size_t i;

	memset(env, 0, sizeof(*env));
	cmd = env_get(envp, "CNI_COMMAND");
	if (!cmd || !*cmd) {
		cni_set_error(err, CNI_ERR_INVALID_ENV, NULL,
			      "required env variables [CNI_COMMAND] missing");
		return -1;
	}
	if (parse_cmd(cmd, &env->cmd)) {
		cni_set_error(err, CNI_ERR_INVALID_ENV, "expected ADD, DEL, CHECK, STATUS, GC or VERSION",
			      "unknown CNI_COMMAND: %s", cmd);
		return -1;
	}
	for (i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
		val = env_get(envp, env_vars[i].name);
		if (val && *val) {
			if (!utf8_ok(val)) {
				cni_set_error(err, CNI_ERR_INVALID_ENV, NULL, "%s is not valid UTF-8",
					      env_vars[i].name);
				return -1;
			}
			if (replace_str(dst[i], val)) {
				set_oom(err);
				return -1;
			}
		} else if (env_vars[i].required & REQ(env->cmd)) {
			if (*missing)
				strcat(missing, ",");
			strcat(missing, env_vars[i].name);
		}
	}
	if (*missing) {
		cni_set_error(err, CNI_ERR_INVALID_ENV, NULL, "required env variables [%s] missing",
			      missing);
		return -1;
	}
	if (!(REQ_ATTACH & REQ(env->cmd)))
		return 0;
	if (!cni_valid_container_id(env->container_id)) {
		cni_set_error(err, CNI_ERR_INVALID_ENV, env->container_id,
			      "invalid CNI_CONTAINERID: must start with a letter or digit, then letters, digits, _ . -");
		return -1;
	}
	problem = cni_ifname_problem(env->ifname);
	if (problem) {
		cni_set_error(err, CNI_ERR_INVALID_ENV, env->ifname, "invalid CNI_IFNAME: %s",
			      problem);
		return -1;
	}
	return cni_parse_args(env_get(envp, "CNI_ARGS"), &env->k8s, err);
}

void cni_env_free(struct cni_env *env)
{
	free(env->container_id);
	free(env->netns);
	free(env->ifname);
	free(env->path);
	cni_k8s_free(&env->k8s);
	memset(env, 0, sizeof(*env));
}

static int port_field(const json_t *pm, const char *key, size_t idx, json_t *out,
		      struct cni_error *err)
{
	json_t *v = json_object_get_ci(pm, key);

	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "a port number 1..65535 is required",
			      "invalid runtimeConfig.portMappings[%zu].%s", idx, key);
		return -1;
	}
	if (json_object_set(out, key, v)) {
		set_oom(err);
		return -1;
	}
	return 0;
}

/* Kubernetes spells protocols TCP, podman tcp: the agent sees lower case. */
static int protocol_field(const json_t *pm, size_t idx, json_t *out, struct cni_error *err)
{
	json_t *v = json_object_get_ci(pm, "protocol");
	const char *p = "tcp";

	if (v && !json_is_null(v)) {
		p = json_string_value(v);
		if (!p)
			p = "";
		if (!strcasecmp(p, "tcp"))
			p = "tcp";
		else if (!strcasecmp(p, "udp"))
			p = "udp";
		else if (!strcasecmp(p, "sctp"))
			p = "sctp";
		else
			p = NULL;
	}
	if (!p) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected tcp, udp or sctp",
			      "invalid runtimeConfig.portMappings[%zu].protocol", idx);
		return -1;
	}
	if (json_object_set_new(out, "protocol", json_string(p))) {
		set_oom(err);
		return -1;
	}
	return 0;
}

static int host_ip_field(const json_t *pm, size_t idx, json_t *out, struct cni_error *err)
{
	json_t *v = json_object_get_ci(pm, "hostIP");

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected an address string",
			      "invalid runtimeConfig.portMappings[%zu].hostIP", idx);
		return -1;
	}
	/* "" is how runtimes say "every address": leave the key out. */
	if (json_string_length(v) && json_object_set(out, "hostIP", v)) {
		set_oom(err);
		return -1;
	}
	return 0;
}

/* containerd writes hostPort, podman hostport: the agent gets one spelling. */
static json_t *normalize_port_mappings(const json_t *in, struct cni_error *err)
{
	json_t *ret = NULL, *all = NULL, *one = NULL, *pm;
	size_t i;

	if (!json_is_array(in)) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected an array",
			      "invalid runtimeConfig.portMappings");
		goto cleanup;
	}
	all = json_array();
	if (!all) {
		set_oom(err);
		goto cleanup;
	}
	json_array_foreach(in, i, pm) {
		if (!json_is_object(pm)) {
			cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected an object",
				      "invalid runtimeConfig.portMappings[%zu]", i);
			goto cleanup;
		}
		one = json_object();
		if (!one) {
			set_oom(err);
			goto cleanup;
		}
		if (port_field(pm, "hostPort", i, one, err) ||
		    port_field(pm, "containerPort", i, one, err) ||
		    protocol_field(pm, i, one, err) || host_ip_field(pm, i, one, err))
			goto cleanup;
		/* append_new consumes one even when it fails. */
		if (json_array_append_new(all, one)) {
			one = NULL;
			set_oom(err);
			goto cleanup;
		}
		one = NULL;
	}
	ret = all;
	all = NULL;
cleanup:
	json_decref(one);
	json_decref(all);
	return ret;
}

/* Normalised to the agent's spelling, containerId, whatever the runtime
 * used: the spec says containerID, libcni writes it that way. */
static json_t *normalize_attachments(const json_t *in, const char *key, struct cni_error *err)
{
	json_t *ret = NULL, *all = NULL, *a, *cid, *ifn;
	size_t i;

	if (!json_is_array(in)) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected an array", "invalid \"%s\"",
			      key);
		goto cleanup;
	}
	all = json_array();
	if (!all) {
		set_oom(err);
		goto cleanup;
	}
	json_array_foreach(in, i, a) {
		cid = json_object_get_ci(a, "containerID");
		ifn = json_object_get_ci(a, "ifname");
		if (!json_is_string(cid) || !json_string_length(cid)) {
			cni_set_error(err, CNI_ERR_INVALID_CONFIG, "containerID must be a non-empty string",
				      "invalid \"%s\"[%zu].containerID", key, i);
			goto cleanup;
		}
		if (!json_is_string(ifn) || !json_string_length(ifn)) {
			cni_set_error(err, CNI_ERR_INVALID_CONFIG, "ifname must be a non-empty string",
				      "invalid \"%s\"[%zu].ifname", key, i);
			goto cleanup;
		}
		if (json_array_append_new(all, json_pack("{s:O, s:O}", "containerId", cid, "ifname",
							 ifn))) {
			set_oom(err);
			goto cleanup;
		}
	}
	ret = all;
	all = NULL;
cleanup:
	json_decref(all);
	return ret;
}

/* A required, non-empty string member; code 7 naming key otherwise. */
static const char *required_string(const json_t *doc, const char *key, struct cni_error *err)
{
	json_t *v = json_object_get(doc, key);

	if (!v) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, NULL,
			      "missing \"%s\" in network configuration", key);
		return NULL;
	}
	if (!json_is_string(v) || !json_string_length(v)) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected a non-empty string",
			      "invalid \"%s\" in network configuration", key);
		return NULL;
	}
	return json_string_value(v);
}

static void supported_list(char *buf, size_t len)
{
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; supported_versions[i] && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s\"%s\"", i ? ", " : "",
					supported_versions[i]);
}

static int check_version(const char *version, enum cni_cmd cmd, struct cni_error *err)
{
	const char *floor = cmd_min_version(cmd);
	char list[128], details[256];

	if (!cni_version_supported(version)) {
		supported_list(list, sizeof(list));
		snprintf(details, sizeof(details), "config is \"%s\", plugin supports [%s]", version,
			 list);
		cni_set_error(err, CNI_ERR_INCOMPATIBLE_VERSION, details,
			      "incompatible CNI versions");
		return -1;
	}
	/* Same verdict and wording as libcni's skel, which runtimes know. */
	if (floor && version_index(version) < version_index(floor)) {
		snprintf(details, sizeof(details), "%s needs cniVersion %s or later, config is \"%s\"",
			 cni_cmd_name(cmd), floor, version);
		cni_set_error(err, CNI_ERR_INCOMPATIBLE_VERSION, details,
			      "config version does not allow %s", cni_cmd_name(cmd));
		return -1;
	}
	return 0;
}

/* runtimeConfig.bandwidth (the bandwidth capability), ADD only: checked
 * here so a bad value fails before the agent does anything, and sent to
 * the agent in its one spelling. DEL and CHECK ignore it: a DEL must not
 * fail over a value the ADD refused. */
static int parse_bandwidth(struct cni_config *cfg, const json_t *bw, struct cni_error *err)
{
	struct bw_limits l;
	char msg[256];

	if (bw_limits_parse(bw, "runtimeConfig.bandwidth", &l, msg, sizeof(msg))) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, NULL, "%s", msg);
		return -1;
	}
	if (!bw_limits_any(&l))
		return 0;
	cfg->bandwidth = bw_limits_json(&l);
	if (!cfg->bandwidth) {
		set_oom(err);
		return -1;
	}
	return 0;
}

static int parse_runtime_config(struct cni_config *cfg, enum cni_cmd cmd, struct cni_error *err)
{
	json_t *rc = json_object_get(cfg->doc, "runtimeConfig"), *pm;

	if (!rc || json_is_null(rc))
		return 0;
	if (!json_is_object(rc)) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected an object",
			      "invalid \"runtimeConfig\" in network configuration");
		return -1;
	}
	if (cmd == CNI_CMD_ADD && parse_bandwidth(cfg, json_object_get_ci(rc, "bandwidth"), err))
		return -1;
	pm = json_object_get_ci(rc, "portMappings");
	if (!pm || json_is_null(pm))
		return 0;
	cfg->port_mappings = normalize_port_mappings(pm, err);
	return cfg->port_mappings ? 0 : -1;
}

static int parse_gc(struct cni_config *cfg, struct cni_error *err)
{
	/* Early 1.1 drafts and some runtimes used cni.dev/attachments; libcni
	 * sends both names, so either is the runtime's list. */
	static const char *const keys[] = { "cni.dev/valid-attachments", "cni.dev/attachments" };
	json_t *list;
	size_t i;

	for (i = 0; i < 2; i++) {
		list = json_object_get(cfg->doc, keys[i]);
		if (list) {
			cfg->valid_attachments = normalize_attachments(list, keys[i], err);
			return cfg->valid_attachments ? 0 : -1;
		}
	}
	/* Treating a missing list as empty would tell the agent every pod on
	 * the network is stale. */
	cni_set_error(err, CNI_ERR_INVALID_CONFIG, NULL,
		      "missing \"cni.dev/valid-attachments\" in network configuration");
	return -1;
}

int cni_parse_config(const char *buf, size_t len, enum cni_cmd cmd, struct cni_config *cfg,
		     struct cni_error *err)
{
	json_error_t jerr;
	json_t *v;
	char details[256];

	memset(cfg, 0, sizeof(*cfg));
	cfg->doc = json_loadb(buf ? buf : "", buf ? len : 0, 0, &jerr);
	if (!cfg->doc) {
		snprintf(details, sizeof(details), "line %d column %d: %s", jerr.line, jerr.column,
			 jerr.text);
		cni_set_error(err, CNI_ERR_DECODE, details,
			      "error decoding network configuration from stdin");
		return -1;
	}
	if (!json_is_object(cfg->doc)) {
		cni_set_error(err, CNI_ERR_DECODE, "expected a JSON object",
			      "error decoding network configuration from stdin");
		return -1;
	}
	cfg->name = required_string(cfg->doc, "name", err);
	if (!cfg->name)
		return -1;
	if (!cni_valid_ident(cfg->name)) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, cfg->name,
			      "invalid \"name\" in network configuration: must start with a letter or digit, then letters, digits, _ . -");
		return -1;
	}
	cfg->type = required_string(cfg->doc, "type", err);
	if (!cfg->type)
		return -1;
	cfg->version = required_string(cfg->doc, "cniVersion", err);
	if (!cfg->version || check_version(cfg->version, cmd, err))
		return -1;

	cfg->socket = SLUICE_DEFAULT_SOCKET;
	v = json_object_get(cfg->doc, "socket");
	if (v) {
		cfg->socket = required_string(cfg->doc, "socket", err);
		if (!cfg->socket)
			return -1;
	}

	v = json_object_get(cfg->doc, "prevResult");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v)) {
			cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected an object",
				      "invalid \"prevResult\" in network configuration");
			return -1;
		}
		cfg->prev_result = v;
	}
	if (cmd == CNI_CMD_CHECK && !cfg->prev_result) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "CHECK needs the result of the ADD",
			      "missing \"prevResult\" in network configuration");
		return -1;
	}
	if (parse_runtime_config(cfg, cmd, err))
		return -1;
	if (cmd == CNI_CMD_GC && parse_gc(cfg, err))
		return -1;
	return 0;
}

void cni_config_free(struct cni_config *cfg)
{
	json_decref(cfg->port_mappings);
	json_decref(cfg->bandwidth);
	json_decref(cfg->valid_attachments);
	json_decref(cfg->doc);
	memset(cfg, 0, sizeof(*cfg));
}

const char *cni_peek_version(const char *buf, size_t len)
{
	json_t *doc;
	int idx = -1;

	if (!buf)
		return NULL;
	doc = json_loadb(buf, len, 0, NULL);
	if (doc)
		idx = version_index(json_string_value(json_object_get(doc, "cniVersion")));
	json_decref(doc);
	return idx >= 0 ? supported_versions[idx] : NULL;
}

json_t *cni_version_json(const char *buf, size_t len)
{
	const char *version = cni_peek_version(buf, len);
	json_t *ret = NULL, *list;
	int i;

	list = json_array();
	if (!list)
		goto cleanup;
	for (i = 0; supported_versions[i]; i++)
		if (json_array_append_new(list, json_string(supported_versions[i])))
			goto cleanup;
	ret = json_pack("{s:s, s:O}", "cniVersion", version ? version : CNI_VERSION_LATEST,
			"supportedVersions", list);
cleanup:
	json_decref(list);
	return ret;
}

json_t *cni_prev_result_to_1x(const json_t *prev, struct cni_error *err)
{
	json_t *out, *ips, *ip;
	size_t i;

	if (!json_is_object(prev)) {
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, "expected an object",
			      "invalid \"prevResult\" in network configuration");
		return NULL;
	}
	out = json_deep_copy(prev);
	if (!out) {
		set_oom(err);
		return NULL;
	}
	/* The agent reads one layout; the runtime's version is ours to know. */
	json_object_del(out, "cniVersion");
	ips = json_object_get(out, "ips");
	json_array_foreach(ips, i, ip)
		json_object_del(ip, "version");
	return out;
}

/* "4" or "6" for an address with or without its /prefix, NULL if neither. */
static const char *ip_family(const char *cidr)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t n;

	if (!cidr)
		return NULL;
	n = strcspn(cidr, "/");
	if (!n || n >= sizeof(host))
		return NULL;
	memcpy(host, cidr, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, bin) == 1)
		return "4";
	if (inet_pton(AF_INET6, host, bin) == 1)
		return "6";
	return NULL;
}

/* Copy only keys (NULL-terminated) that exist in src: 0.x consumers know no
 * others, and the agent's 1.1 additions (mtu, scope...) have no 0.x form. */
static json_t *project(const json_t *src, const char *const *keys)
{
	json_t *ret = NULL, *out, *v;

	out = json_object();
	if (!out)
		goto cleanup;
	for (; *keys; keys++) {
		v = json_object_get(src, *keys);
		if (v && json_object_set(out, *keys, v))
			goto cleanup;
	}
	ret = out;
	out = NULL;
cleanup:
	json_decref(out);
	return ret;
}

static const char *const iface_keys_0x[] = { "name", "mac", "sandbox", NULL };
static const char *const ip_keys_0x[] = { "interface", "address", "gateway", NULL };
static const char *const route_keys_0x[] = { "dst", "gw", NULL };

/* Each member of list (an array of objects) as the target layout wants it. */
static json_t *convert_list(const json_t *list, const char *what, const char *const *keys_0x,
			    bool legacy, bool is_ips, struct cni_error *err)
{
	json_t *ret = NULL, *all, *one = NULL, *item;
	const char *family;
	size_t i;

	all = json_array();
	if (!all) {
		set_oom(err);
		goto cleanup;
	}
	if (!json_is_array(list)) {
		cni_set_error(err, CNI_ERR_INTERNAL, "expected an array",
			      "sluice-agent returned a malformed result: %s", what);
		goto cleanup;
	}
	json_array_foreach(list, i, item) {
		if (!json_is_object(item)) {
			cni_set_error(err, CNI_ERR_INTERNAL, "expected an object",
				      "sluice-agent returned a malformed result: %s[%zu]", what, i);
			goto cleanup;
		}
		one = legacy ? project(item, keys_0x) : json_deep_copy(item);
		if (!one) {
			set_oom(err);
			goto cleanup;
		}
		if (is_ips) {
			family = ip_family(json_string_value(json_object_get(item, "address")));
			if (!family) {
				cni_set_error(err, CNI_ERR_INTERNAL,
					      json_string_value(json_object_get(item, "address")),
					      "sluice-agent returned a malformed result: ips[%zu].address",
					      i);
				goto cleanup;
			}
			/* 0.x requires the field; 1.0.0 removed it. */
			if (!legacy)
				json_object_del(one, "version");
			else if (json_object_set_new(one, "version", json_string(family))) {
				set_oom(err);
				goto cleanup;
			}
		}
		if (json_array_append_new(all, one)) {
			one = NULL;
			set_oom(err);
			goto cleanup;
		}
		one = NULL;
	}
	ret = all;
	all = NULL;
cleanup:
	json_decref(one);
	json_decref(all);
	return ret;
}

json_t *cni_format_result(const json_t *agent_result, const char *version, struct cni_error *err)
{
	static const struct {
		const char *key;
		const char *const *keys_0x;
		bool is_ips;
	} lists[] = {
		{ "interfaces", iface_keys_0x, false },
		{ "ips", ip_keys_0x, true },
		{ "routes", route_keys_0x, false },
	};
	json_t *ret = NULL, *out, *v, *conv;
	bool legacy = version_is_legacy(version);
	size_t i;

	if (!json_is_object(agent_result)) {
		cni_set_error(err, CNI_ERR_INTERNAL, "expected an object",
			      "sluice-agent returned a malformed result");
		return NULL;
	}
	/* Built key by key rather than copied, so nothing the agent adds for
	 * its own use leaks into what the runtime caches. */
	out = json_pack("{s:s}", "cniVersion", version);
	if (!out) {
		set_oom(err);
		goto cleanup;
	}
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		v = json_object_get(agent_result, lists[i].key);
		if (!v)
			continue;
		conv = convert_list(v, lists[i].key, lists[i].keys_0x, legacy, lists[i].is_ips, err);
		if (!conv)
			goto cleanup;
		if (json_object_set_new(out, lists[i].key, conv)) {
			set_oom(err);
			goto cleanup;
		}
	}
	v = json_object_get(agent_result, "dns");
	if (v && json_object_set(out, "dns", v)) {
		set_oom(err);
		goto cleanup;
	}
	ret = out;
	out = NULL;
cleanup:
	json_decref(out);
	return ret;
}

static json_t *k8s_json(const struct cni_k8s *k8s)
{
	const struct {
		const char *key;
		const char *val;
	} f[] = {
		{ "namespace", k8s->namespace_ },
		{ "name", k8s->name },
		{ "uid", k8s->uid },
		{ "infraContainerId", k8s->infra_container_id },
	};
	json_t *ret = NULL, *out;
	size_t i;

	out = json_object();
	if (!out)
		goto cleanup;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].val && json_object_set_new(out, f[i].key, json_string(f[i].val)))
			goto cleanup;
	ret = out;
	out = NULL;
cleanup:
	json_decref(out);
	return ret;
}

static json_t *attachment_request(const struct cni_env *env, const struct cni_config *cfg,
				  struct cni_error *err)
{
	static const char *const ops[] = {
		[CNI_CMD_ADD] = "add", [CNI_CMD_DEL] = "del", [CNI_CMD_CHECK] = "check",
	};
	json_t *ret = NULL, *req, *cni, *prev = NULL;

	/* netns is "" rather than absent for a DEL whose namespace is gone, as
	 * docs/API.md describes the field. */
	req = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:o}}", "op", ops[env->cmd], "cni",
			"containerId", env->container_id, "ifname", env->ifname, "netns",
			env->netns ? env->netns : "", "network", cfg->name, "k8s",
			k8s_json(&env->k8s));
	if (!req) {
		set_oom(err);
		goto cleanup;
	}
	cni = json_object_get(req, "cni");
	/* DEL gets it too: with the namespace gone it is the only record of
	 * what the ADD configured. */
	if (cfg->prev_result && env->cmd != CNI_CMD_ADD) {
		prev = cni_prev_result_to_1x(cfg->prev_result, err);
		if (!prev)
			goto cleanup;
		if (json_object_set_new(cni, "prevResult", prev)) {
			set_oom(err);
			goto cleanup;
		}
	}
	if (cfg->port_mappings && json_object_set(cni, "portMappings", cfg->port_mappings)) {
		set_oom(err);
		goto cleanup;
	}
	if (cfg->bandwidth && env->cmd == CNI_CMD_ADD &&
	    json_object_set(cni, "bandwidth", cfg->bandwidth)) {
		set_oom(err);
		goto cleanup;
	}
	ret = req;
	req = NULL;
cleanup:
	json_decref(req);
	return ret;
}

json_t *cni_build_request(const struct cni_env *env, const struct cni_config *cfg,
			  struct cni_error *err)
{
	json_t *req = NULL;

	switch (env->cmd) {
	case CNI_CMD_ADD:
	case CNI_CMD_DEL:
	case CNI_CMD_CHECK:
		return attachment_request(env, cfg, err);
	case CNI_CMD_GC:
		req = json_pack("{s:s, s:{s:s, s:O}}", "op", "gc", "gc", "network", cfg->name,
				"validAttachments", cfg->valid_attachments);
		break;
	case CNI_CMD_STATUS:
		req = json_pack("{s:s}", "op", "status");
		break;
	case CNI_CMD_VERSION:
		cni_set_error(err, CNI_ERR_INTERNAL, NULL, "VERSION is answered without the agent");
		return NULL;
	}
	if (!req)
		set_oom(err);
	return req;
}

void cni_transport_error(enum cni_cmd cmd, int ret, const char *why, struct cni_error *err)
{
	/* STATUS exists to say "not ready"; every way of not reaching the agent
	 * is that answer. */
	if (cmd == CNI_CMD_STATUS) {
		cni_set_error(err, CNI_ERR_NOT_AVAILABLE, why, "sluice-agent is not available");
		return;
	}
	switch (-ret) {
	case ENOENT:
	case ECONNREFUSED:
	case ETIMEDOUT:
	case EAGAIN:
	case ECONNRESET:
	case ECONNABORTED:
	case ENOTCONN:
	case EPIPE:
	case EINTR:
		/* The agent restarting or still starting: the runtime retries. */
		cni_set_error(err, CNI_ERR_TRY_AGAIN, why,
			      "sluice-agent is unreachable, try again later");
		return;
	case ENAMETOOLONG:
		cni_set_error(err, CNI_ERR_INVALID_CONFIG, why,
			      "invalid \"socket\" in network configuration");
		return;
	default:
		cni_set_error(err, CNI_ERR_INTERNAL, why, "request to sluice-agent failed");
		return;
	}
}

int cni_handle_response(enum cni_cmd cmd, const char *version, const json_t *resp, json_t **out,
			struct cni_error *err)
{
	json_t *ok = json_object_get(resp, "ok"), *e, *code, *result;
	json_int_t c;

	*out = NULL;
	if (!json_is_boolean(ok)) {
		cni_set_error(err, CNI_ERR_INTERNAL, "no boolean \"ok\"",
			      "malformed answer from sluice-agent");
		return -1;
	}
	if (json_is_false(ok)) {
		e = json_object_get(resp, "error");
		code = json_object_get(e, "code");
		c = json_integer_value(code);
		if (!json_is_integer(code) || c < 0 || c > 0x7fffffff) {
			cni_set_error(err, CNI_ERR_INTERNAL, "error without an integer code",
				      "malformed answer from sluice-agent");
			return -1;
		}
		/* The agent already chose the CNI code and words: pass them on. */
		cni_set_error(err, (int)c, json_string_value(json_object_get(e, "details")), "%s",
			      json_string_value(json_object_get(e, "msg")) ?: "");
		return -1;
	}
	result = json_object_get(resp, "result");
	switch (cmd) {
	case CNI_CMD_ADD:
		*out = cni_format_result(result, version, err);
		return *out ? 0 : -1;
	case CNI_CMD_STATUS:
		if (!json_is_true(json_object_get(result, "ready"))) {
			cni_set_error(err, CNI_ERR_NOT_AVAILABLE, "the agent reports ready=false",
				      "sluice-agent is not ready");
			return -1;
		}
		return 0;
	default:
		/* DEL, CHECK and GC print nothing on success (CNI spec). */
		return 0;
	}
}

json_t *cni_error_json(const char *version, const struct cni_error *err)
{
	return json_pack("{s:s, s:i, s:o, s:o}", "cniVersion", version ? version : CNI_VERSION_LATEST,
			 "code", err->code, "msg", json_string_lossy(err->msg), "details",
			 json_string_lossy(err->details));
}

int cni_run(const char *const *envp, const char *in, size_t inlen, cni_transport_fn call,
	    void *ctx, json_t **out)
{
	struct cni_env env = { 0 };
	struct cni_config cfg = { 0 };
	struct cni_error err = { 0 };
	json_t *req = NULL, *resp = NULL;
	const char *version;
	char why[512] = "";
	int status = 1, ret;

	*out = NULL;
	/* Errors are printed in the configuration's version whenever it is one
	 * we speak, even when the error is found before the config is parsed. */
	version = cni_peek_version(in, inlen);
	if (!version)
		version = CNI_VERSION_LATEST;
	if (cni_parse_env(envp, &env, &err))
		goto cleanup;
	if (env.cmd == CNI_CMD_VERSION) {
		*out = cni_version_json(in, inlen);
		if (!*out) {
			set_oom(&err);
			goto cleanup;
		}
		status = 0;
		goto cleanup;
	}
	if (cni_parse_config(in, inlen, env.cmd, &cfg, &err))
		goto cleanup;
	version = cfg.version;
	req = cni_build_request(&env, &cfg, &err);
	if (!req)
		goto cleanup;
	ret = call(cfg.socket, req, &resp,
		   env.cmd == CNI_CMD_STATUS ? CNI_STATUS_TIMEOUT_MS : CNI_TIMEOUT_MS, why,
		   sizeof(why), ctx);
	/* DEL must succeed (CNI spec): with no agent there, it is queued for
	 * the agent's start (queue.c). */
	if (ret && env.cmd == CNI_CMD_DEL && cni_agent_absent(ret)) {
		if (cni_queue_del(cfg.socket, req, call, ctx, &err))
			goto cleanup;
		status = 0;
		goto cleanup;
	}
	if (ret) {
		cni_transport_error(env.cmd, ret, why, &err);
		goto cleanup;
	}
	if (cni_handle_response(env.cmd, version, resp, out, &err))
		goto cleanup;
	status = 0;
cleanup:
	if (status)
		*out = cni_error_json(version, &err);
	json_decref(resp);
	json_decref(req);
	cni_config_free(&cfg);
	cni_env_free(&env);
	return status;
}
