// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's --xdp values (agent/loader.c): what parses, what is refused,
 * the names status prints, and the driver lookup's answer for a device
 * that does not exist. The attachment itself is tested by tests/xdp.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "loader.h"

static void test_parse_each_mode(void **state)
{
	static const struct { const char *text; enum xdp_request req; } ok[] = {
		{ "best-effort", XDP_REQ_BEST_EFFORT },
		{ "native", XDP_REQ_NATIVE },
		{ "generic", XDP_REQ_GENERIC },
		{ "off", XDP_REQ_OFF },
	};
	enum xdp_request req;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		req = XDP_REQ_OFF + 1;
		assert_int_equal(xdp_request_parse(ok[i].text, &req), 0);
		assert_int_equal(req, ok[i].req);
		/* status prints the name back as it was given */
		assert_string_equal(xdp_request_name(req), ok[i].text);
	}
}

/* Nothing is guessed: no abbreviations, other spellings or the kernel's
 * own words for the modes. */
static void test_parse_refuses_the_rest(void **state)
{
	static const char *const bad[] = { "", "Native", "drv", "skb", "xdpdrv", "auto",
					   "best_effort", "on", "native " };
	enum xdp_request req = XDP_REQ_NATIVE;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(xdp_request_parse(bad[i], &req), -EINVAL);
	assert_int_equal(req, XDP_REQ_NATIVE);
}

static void test_mode_names(void **state)
{
	(void)state;
	assert_string_equal(xdp_mode_name(SLUICE_XDP_MODE_NATIVE), "native");
	assert_string_equal(xdp_mode_name(SLUICE_XDP_MODE_GENERIC), "generic");
	assert_string_equal(xdp_mode_name(SLUICE_XDP_MODE_OFF), "off");
	assert_string_equal(xdp_mode_name(77), "off");
}

static void test_driver_of_missing_device(void **state)
{
	char drv[32] = "x";

	(void)state;
	xdp_driver_name("sluicenodev9", drv, sizeof(drv));
	assert_string_equal(drv, "unknown");
}

/* best-effort leaves veth to tc (agent/loader.c says why); real NICs'
 * drivers attach natively. */
static void test_costly_drivers(void **state)
{
	(void)state;
	assert_true(xdp_costly_driver("veth"));
	assert_false(xdp_costly_driver("mlx5_core"));
	assert_false(xdp_costly_driver("ixgbe"));
	assert_false(xdp_costly_driver("unknown"));
	assert_false(xdp_costly_driver("vet"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_each_mode),
		cmocka_unit_test(test_parse_refuses_the_rest),
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_driver_of_missing_device),
		cmocka_unit_test(test_costly_drivers),
	};

	return cmocka_run_group_tests_name("xdp-opts", tests, NULL, NULL);
}
