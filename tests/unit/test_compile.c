// SPDX-License-Identifier: Apache-2.0
/* The compiler's port-range decomposition into LPM prefix blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compile.h"

/* The blocks must cover exactly [lo, hi], each aligned to its size. */
static void check_exact(uint16_t lo, uint16_t hi)
{
	static unsigned char seen[65536];
	uint16_t starts[32];
	uint8_t bits[32];
	int n = port_range_blocks(lo, hi, starts, bits);

	memset(seen, 0, sizeof(seen));
	assert_true(n >= 1 && n <= 32);
	for (int i = 0; i < n; i++) {
		uint32_t size = 1u << (16 - bits[i]);

		assert_int_equal(starts[i] % size, 0);
		for (uint32_t p = starts[i]; p < starts[i] + size; p++) {
			if (p < lo || p > hi)
				fail_msg("[%u, %u]: block %u/%u covers %u", lo, hi, starts[i], bits[i], p);
			if (seen[p]++)
				fail_msg("[%u, %u]: port %u covered twice", lo, hi, p);
		}
	}
	for (uint32_t p = lo; p <= hi; p++)
		if (!seen[p])
			fail_msg("[%u, %u]: port %u not covered", lo, hi, p);
}

static void test_single_port(void **state)
{
	uint16_t starts[32];
	uint8_t bits[32];

	(void)state;
	assert_int_equal(port_range_blocks(80, 80, starts, bits), 1);
	assert_int_equal(starts[0], 80);
	assert_int_equal(bits[0], 16);
}

static void test_whole_field(void **state)
{
	uint16_t starts[32];
	uint8_t bits[32];

	(void)state;
	assert_int_equal(port_range_blocks(0, 65535, starts, bits), 1);
	assert_int_equal(starts[0], 0);
	assert_int_equal(bits[0], 0);
}

static void test_aligned_block(void **state)
{
	uint16_t starts[32];
	uint8_t bits[32];

	(void)state;
	assert_int_equal(port_range_blocks(8000, 8007, starts, bits), 1);
	assert_int_equal(bits[0], 13);
}

static void test_ranges_exact(void **state)
{
	static const uint16_t cases[][2] = {
		{ 1, 65535 }, { 32000, 32768 }, { 1000, 1999 }, { 65535, 65535 }, { 0, 0 },
		{ 1, 2 }, { 443, 8443 }, { 30000, 32767 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_exact(cases[i][0], cases[i][1]);
	srand(7);
	for (int i = 0; i < 200; i++) {
		uint16_t a = (uint16_t)(rand() & 0xffff), b = (uint16_t)(rand() & 0xffff);

		check_exact(a < b ? a : b, a < b ? b : a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_port),
		cmocka_unit_test(test_whole_field),
		cmocka_unit_test(test_aligned_block),
		cmocka_unit_test(test_ranges_exact),
	};

	return cmocka_run_group_tests_name("compile", tests, NULL, NULL);
}
