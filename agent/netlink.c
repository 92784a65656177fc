// SPDX-License-Identifier: Apache-2.0
/*
 * rtnetlink helpers for the agent, on top of libmnl.
 *
 * Every request carries NLM_F_ACK and a per-handle sequence number; replies
 * are read until the NLMSG_ERROR ack (or NLMSG_DONE for dumps) carrying that
 * sequence number arrives. Messages with another sequence number or port id
 * (left over from an earlier, abandoned exchange) are skipped, so the socket
 * can never get out of step with the requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <net/if.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "log.h"
#include "netlink.h"

/* Largest request we build is a veth creation, well under 256 bytes. */
#define NL_REQ_LEN 512
/* Dumps restarted this many times when the kernel flags them inconsistent. */
#define NL_DUMP_TRIES 3

struct nl_handle {
	struct mnl_socket *sock;
	unsigned int portid;
	unsigned int seq;
	int ns_fd;                 /* the netns the socket lives in (for sysctls) */
	size_t rbuf_len;           /* MNL_SOCKET_BUFFER_SIZE */
	char rbuf[];               /* receive buffer */
};

/* Called for each data message of a reply. 0: keep going; non-zero: ignore
 * the remaining data messages and make nl_talk() return this value. */
typedef int (*nl_data_cb)(const struct nlmsghdr *nlh, void *arg);

/* ---- network namespaces ------------------------------------------------ */

static int same_file(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return 0;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Move the calling thread into the netns `fd`. *saved gets an fd for the
 * netns to return to, or -1 if the thread already was in `fd`. */
static int ns_enter(int fd, int *saved)
{
	int old, err;

	*saved = -1;
	old = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (old < 0) {
		err = -errno;
		pr_debug("netlink: cannot open /proc/thread-self/ns/net: %s", strerror(-err));
		return err;
	}
	if (same_file(old, fd)) {
		close(old);
		return 0;
	}
	if (setns(fd, CLONE_NEWNET) < 0) {
		err = -errno;
		pr_debug("netlink: setns to netns fd %d: %s", fd, strerror(-err));
		close(old);
		return err;
	}
	*saved = old;
	return 0;
}

/* Return to the netns saved by ns_enter(). A failure here leaves the thread
 * in the wrong netns: it is reported, and callers fail the whole operation. */
static int ns_leave(int saved)
{
	int err = 0;

	if (saved < 0)
		return 0;
	if (setns(saved, CLONE_NEWNET) < 0) {
		err = -errno;
		pr_debug("netlink: cannot return to the original netns: %s", strerror(-err));
	}
	close(saved);
	return err;
}

/* ---- message plumbing -------------------------------------------------- */

static const char *msg_name(uint16_t type)
{
	switch (type) {
	case RTM_NEWLINK:  return "RTM_NEWLINK";
	case RTM_DELLINK:  return "RTM_DELLINK";
	case RTM_GETLINK:  return "RTM_GETLINK";
	case RTM_NEWADDR:  return "RTM_NEWADDR";
	case RTM_GETADDR:  return "RTM_GETADDR";
	case RTM_NEWROUTE: return "RTM_NEWROUTE";
	case RTM_DELROUTE: return "RTM_DELROUTE";
	case RTM_GETROUTE: return "RTM_GETROUTE";
	case RTM_NEWNEIGH: return "RTM_NEWNEIGH";
	case RTM_GETNEIGH: return "RTM_GETNEIGH";
	default:           return "request";
	}
}

static struct nlmsghdr *nl_req(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;

	memset(buf, 0, NL_REQ_LEN);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

/* Append a zeroed, aligned block at the tail of the message. Used for the
 * ifinfomsg that heads the VETH_INFO_PEER nest. */
static void *nl_put_block(struct nlmsghdr *nlh, size_t len)
{
	char *p = (char *)nlh + nlh->nlmsg_len;

	memset(p, 0, MNL_ALIGN(len));
	nlh->nlmsg_len += MNL_ALIGN(len);
	return p;
}

static int extack_cb(const struct nlattr *attr, void *data)
{
	const char **msg = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		*msg = mnl_attr_get_str(attr);
	return MNL_CB_OK;
}

/* Extended-ack message text from an NLMSG_ERROR or NLMSG_DONE, if any.
 * `off` is where the TLVs start within the payload. */
static const char *extack_msg(const struct nlmsghdr *nlh, size_t off)
{
	const char *msg = NULL;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || off >= mnl_nlmsg_get_payload_len(nlh))
		return NULL;
	mnl_attr_parse(nlh, off, extack_cb, &msg);
	return msg;
}

/* The status carried by the terminating NLMSG_ERROR / NLMSG_DONE message;
 * *msg gets the kernel's extended-ack text, if any. */
static int nl_status(const struct nlmsghdr *nlh, const char **msg)
{
	size_t plen = mnl_nlmsg_get_payload_len(nlh);
	int err;

	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
		size_t off = sizeof(*e);

		if (plen < sizeof(*e))
			return -EBADMSG;
		err = e->error;
		/* Without NETLINK_CAP_ACK the whole request is echoed first. */
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len > sizeof(struct nlmsghdr))
			off += MNL_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
		if (err)
			*msg = extack_msg(nlh, off);
	} else {
		/* NLMSG_DONE: an int status (0 on success), then extack TLVs. */
		if (plen < sizeof(int))
			return 0;
		memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
		if (err)
			*msg = extack_msg(nlh, MNL_ALIGN(sizeof(int)));
	}
	if (err > 0)                    /* never sent by a sane kernel */
		err = -EPROTO;
	return err;
}

