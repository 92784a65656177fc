/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's flow buffer (docs/OBSERVABILITY.md, "The agent's flow
 * buffer"). Flow records come from the datapath's ring buffer
 * (sluice_flowrb_v1) and are resolved when they arrive, while the pods,
 * policies and Services they name still exist: each becomes a flow entry
 * in a bounded ring (--flow-buffer) with a sequence number that only
 * grows. An entry that a new one replaces is counted (overwritten), as are
 * the datapath's own losses (sluice_flowst_v1). Flows idle longer than
 * --flow-idle-timeout get an END entry made here and leave
 * sluice_flow4_v1. Per pod pair and per namespace pair (bounded) the
 * buffer keeps round-trip time histograms and retransmissions.
 *
 * Everything runs on the agent's poll loop (no threads): flowlog_poll_fd
 * goes into its pollfd set, flowlog_consume when readable, flowlog_tick
 * on every round.
 */
#ifndef SLUICE_FLOWLOG_H
#define SLUICE_FLOWLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include <sluice/datapath.h>

#define FLOWLOG_BUFFER_DEFAULT 65536
#define FLOWLOG_BUFFER_MAX (1u << 24)
#define FLOWLOG_IDLE_DEFAULT_S 60
/* How often sluice_flow4_v1 is walked for idle flows: a quarter of the
 * idle timeout, within these bounds (a walk of 65 536 entries copies 10 MiB). */
#define FLOWLOG_SCAN_MIN_MS 500
#define FLOWLOG_SCAN_MAX_MS 5000
/* Policies named for one "denied by default" (more: counted). */
#define FLOWLOG_ISO_MAX 4
/* Round-trip histograms: bucket i counts samples below 2^i µs; the last
 * one everything above (8.4 s). */
#define FLOWLOG_RTT_BUCKETS 24
#define FLOWLOG_POD_PAIRS_MAX 4096
#define FLOWLOG_NS_PAIRS_MAX 1024
/* Flows in one answer of the "flows" operation (within the API's 4 MiB). */
#define FLOWLOG_ANSWER_MAX 4000
#define FLOWLOG_ANSWER_BYTES (3u << 20)

/* The strings of an entry, kept in one allocation (flow_str). */
enum flow_str {
	FS_SRC_KIND, FS_SRC_NS, FS_SRC_POD, FS_SRC_LABELS, FS_SRC_NODE,
	FS_DST_KIND, FS_DST_NS, FS_DST_POD, FS_DST_LABELS, FS_DST_NODE,
	FS_POL_KIND, FS_POL_NS, FS_POL_NAME,
	FS_SVC_NS, FS_SVC_NAME,
	FS_ISO_KIND, FS_ISO_NS = FS_ISO_KIND + FLOWLOG_ISO_MAX,
	FS_ISO_NAME = FS_ISO_NS + FLOWLOG_ISO_MAX,
	FS_END_CAUSE = FS_ISO_NAME + FLOWLOG_ISO_MAX,
	FS_N
};

struct flow_entry {
	uint64_t seq;			/* 0: slot never used */
	int64_t time_ns;		/* wall clock (ns since the epoch) */
	int64_t first_ns;		/* the flow's first packet, wall clock */
	struct sluice_flow4_record rec;	/* as the datapath sent it (agent END: made here) */
	int pol_rule;			/* rule index in the policy, -1: none */
	uint8_t niso;			/* isolating policies named (FS_ISO_*) */
	uint8_t niso_total;		/* ... and how many there were */
	bool agent_made;		/* an END the agent made (idle) */
	uint16_t off[FS_N];		/* offsets in strs; 0: "" */
	char *strs;
};

const char *flow_str(const struct flow_entry *e, enum flow_str f);

/* What a resolver says about an address (strings borrowed: copied before
 * the next call). kind: "pod", "node" (this or another node), "world",
 * "cidr" (an ipBlock prefix), "unknown". */
struct flow_who {
	const char *kind, *ns, *pod, *labels, *node;
};

/* A policy: kind "NetworkPolicy", "SluiceNetworkPolicy" or
 * "SluiceClusterNetworkPolicy"; ns NULL for the cluster-scoped one. */
struct flow_pol {
	const char *kind, *ns, *name;
	int rule;		/* -1: none */
};

/*
 * Lookups at arrival time (agent/flowres.c; tests give fakes). Each may be
 * NULL. ip is host order.
 *   peer: who ip is; identity is the record's (label or CIDR identity).
 *   policy: the policy and rule of a rule reference.
 *   isolation: the policies that isolate the local endpoint ip in
 *     direction dir (SLUICE_DIR_*): up to max into out, returns how many
 *     there are in all.
 *   service: the Service of frontend ip:port/proto.
 */
struct flow_resolver {
	void *ctx;
	void (*peer)(void *ctx, uint32_t ip, uint32_t identity, struct flow_who *out);
	bool (*policy)(void *ctx, uint32_t ref, struct flow_pol *out);
	size_t (*isolation)(void *ctx, uint32_t ip, int dir, struct flow_pol *out, size_t max);
	bool (*service)(void *ctx, uint32_t ip, uint16_t port, uint8_t proto, const char **ns,
			const char **name);
};

struct flowlog_hist {
	char src[160], dst[160];	/* "ns/pod" (or an address) / "ns" */
	uint64_t buckets[FLOWLOG_RTT_BUCKETS];
	uint64_t count;			/* samples */
	uint64_t sum_us;
	uint64_t retrans;		/* segments sent again (ended flows) */
	uint64_t flows;			/* ended flows */
};

