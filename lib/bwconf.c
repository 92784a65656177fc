// SPDX-License-Identifier: Apache-2.0
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bwconf.h"
#include "jsonci.h"

/* One value of obj: absent or null is 0. */
static int field(const json_t *obj, const char *key, int rate, const char *prefix, uint64_t *out,
		 char *err, size_t errlen)
{
	const json_t *v = json_object_get_ci(obj, key);
	const char *why = NULL;
	json_int_t n;

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_real(v))
		why = "must be a whole number, written without a fraction or exponent";
	else if (!json_is_integer(v))
		why = "must be a number (an integer, not a string)";
	if (why)
		goto bad;
	n = json_integer_value(v);
	if (n < 0) {
		why = "must not be negative";
		goto bad;
	}
	*out = (uint64_t)n;
	if (rate && *out && (*out < BW_RATE_MIN || *out > BW_RATE_MAX)) {
		snprintf(err, errlen, "invalid %s.%s: %" PRIu64 " bit/s is out of range: 0 (no limit) "
			 "or 8000 (1 kB/s) to 10^12 (1 Tbit/s) bits per second", prefix, key, *out);
		return -1;
	}
	if (!rate && *out > BW_BURST_MAX) {
		snprintf(err, errlen, "invalid %s.%s: %" PRIu64 " bits is out of range: 0 (the "
			 "default) or one MTU to 2^32-1 bits", prefix, key, *out);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "invalid %s.%s: %s (%s)", prefix, key, why,
		 rate ? "bits per second, 0 for no limit" : "bits, 0 for the default");
	return -1;
}

int bw_limits_parse(const json_t *obj, const char *prefix, struct bw_limits *out, char *err,
		    size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "invalid %s: expected an object with ingressRate, ingressBurst, "
			 "egressRate and egressBurst", prefix);
		return -1;
	}
	if (field(obj, "ingressRate", 1, prefix, &out->ingress_rate, err, errlen) ||
	    field(obj, "ingressBurst", 0, prefix, &out->ingress_burst, err, errlen) ||
	    field(obj, "egressRate", 1, prefix, &out->egress_rate, err, errlen) ||
	    field(obj, "egressBurst", 0, prefix, &out->egress_burst, err, errlen)) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

json_t *bw_limits_json(const struct bw_limits *l)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "ingressRate", (json_int_t)l->ingress_rate,
			 "ingressBurst", (json_int_t)l->ingress_burst, "egressRate",
			 (json_int_t)l->egress_rate, "egressBurst", (json_int_t)l->egress_burst);
}

int bw_limits_any(const struct bw_limits *l)
{
	return l->ingress_rate || l->egress_rate || l->ingress_burst || l->egress_burst;
}

uint64_t bw_depth(uint64_t rate_bits, uint64_t burst_bits)
{
	uint64_t cap = rate_bits / 8 * BW_DEPTH_MS / 1000;

	/* No burst is the largest one: the datapath's arithmetic counts on
	 * a depth of at most 2^32-1 bits (bpf/lib/bw_bucket.h). */
	if (!burst_bits || burst_bits > BW_BURST_MAX)
		burst_bits = BW_BURST_MAX;
	if (cap < BW_DEPTH_FLOOR)
		cap = BW_DEPTH_FLOOR;
	return burst_bits / 8 < cap ? burst_bits / 8 : cap;
}

void bw_format_rate(uint64_t bits, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	double v = (double)bits;
	int u = -1;

	if (!bits) {
		snprintf(buf, len, "-");
		return;
	}
	while (u < 3 && v >= 1000) {
		v /= 1000;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, bits);
	else
		snprintf(buf, len, "%.4g%c", v, units[u]);
}