/*
 * Send one request and read the reply up to the ack. Data messages go to cb
 * (until it returns non-zero). Returns the kernel's error if it sent one,
 * else cb's non-zero value, else -EAGAIN if a dump was flagged inconsistent,
 * else 0.
 */
static int nl_talk(struct nl_handle *h, struct nlmsghdr *req, nl_data_cb cb, void *arg)
{
	const struct nlmsghdr *nlh;
	const char *msg = NULL;
	unsigned int seq = ++h->seq;
	int stop = 0, intr = 0, err, len;
	ssize_t n;

	req->nlmsg_seq = seq;
	req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (mnl_socket_sendto(h->sock, req, req->nlmsg_len) < 0) {
		err = -errno;
		pr_debug("netlink: send %s: %s", msg_name(req->nlmsg_type), strerror(-err));
		return err;
	}
	for (;;) {
		n = mnl_socket_recvfrom(h->sock, h->rbuf, h->rbuf_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* ENOSPC: a message did not fit the buffer (MSG_TRUNC). */
			err = -errno;
			pr_debug("netlink: receive for %s seq %u: %s", msg_name(req->nlmsg_type), seq, strerror(-err));
			return err;
		}
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)h->rbuf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != h->portid) {
				pr_debug("netlink: skipping stale message type %u seq %u", nlh->nlmsg_type,
					 nlh->nlmsg_seq);
				continue;
			}
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = 1;
			switch (nlh->nlmsg_type) {
			case NLMSG_ERROR:
			case NLMSG_DONE:
				err = nl_status(nlh, &msg);
				if (err) {
					pr_debug("netlink: %s seq %u: %s%s%s%s", msg_name(req->nlmsg_type), seq,
						 strerror(-err), msg ? " (" : "", msg ? msg : "", msg ? ")" : "");
					return err;
				}
				if (stop)
					return stop;
				return intr ? -EAGAIN : 0;
			case NLMSG_NOOP:
			case NLMSG_OVERRUN:
				continue;
			}
			if (cb && !stop)
				stop = cb(nlh, arg);
		}
		if (len > 0)
			pr_debug("netlink: %d trailing bytes in reply to %s", len, msg_name(req->nlmsg_type));
	}
}

/* A dump whose callback only looks for something: restart it if the kernel
 * flags it inconsistent, since an interrupted walk may have missed entries. */
static int nl_dump_find(struct nl_handle *h, struct nlmsghdr *req, nl_data_cb cb, void *arg)
{
	int ret = -EAGAIN, i;

	for (i = 0; i < NL_DUMP_TRIES && ret == -EAGAIN; i++)
		ret = nl_talk(h, req, cb, arg);
	return ret;
}

struct attr_tb {
	const struct nlattr **tb;
	unsigned int max;
};

static int attr_tb_cb(const struct nlattr *attr, void *data)
{
	const struct attr_tb *t = data;
	unsigned int type = mnl_attr_get_type(attr);

	if (type <= t->max)
		t->tb[type] = attr;
	return MNL_CB_OK;
}

/* Index the attributes after a fixed header of hdrlen bytes. */
static int parse_attrs(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb, unsigned int max)
{
	struct attr_tb t = { .tb = tb, .max = max };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	if (mnl_nlmsg_get_payload_len(nlh) < hdrlen)
		return -EBADMSG;
	if (mnl_attr_parse(nlh, hdrlen, attr_tb_cb, &t) != MNL_CB_OK)
		return -EBADMSG;
	return 0;
}