/* Every counter, for `sluicectl status` and the metrics. */
/* New flows by verdict: START records, indexed by enum sluice_flow_verdict. */
#define FLOWLOG_VERDICTS (SLUICE_FLOW_TRANSLATED + 1)

/* Policy verdicts of new flows (START records with a policy involved) by
 * namespace: the deciding policy's, else the isolating policy's, else the
 * pod's whose policy it was. At most FLOWLOG_PV_MAX namespaces are named
 * (the first seen); the rest are counted together as "other". */
#define FLOWLOG_PV_MAX 256
enum flowlog_pv { FLOWLOG_PV_ALLOWED, FLOWLOG_PV_DENIED, FLOWLOG_PV_AUDIT, FLOWLOG_PV_N };
struct flowlog_pv_row {
	char ns[64];
	uint64_t n[FLOWLOG_PV_N];
};

struct flowlog_stats {
	size_t capacity, used;
	uint64_t received;		/* records taken (datapath and agent END) */
	uint64_t overwritten;		/* entries replaced before anyone read them out */
	uint64_t idle_ended;		/* END records the agent made */
	uint64_t malformed;		/* records of the wrong size */
	uint64_t last_seq;
	/* The datapath's (sluice_flowst_v1, summed over CPUs; 0 without it). */
	uint64_t rb_full, rate_limited, map_full;
	const struct flowlog_hist *pod_pairs, *ns_pairs;
	size_t npod_pairs, nns_pairs;
	uint64_t pairs_overflow;	/* samples of pairs beyond the bound */
	uint64_t flows_by_verdict[FLOWLOG_VERDICTS];
	const struct flowlog_pv_row *pv;
	size_t npv;
	uint64_t pv_other[FLOWLOG_PV_N];	/* namespaces beyond FLOWLOG_PV_MAX */
};

struct flowlog;

/* capacity: entries (1..FLOWLOG_BUFFER_MAX); idle_timeout_s: seconds. */
int flowlog_open(struct flowlog **out, size_t capacity, unsigned idle_timeout_s,
		 const char *node, const struct flow_resolver *res);
void flowlog_close(struct flowlog *fl);
/* The datapath's maps (fds borrowed; < 0: not there). Returns 0 or a
 * negative errno with err naming the map. */
int flowlog_attach(struct flowlog *fl, int rb_fd, int flow4_fd, int st_fd, char *err,
		   size_t errlen);
/* The fd to poll (-1 when not attached). */
int flowlog_poll_fd(const struct flowlog *fl);
/* Take what the ring buffer holds. */
int flowlog_consume(struct flowlog *fl);
/* Idle scan when due; returns the ms until the next one is due. */
int flowlog_tick(struct flowlog *fl);
/* Walk sluice_flow4_v1 now: entries idle longer than the timeout (as of
 * now_mono_ns, CLOCK_MONOTONIC) end here. Returns how many ended. */
int flowlog_scan_idle(struct flowlog *fl, uint64_t now_mono_ns);

/* One record (also for tests): resolve and keep it. len: its size. */
int flowlog_add(struct flowlog *fl, const void *rec, size_t len);
/* The same with the agent's END for an idle flow (cause "idle"). */
int flowlog_add_end(struct flowlog *fl, const struct sluice_ct_key *key,
		    const struct sluice_flow4_value *v, uint64_t now_mono_ns, const char *cause);

int flowlog_stats(const struct flowlog *fl, struct flowlog_stats *out);
/* Entry with sequence number seq, or NULL (never kept or overwritten). */
const struct flow_entry *flowlog_get(const struct flowlog *fl, uint64_t seq);

/*
 * Filters of the "flows" operation (docs/API.md): each member an array
 * (a string also does); entries of one member are ORed, members ANDed.
 *   fromPod toPod pod: "NS/POD" or "NS/" (every pod of NS)
 *   namespace: either side's    fromIP toIP: address or CIDR
 *   label: a selector ("app=web,tier!=db,env,!canary") on either side
 *   verdict: FORWARDED DROPPED AUDIT TRANSLATED
 *   dropReason: "drop-policy" or "policy"    protocol: TCP UDP ICMP SCTP or a number
 *   port: either side's    policy: "NS/NAME" (or NAME, cluster-scoped)
 *   service: "NS/NAME"
 *   since: seconds back from now; last: the newest N; after: seq
 */
struct flow_filter;
int flow_filter_parse(const json_t *req, struct flow_filter **out, char *err, size_t errlen);
void flow_filter_free(struct flow_filter *f);
bool flow_filter_match(const struct flow_filter *f, const struct flow_entry *e, int64_t now_ns);

/* The entry as JSON: every field (docs/OBSERVABILITY.md). */
json_t *flow_entry_json(const struct flowlog *fl, const struct flow_entry *e);
/* The "flows" operation: {"flows": [...oldest first], "lastSeq", "more",
 * "truncated"} or NULL with err (a bad filter). */
json_t *flowlog_query(const struct flowlog *fl, const json_t *req, char *err, size_t errlen);
/* The "top" operation: what "flows" (the slowest flows in the buffer) or
 * "pods" (pod and namespace pairs by p99). */
json_t *flowlog_top(const struct flowlog *fl, const char *what, size_t limit, char *err,
		    size_t errlen);
/* The buffer's size, use and losses by stage, for status. */
json_t *flowlog_status_json(const struct flowlog *fl);
/* The q quantile (0..1) of a histogram, as the upper bound of its bucket
 * in µs (0: no samples). */
uint64_t flowlog_hist_quantile(const struct flowlog_hist *h, double q);

#endif /* SLUICE_FLOWLOG_H */
