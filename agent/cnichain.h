/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the node's CNI configuration chains after sluice-cni
 * (--cni-conf-dir, default /etc/cni/net.d). The agent needs one fact from
 * it: whether a reference `bandwidth` plugin that can receive limits
 * (capabilities.bandwidth, or static rates) follows sluice-cni. sluice is
 * the pod bandwidth limiter; that plugin conflicts with it (docs/CNI.md,
 * "Chained plugins"): in tc mode its ingress qdisc cannot be created next
 * to sluice's clsact, in tcx mode it shapes only what sluice hands to the
 * stack. The agent warns once, shows a status condition, and in tc mode
 * refuses an ADD that would make the plugin fail cryptically.
 *
 * The directory is re-read when its mtime or one of its files' changes
 * (one readdir and a stat per file: cheap enough for every ADD).
 */
#ifndef SLUICE_CNICHAIN_H
#define SLUICE_CNICHAIN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define CNICHAIN_DEFAULT_DIR "/etc/cni/net.d"
#define CNICHAIN_NETWORKS_MAX 32
#define CNICHAIN_AFTER_MAX 256

/* One network whose plugins include sluice-cni. */
struct cnichain_net {
	char file[PATH_MAX];		/* the configuration file it came from */
	char name[128];			/* its "name" */
	char after[CNICHAIN_AFTER_MAX];	/* plugin types after sluice-cni, "a,b,c" */
	int bw_index;			/* plugins[] index of a limiting bandwidth plugin, -1 */
	bool bw_capability;		/* it has capabilities.bandwidth: true */
	bool bw_static;			/* it has static ingressRate/egressRate */
};

/*
 * Analyse one configuration document (a .conflist, or a single-plugin .conf
 * whose file name is file). Returns 1 and fills out when its plugins
 * include type sluice-cni, 0 when not (or the document is not a network
 * configuration at all).
 */
int cnichain_parse_doc(const json_t *doc, const char *file, struct cnichain_net *out);

/*
 * The decision for an ADD on network `network`: 0, or CNI code 7 with the
 * reason, naming the file, the plugin and the fix, in err. tc_mode: the
 * datapath attaches with tc (clsact). has_limits: the request carries a
 * non-zero ingress or egress rate (the plugin ignores a burst alone). A bandwidth plugin with static rates limits every pod, so in tc
 * mode it is refused without them too.
 */
int cnichain_decide(const struct cnichain_net *nets, size_t n, const char *network,
		    bool tc_mode, bool has_limits, char *err, size_t errlen);

struct cnichain;

/* dir: the CNI configuration directory (copied). NULL on ENOMEM. */
struct cnichain *cnichain_new(const char *dir);
void cnichain_free(struct cnichain *c);

/* Re-read the directory if it changed since the last call; logs a warning
 * once for each network that newly chains a limiting bandwidth plugin. */
void cnichain_refresh(struct cnichain *c);

/* In tc mode cnichain_refresh, then cnichain_decide on what it read; in
 * tcx mode 0 at once (nothing is refused there). */
int cnichain_check_add(struct cnichain *c, const char *network, bool tc_mode,
		       bool has_limits, char *err, size_t errlen);

/* Status conditions (an array, empty when there is nothing to say):
 * {"type": "ChainedBandwidthPlugin", "status": "True", "network", "file",
 *  "message"} per network chaining a limiting bandwidth plugin. Refreshes
 * first. */
json_t *cnichain_conditions_json(struct cnichain *c, bool tc_mode);

/* The networks the last refresh found (for tests). */
size_t cnichain_networks(const struct cnichain *c, const struct cnichain_net **nets);

#endif