static int attr_u32(const struct nlattr *a, uint32_t *v)
{
	if (!a || mnl_attr_get_payload_len(a) < sizeof(uint32_t))
		return 0;
	*v = mnl_attr_get_u32(a);
	return 1;
}

static int ifname_ok(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len > 0 && len < IFNAMSIZ;
}

/* ---- handles ----------------------------------------------------------- */

int nl_open(struct nl_handle **out, int netns_fd)
{
	struct nl_handle *h;
	size_t bufsz = MNL_SOCKET_BUFFER_SIZE;
	int saved = -1, one = 1, err, err2;

	*out = NULL;
	h = calloc(1, sizeof(*h) + bufsz);
	if (!h)
		return -ENOMEM;
	h->rbuf_len = bufsz;
	if (netns_fd >= 0)
		h->ns_fd = fcntl(netns_fd, F_DUPFD_CLOEXEC, 0);
	else
		h->ns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (h->ns_fd < 0) {
		err = -errno;
		pr_debug("netlink: cannot get a netns fd: %s", strerror(-err));
		goto cleanup;
	}

	err = ns_enter(h->ns_fd, &saved);
	if (err)
		goto cleanup;
	h->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	err = h->sock ? 0 : -errno;
	err2 = ns_leave(saved);
	if (err) {
		pr_debug("netlink: cannot open a NETLINK_ROUTE socket: %s", strerror(-err));
		goto cleanup;
	}
	if (err2) {
		err = err2;
		goto cleanup;
	}

	/* Best effort: error text from the kernel, short acks, and kernel-side
	 * dump filtering (older kernels lack some of these; all are optional). */
	mnl_socket_setsockopt(h->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(h->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(h->sock, NETLINK_GET_STRICT_CHK, &one, sizeof(one));

	if (mnl_socket_bind(h->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		pr_debug("netlink: bind: %s", strerror(-err));
		goto cleanup;
	}
	h->portid = mnl_socket_get_portid(h->sock);
	*out = h;
	return 0;

cleanup:
	nl_close(h);
	return err;
}

void nl_close(struct nl_handle *h)
{
	if (!h)
		return;
	if (h->sock)
		mnl_socket_close(h->sock);
	if (h->ns_fd >= 0)
		close(h->ns_fd);
	free(h);
}

/* ---- links ------------------------------------------------------------- */

static int parse_link(const struct nlmsghdr *nlh, struct nl_link *out)
{
	const struct nlattr *tb[IFLA_MAX + 1];
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	uint32_t mtu = 0;

	if (nlh->nlmsg_type != RTM_NEWLINK || parse_attrs(nlh, sizeof(*ifi), tb, IFLA_MAX) < 0)
		return -EBADMSG;
	memset(out, 0, sizeof(*out));
	out->ifindex = ifi->ifi_index;
	out->up = !!(ifi->ifi_flags & IFF_UP);
	if (attr_u32(tb[IFLA_MTU], &mtu))
		out->mtu = mtu;
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == sizeof(out->mac))
		memcpy(out->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), sizeof(out->mac));
	if (tb[IFLA_IFNAME]) {
		size_t len = strnlen(mnl_attr_get_payload(tb[IFLA_IFNAME]), mnl_attr_get_payload_len(tb[IFLA_IFNAME]));

		if (len >= sizeof(out->name))
			return -EBADMSG;
		memcpy(out->name, mnl_attr_get_payload(tb[IFLA_IFNAME]), len);
	}
	if (tb[IFLA_IFALIAS]) {
		size_t len = strnlen(mnl_attr_get_payload(tb[IFLA_IFALIAS]),
				     mnl_attr_get_payload_len(tb[IFLA_IFALIAS]));

		if (len < sizeof(out->alias))
			memcpy(out->alias, mnl_attr_get_payload(tb[IFLA_IFALIAS]), len);
	}
	return 0;
}

int nl_veth_create(struct nl_handle *h, const char *host_ifname, const char *peer_ifname, int peer_netns_fd,
		   unsigned int mtu, const unsigned char *pod_mac)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlattr *linkinfo, *data, *peer;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (!ifname_ok(host_ifname) || !ifname_ok(peer_ifname))
		return -EINVAL;

	nlh = nl_req(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, host_ifname);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);

	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* The peer is described like a link of its own: ifinfomsg + IFLA_*. */
	ifi = nl_put_block(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_ifname);
	if (peer_netns_fd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (pod_mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, pod_mac);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);

	return nl_talk(h, nlh, NULL, NULL);
}

static int link_get_cb(const struct nlmsghdr *nlh, void *arg)
{
	int err = parse_link(nlh, arg);

	return err ? err : 1;
}

/* RTM_GETLINK for one link, by name or by index. */
static int link_get(struct nl_handle *h, const char *ifname, int ifindex, struct nl_link *out)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int ret;

	nlh = nl_req(buf, RTM_GETLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	if (ifname)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	/* Counters make the reply several times larger and are not needed. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);

	ret = nl_talk(h, nlh, link_get_cb, out);
	if (ret == 1)
		return 0;
	return ret ? ret : -ENODEV;     /* acked without a reply: not expected */
}

int nl_link_get(struct nl_handle *h, const char *ifname, struct nl_link *out)
{
	if (!ifname_ok(ifname))
		return -EINVAL;
	return link_get(h, ifname, 0, out);
}

int nl_link_get_by_index(struct nl_handle *h, int ifindex, struct nl_link *out)
{
	if (ifindex <= 0)
		return -EINVAL;
	return link_get(h, NULL, ifindex, out);
}

int nl_link_set_flags(struct nl_handle *h, int ifindex, unsigned int flags, unsigned int mask)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (ifindex <= 0)
		return -EINVAL;
	nlh = nl_req(buf, RTM_NEWLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = flags & mask;
	ifi->ifi_change = mask;
	return nl_talk(h, nlh, NULL, NULL);
}

int nl_link_set_alias(struct nl_handle *h, int ifindex, const char *alias)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (ifindex <= 0 || strlen(alias) >= sizeof(((struct nl_link *)0)->alias))
		return -EINVAL;
	nlh = nl_req(buf, RTM_NEWLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	mnl_attr_put_strz(nlh, IFLA_IFALIAS, alias);
	return nl_talk(h, nlh, NULL, NULL);
}

int nl_link_set_up(struct nl_handle *h, int ifindex)
{
	return nl_link_set_flags(h, ifindex, IFF_UP, IFF_UP);
}

int nl_link_del(struct nl_handle *h, const char *ifname)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (!ifname_ok(ifname))
		return -EINVAL;
	nlh = nl_req(buf, RTM_DELLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	return nl_talk(h, nlh, NULL, NULL);
}

struct link_list_ctx {
	const char *prefix;
	size_t prefix_len;
	int (*cb)(const struct nl_link *l, void *arg);
	void *arg;
};

static int link_list_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct link_list_ctx *ctx = arg;
	struct nl_link l;

	if (parse_link(nlh, &l) < 0) {
		pr_debug("netlink: skipping malformed link message");
		return 0;
	}
	if (strncmp(l.name, ctx->prefix, ctx->prefix_len) != 0)
		return 0;
	return ctx->cb(&l, ctx->arg);
}

int nl_link_list(struct nl_handle *h, const char *prefix, int (*cb)(const struct nl_link *l, void *arg), void *arg)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct link_list_ctx ctx = {
		.prefix = prefix ? prefix : "",
		.prefix_len = prefix ? strlen(prefix) : 0,
		.cb = cb,
		.arg = arg,
	};
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (!cb)
		return -EINVAL;
	nlh = nl_req(buf, RTM_GETLINK, NLM_F_DUMP);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	/* Not restarted on -EAGAIN: cb would see links twice. */
	return nl_talk(h, nlh, link_list_cb, &ctx);
}

/* ---- addresses --------------------------------------------------------- */

int nl_addr_add4(struct nl_handle *h, int ifindex, struct in_addr addr, int prefixlen)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;

	if (ifindex <= 0 || prefixlen < 0 || prefixlen > 32)
		return -EINVAL;
	nlh = nl_req(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefixlen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned int)ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
	return nl_talk(h, nlh, NULL, NULL);
}

struct addr_find {
	int ifindex;
	struct in_addr addr;
	int prefixlen;
};

static int addr_find_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct addr_find *f = arg;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1], *a;

	if (nlh->nlmsg_type != RTM_NEWADDR || parse_attrs(nlh, sizeof(*ifa), tb, IFA_MAX) < 0)
		return 0;
	if (ifa->ifa_family != AF_INET || (int)ifa->ifa_index != f->ifindex || ifa->ifa_prefixlen != f->prefixlen)
		return 0;
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != sizeof(struct in_addr))
		return 0;
	return memcmp(mnl_attr_get_payload(a), &f->addr, sizeof(f->addr)) == 0;
}

int nl_addr_has4(struct nl_handle *h, int ifindex, struct in_addr addr, int prefixlen)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct addr_find f = { .ifindex = ifindex, .addr = addr, .prefixlen = prefixlen };
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;

	if (ifindex <= 0 || prefixlen < 0 || prefixlen > 32)
		return -EINVAL;
	nlh = nl_req(buf, RTM_GETADDR, NLM_F_DUMP);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_index = (unsigned int)ifindex;   /* filtered in the kernel (strict mode) */
	return nl_dump_find(h, nlh, addr_find_cb, &f);
}

struct qdisc_find {
	int ifindex;
	uint32_t parent;
	char *kind;
	size_t len;
};

static int qdisc_find_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct qdisc_find *f = arg;
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[TCA_MAX + 1];

	if (nlh->nlmsg_type != RTM_NEWQDISC || parse_attrs(nlh, sizeof(*tcm), tb, TCA_MAX) < 0)
		return 0;
	if (tcm->tcm_ifindex != f->ifindex || tcm->tcm_parent != f->parent || !tb[TCA_KIND])
		return 0;
	snprintf(f->kind, f->len, "%s", mnl_attr_get_str(tb[TCA_KIND]));
	return 1;
}

int nl_qdisc_kind(struct nl_handle *h, int ifindex, uint32_t parent, char *kind, size_t len)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct qdisc_find f = { ifindex, parent, kind, len };
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;

	if (ifindex <= 0 || !len)
		return -EINVAL;
	kind[0] = '\0';
	nlh = nl_req(buf, RTM_GETQDISC, NLM_F_DUMP);
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;	/* filtered in the kernel (strict mode) */
	return nl_dump_find(h, nlh, qdisc_find_cb, &f);
}

struct addr_first {
	int ifindex;
	struct in_addr *out;
};

static int addr_first_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct addr_first *f = arg;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1], *a;

	if (nlh->nlmsg_type != RTM_NEWADDR || parse_attrs(nlh, sizeof(*ifa), tb, IFA_MAX) < 0)
		return 0;
	if (ifa->ifa_family != AF_INET || (int)ifa->ifa_index != f->ifindex ||
	    ifa->ifa_scope != RT_SCOPE_UNIVERSE)
		return 0;
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != sizeof(struct in_addr))
		return 0;
	memcpy(f->out, mnl_attr_get_payload(a), sizeof(*f->out));
	return 1;
}

int nl_addr_first4(struct nl_handle *h, int ifindex, struct in_addr *out)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct addr_first f = { .ifindex = ifindex, .out = out };
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	int ret;

	if (ifindex <= 0)
		return -EINVAL;
	nlh = nl_req(buf, RTM_GETADDR, NLM_F_DUMP);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_index = (unsigned int)ifindex;
	ret = nl_dump_find(h, nlh, addr_first_cb, &f);
	return ret == 1 ? 0 : ret < 0 ? ret : -EADDRNOTAVAIL;
}

/* ---- vxlan ------------------------------------------------------------- */

int nl_vxlan_create(struct nl_handle *h, const char *ifname, uint16_t port, unsigned int mtu)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlattr *linkinfo, *data;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (!ifname_ok(ifname))
		return -EINVAL;
	nlh = nl_req(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "vxlan");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	/* External (collect_md): the BPF program sets the remote per packet. */
	mnl_attr_put_u8(nlh, IFLA_VXLAN_COLLECT_METADATA, 1);
	mnl_attr_put_u8(nlh, IFLA_VXLAN_LEARNING, 0);
	mnl_attr_put_u16(nlh, IFLA_VXLAN_PORT, htons(port));
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	return nl_talk(h, nlh, NULL, NULL);
}

/* ---- routes ------------------------------------------------------------ */

static struct nlmsghdr *route_req(char *buf, uint16_t type, uint16_t flags, int ifindex, struct in_addr dst,
				  int prefixlen)
{
	struct nlmsghdr *nlh = nl_req(buf, type, flags);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (unsigned char)prefixlen;
	rtm->rtm_table = RT_TABLE_MAIN;
	if (prefixlen > 0)
		mnl_attr_put(nlh, RTA_DST, sizeof(dst), &dst);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	return nlh;
}

int nl_route_add4(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen, struct in_addr gw)
{
	struct in_addr none = { 0 };

	return nl_route_add4_src(h, ifindex, dst, prefixlen, gw, none);
}

static int route_add(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen,
		     struct in_addr gw, struct in_addr prefsrc, unsigned char protocol)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	if (ifindex <= 0 || prefixlen < 0 || prefixlen > 32)
		return -EINVAL;
	nlh = route_req(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, ifindex, dst, prefixlen);
	rtm = mnl_nlmsg_get_payload(nlh);
	rtm->rtm_protocol = protocol;
	rtm->rtm_type = RTN_UNICAST;
	if (gw.s_addr) {
		rtm->rtm_scope = RT_SCOPE_UNIVERSE;
		rtm->rtm_flags = RTNH_F_ONLINK;
		mnl_attr_put(nlh, RTA_GATEWAY, sizeof(gw), &gw);
	} else {
		rtm->rtm_scope = RT_SCOPE_LINK;
	}
	if (prefsrc.s_addr)
		mnl_attr_put(nlh, RTA_PREFSRC, sizeof(prefsrc), &prefsrc);
	return nl_talk(h, nlh, NULL, NULL);
}

int nl_route_add4_src(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen,
		      struct in_addr gw, struct in_addr prefsrc)
{
	return route_add(h, ifindex, dst, prefixlen, gw, prefsrc, RTPROT_BOOT);
}

int nl_route_add4_tagged(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen,
			 struct in_addr gw, struct in_addr prefsrc)
{
	return route_add(h, ifindex, dst, prefixlen, gw, prefsrc, NL_RTPROT_SLUICE);
}

struct route_tagged {
	int ifindex;
	int (*cb)(struct in_addr dst, int prefixlen, struct in_addr gw, void *arg);
	void *arg;
};

static int route_tagged_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct route_tagged *t = arg;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1];
	struct in_addr dst = { 0 }, gw = { 0 };
	uint32_t oif;

	if (nlh->nlmsg_type != RTM_NEWROUTE || parse_attrs(nlh, sizeof(*rtm), tb, RTA_MAX) < 0)
		return 0;
	if (rtm->rtm_family != AF_INET || rtm->rtm_protocol != NL_RTPROT_SLUICE ||
	    !attr_u32(tb[RTA_OIF], &oif) || (int)oif != t->ifindex)
		return 0;
	if (tb[RTA_DST] && mnl_attr_get_payload_len(tb[RTA_DST]) == sizeof(dst))
		memcpy(&dst, mnl_attr_get_payload(tb[RTA_DST]), sizeof(dst));
	if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == sizeof(gw))
		memcpy(&gw, mnl_attr_get_payload(tb[RTA_GATEWAY]), sizeof(gw));
	return t->cb(dst, rtm->rtm_dst_len, gw, t->arg);
}

int nl_route_list4_tagged(struct nl_handle *h, int ifindex,
			  int (*cb)(struct in_addr dst, int prefixlen, struct in_addr gw, void *arg),
			  void *arg)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct route_tagged t = { .ifindex = ifindex, .cb = cb, .arg = arg };
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int ret;

	nlh = nl_req(buf, RTM_GETROUTE, NLM_F_DUMP);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_table = RT_TABLE_MAIN;
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	ret = nl_dump_find(h, nlh, route_tagged_cb, &t);
	return ret == -ENOENT ? 0 : ret;
}

struct route_find {
	int ifindex;
	struct in_addr dst;
	int prefixlen;
	struct in_addr gw;
};

static int route_find_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct route_find *f = arg;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1];
	uint32_t table, oif;
	struct in_addr dst = { 0 }, gw = { 0 };

	if (nlh->nlmsg_type != RTM_NEWROUTE || parse_attrs(nlh, sizeof(*rtm), tb, RTA_MAX) < 0)
		return 0;
	if (rtm->rtm_family != AF_INET || rtm->rtm_type != RTN_UNICAST || rtm->rtm_dst_len != f->prefixlen)
		return 0;
	if (!attr_u32(tb[RTA_TABLE], &table))
		table = rtm->rtm_table;
	if (table != RT_TABLE_MAIN || !attr_u32(tb[RTA_OIF], &oif) || (int)oif != f->ifindex)
		return 0;
	if (tb[RTA_DST]) {
		if (mnl_attr_get_payload_len(tb[RTA_DST]) != sizeof(dst))
			return 0;
		memcpy(&dst, mnl_attr_get_payload(tb[RTA_DST]), sizeof(dst));
	}
	if (tb[RTA_GATEWAY]) {
		if (mnl_attr_get_payload_len(tb[RTA_GATEWAY]) != sizeof(gw))
			return 0;
		memcpy(&gw, mnl_attr_get_payload(tb[RTA_GATEWAY]), sizeof(gw));
	}
	return dst.s_addr == f->dst.s_addr && gw.s_addr == f->gw.s_addr;
}

int nl_route_has4(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen, struct in_addr gw)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct route_find f = { .ifindex = ifindex, .dst = dst, .prefixlen = prefixlen, .gw = gw };
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int ret;

	if (ifindex <= 0 || prefixlen < 0 || prefixlen > 32)
		return -EINVAL;
	/* Strict dump requests may only carry RTA_TABLE / RTA_OIF as filters
	 * and must leave rtm_dst_len and rtm_scope zero. */
	nlh = nl_req(buf, RTM_GETROUTE, NLM_F_DUMP);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_table = RT_TABLE_MAIN;
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	ret = nl_dump_find(h, nlh, route_find_cb, &f);
	/* A netns with no route at all may not have a main table yet. */
	return ret == -ENOENT ? 0 : ret;
}

int nl_route_del4(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	if (ifindex <= 0 || prefixlen < 0 || prefixlen > 32)
		return -EINVAL;
	nlh = route_req(buf, RTM_DELROUTE, 0, ifindex, dst, prefixlen);
	rtm = mnl_nlmsg_get_payload(nlh);
	rtm->rtm_scope = RT_SCOPE_NOWHERE;      /* match any scope */
	return nl_talk(h, nlh, NULL, NULL);
}

/* ---- neighbours -------------------------------------------------------- */

int nl_neigh_add4(struct nl_handle *h, int ifindex, struct in_addr ip, const unsigned char mac[6])
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;

	if (ifindex <= 0 || !mac)
		return -EINVAL;
	nlh = nl_req(buf, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = AF_INET;
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = NUD_PERMANENT;
	mnl_attr_put(nlh, NDA_DST, sizeof(ip), &ip);
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	return nl_talk(h, nlh, NULL, NULL);
}

static int neigh_match_cb(const struct nlmsghdr *nlh, void *arg)
{
	const unsigned char *mac = arg;
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NDA_MAX + 1];

	if (nlh->nlmsg_type != RTM_NEWNEIGH || parse_attrs(nlh, sizeof(*ndm), tb, NDA_MAX) < 0)
		return -EBADMSG;
	if (!(ndm->ndm_state & NUD_PERMANENT) || !tb[NDA_LLADDR] || mnl_attr_get_payload_len(tb[NDA_LLADDR]) != 6)
		return 2;
	return memcmp(mnl_attr_get_payload(tb[NDA_LLADDR]), mac, 6) == 0 ? 1 : 2;
}

int nl_neigh_has4(struct nl_handle *h, int ifindex, struct in_addr ip, const unsigned char mac[6])
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;
	int ret;

	if (ifindex <= 0 || !mac)
		return -EINVAL;
	/* RTM_GETNEIGH without NLM_F_DUMP looks up one entry (kernel >= 5.0). */
	nlh = nl_req(buf, RTM_GETNEIGH, 0);
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = AF_INET;
	ndm->ndm_ifindex = ifindex;
	mnl_attr_put(nlh, NDA_DST, sizeof(ip), &ip);
	ret = nl_talk(h, nlh, neigh_match_cb, (void *)mac);
	if (ret == -ENOENT || ret == 2 || ret == 0)
		return 0;
	return ret;
}

/* Resolve the neighbour ip on ifindex, creating the entry if need be: NTF_USE
 * has the kernel act as if a packet were waiting for it (an ARP request for
 * a new or failed entry, a unicast probe for a stale one). */
int nl_neigh_use4(struct nl_handle *h, int ifindex, struct in_addr ip)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;

	if (ifindex <= 0)
		return -EINVAL;
	nlh = nl_req(buf, RTM_NEWNEIGH, NLM_F_CREATE);
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = AF_INET;
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_flags = NTF_USE;
	mnl_attr_put(nlh, NDA_DST, sizeof(ip), &ip);
	return nl_talk(h, nlh, NULL, NULL);
}

struct nexthop_req {
	int oif;
	struct in_addr via;
};

static int nexthop_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nexthop_req *r = arg;
	const struct nlattr *tb[RTA_MAX + 1];
	uint32_t oif = 0;

	if (nlh->nlmsg_type != RTM_NEWROUTE || parse_attrs(nlh, sizeof(struct rtmsg), tb, RTA_MAX) < 0)
		return -EBADMSG;
	if (!attr_u32(tb[RTA_OIF], &oif))
		return -ENETUNREACH;
	r->oif = (int)oif;
	if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == sizeof(r->via))
		memcpy(&r->via, mnl_attr_get_payload(tb[RTA_GATEWAY]), sizeof(r->via));
	return 0;
}

int nl_route_nexthop4(struct nl_handle *h, struct in_addr dst, int *oif, struct in_addr *via)
{
	char buf[NL_REQ_LEN] __attribute__((aligned(8)));
	struct nexthop_req r = { .via = dst };
	struct nlmsghdr *nlh = nl_req(buf, RTM_GETROUTE, 0);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	int ret;

	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	mnl_attr_put(nlh, RTA_DST, sizeof(dst), &dst);
	ret = nl_talk(h, nlh, nexthop_cb, &r);
	if (ret)
		return ret;
	if (!r.oif)
		return -ENETUNREACH;
	*oif = r.oif;
	*via = r.via;
	return 0;
}

int nl_neigh_watch(struct nl_handle *h)
{
	int grp = RTNLGRP_NEIGH, fd = mnl_socket_get_fd(h->sock), fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	if (mnl_socket_setsockopt(h->sock, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0)
		return -errno;
	return 0;
}

int nl_fd(const struct nl_handle *h)
{
	return mnl_socket_get_fd(h->sock);
}

/* The kernel's NUD_VALID (include/net/neighbour.h, not in the UAPI). */
#define NL_NUD_VALID (NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY)

int nl_neigh_events(struct nl_handle *h, void (*cb)(int ifindex, struct in_addr ip, int lost, void *arg),
		    void *arg)
{
	const struct nlmsghdr *nlh;
	struct in_addr none = { 0 };
	int len;

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(h->sock, h->rbuf, h->rbuf_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == ENOBUFS) { /* events were dropped: recheck everything */
				cb(0, none, 1, arg);
				continue;
			}
			return -errno;
		}
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)h->rbuf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
			const struct nlattr *tb[NDA_MAX + 1];
			struct in_addr ip;

			if ((nlh->nlmsg_type != RTM_NEWNEIGH && nlh->nlmsg_type != RTM_DELNEIGH) ||
			    parse_attrs(nlh, sizeof(*ndm), tb, NDA_MAX) < 0 || ndm->ndm_family != AF_INET ||
			    !tb[NDA_DST] || mnl_attr_get_payload_len(tb[NDA_DST]) != sizeof(ip))
				continue;
			/* Usable, or being resolved: nothing to do. */
			if (nlh->nlmsg_type == RTM_NEWNEIGH &&
			    (ndm->ndm_state & (NL_NUD_VALID | NUD_INCOMPLETE)))
				continue;
			memcpy(&ip, mnl_attr_get_payload(tb[NDA_DST]), sizeof(ip));
			cb(ndm->ndm_ifindex, ip, 0, arg);
		}
	}
}

/* ---- sysctls ----------------------------------------------------------- */

/* Where the sysctl tree is: /proc/sys, or a host bind mount of it when the
 * container's own /proc/sys is read-only. Set once from --proc-sys before
 * any handle exists, read-only afterwards. */
static const char *proc_sys_root = "/proc/sys";

void nl_set_proc_sys(const char *root)
{
	proc_sys_root = root;
}

/*
 * One sysctl file of h's network namespace, read into buf (len bytes, the
 * value without its newline) or, with value set, written. The file is
 * opened and used inside the namespace: it shows, and a few handlers act
 * on, the netns of whoever opens and writes it.
 */
static int sysctl_io(struct nl_handle *h, const char *path, const char *value, char *buf,
		     size_t len)
{
	char full[256];
	ssize_t n = 0;
	int fd = -1, saved = -1, err, err2;

	if (!path || path[0] == '/' || strstr(path, ".."))
		return -EINVAL;
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", proc_sys_root, path) >= sizeof(full))
		return -ENAMETOOLONG;
	err = ns_enter(h->ns_fd, &saved);
	if (err)
		return err;
	fd = open(full, (value ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto cleanup;
	}
	n = value ? write(fd, value, strlen(value)) : read(fd, buf, len - 1);
	if (n < 0)
		err = -errno;
	else if (value && (size_t)n != strlen(value))
		err = -EIO;
cleanup:
	if (fd >= 0)
		close(fd);
	err2 = ns_leave(saved);
	if (!value) {
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
	if (err)
		pr_debug("netlink: sysctl %s%s%s: %s", full, value ? " = " : "", value ? value : "",
			 strerror(-err));
	return err ? err : err2;
}

int nl_sysctl_set(struct nl_handle *h, const char *path, const char *value)
{
	return value ? sysctl_io(h, path, value, NULL, 0) : -EINVAL;
}

int nl_sysctl_get(struct nl_handle *h, const char *path, char *buf, size_t len)
{
	return buf && len ? sysctl_io(h, path, NULL, buf, len) : -EINVAL;
}
