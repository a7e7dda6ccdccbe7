/* SPDX-License-Identifier: MIT */
/* Unit tests of the Modbus codec: types, word/byte orders, strings. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "mb-codec.h"
#include "mb-tcp.h"
#include "test.h"

#define N_ELEMS(x) (sizeof(x) / sizeof((x)[0]))

static void expect_regs(const uint16_t *got, const uint16_t *want, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (got[i] != want[i])
			TEST_FAIL("register %u: 0x%04x, expected 0x%04x", i, got[i], want[i]);
}

/* Known byte layouts, from the order names' definition in mb-codec.h. */
static void test_known_layouts(void)
{
	static const uint16_t f32[MB_ORDER_COUNT][2] = {
		[MB_ABCD] = { 0x3f80, 0x0000 },
		[MB_CDAB] = { 0x0000, 0x3f80 },
		[MB_BADC] = { 0x803f, 0x0000 },
		[MB_DCBA] = { 0x0000, 0x803f },
	};
	static const uint16_t u32[MB_ORDER_COUNT][2] = {
		[MB_ABCD] = { 0x0102, 0x0304 },
		[MB_CDAB] = { 0x0304, 0x0102 },
		[MB_BADC] = { 0x0201, 0x0403 },
		[MB_DCBA] = { 0x0403, 0x0201 },
	};
	static const uint16_t u64[MB_ORDER_COUNT][4] = {
		[MB_ABCD] = { 0x0102, 0x0304, 0x0506, 0x0700 },
		[MB_CDAB] = { 0x0700, 0x0506, 0x0304, 0x0102 },
		[MB_BADC] = { 0x0201, 0x0403, 0x0605, 0x0007 },
		[MB_DCBA] = { 0x0007, 0x0605, 0x0403, 0x0201 },
	};
	uint16_t regs[4];

	/* 0x0102030405060700 has 53 significant bits: exact in a double. */
	for (int o = 0; o < MB_ORDER_COUNT; o++) {
		ASSERT_OK(mb_encode(MB_FLOAT32, o, 1.0, regs));
		expect_regs(regs, f32[o], 2);
		ASSERT_DOUBLE_EQ(mb_decode(MB_FLOAT32, o, f32[o]), 1.0, 0);

		ASSERT_OK(mb_encode(MB_UINT32, o, 0x01020304, regs));
		expect_regs(regs, u32[o], 2);
		ASSERT_DOUBLE_EQ(mb_decode(MB_UINT32, o, u32[o]), 0x01020304, 0);

		ASSERT_OK(mb_encode(MB_UINT64, o, (double)UINT64_C(0x0102030405060700), regs));
		expect_regs(regs, u64[o], 4);
		ASSERT_DOUBLE_EQ(mb_decode(MB_UINT64, o, u64[o]),
		                 (double)UINT64_C(0x0102030405060700), 0);
	}

	/* 16-bit values: only the byte swap applies. */
	ASSERT_OK(mb_encode(MB_UINT16, MB_ABCD, 0x1234, regs));
	ASSERT_EQ(regs[0], 0x1234);
	ASSERT_OK(mb_encode(MB_UINT16, MB_CDAB, 0x1234, regs));
	ASSERT_EQ(regs[0], 0x1234);
	ASSERT_OK(mb_encode(MB_UINT16, MB_BADC, 0x1234, regs));
	ASSERT_EQ(regs[0], 0x3412);
	ASSERT_OK(mb_encode(MB_UINT16, MB_DCBA, 0x1234, regs));
	ASSERT_EQ(regs[0], 0x3412);

	/* Two's complement. */
	regs[0] = 0xffff;
	ASSERT_DOUBLE_EQ(mb_decode(MB_INT16, MB_ABCD, regs), -1, 0);
	ASSERT_DOUBLE_EQ(mb_decode(MB_UINT16, MB_ABCD, regs), 65535, 0);
	regs[0] = 0x8000;
	regs[1] = 0x0000;
	ASSERT_DOUBLE_EQ(mb_decode(MB_INT32, MB_ABCD, regs), INT32_MIN, 0);
	ASSERT_DOUBLE_EQ(mb_decode(MB_INT32, MB_CDAB, regs), 0x8000, 0);
}

static bool same(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

static void roundtrip(enum mb_type type, double v)
{
	uint16_t regs[4];

	for (int o = 0; o < MB_ORDER_COUNT; o++) {
		double back;

		if (mb_encode(type, o, v, regs) != 0)
			TEST_FAIL("%s %s: encoding %.17g failed", mb_type_names[type],
			          mb_order_names[o], v);
		back = mb_decode(type, o, regs);
		if (!same(back, v))
			TEST_FAIL("%s %s: %.17g came back as %.17g", mb_type_names[type],
			          mb_order_names[o], v, back);
	}
}

static void test_roundtrip(void)
{
	static const double i16[] = { 0, 1, -1, 12345, -12345, INT16_MAX, INT16_MIN };
	static const double u16[] = { 0, 1, 65535, 32768 };
	static const double i32[] = { 0, -1, 123456789, -123456789, INT32_MAX, INT32_MIN };
	static const double u32[] = { 0, 1, 4294967295.0, 2147483648.0 };
	static const double i64[] = { 0, -1, 9007199254740993.0, -9007199254740992.0,
		                      -9223372036854775808.0, 1e18 };
	static const double u64[] = { 0, 1, 18446744073709549568.0, 9007199254740992.0 };
	static const double f32[] = { 0, -0.0, 1.5, -273.15f, 3.4028234663852886e38,
		                      1.401298464324817e-45, INFINITY, -INFINITY, NAN };
	static const double f64[] = { 0, -1.25, 3.141592653589793, DBL_MAX, -DBL_MIN,
		                      INFINITY, NAN, 4.9e-324 };

	for (size_t i = 0; i < N_ELEMS(i16); i++)
		roundtrip(MB_INT16, i16[i]);
	for (size_t i = 0; i < N_ELEMS(u16); i++)
		roundtrip(MB_UINT16, u16[i]);
	for (size_t i = 0; i < N_ELEMS(i32); i++)
		roundtrip(MB_INT32, i32[i]);
	for (size_t i = 0; i < N_ELEMS(u32); i++)
		roundtrip(MB_UINT32, u32[i]);
	for (size_t i = 0; i < N_ELEMS(i64); i++)
		roundtrip(MB_INT64, i64[i]);
	for (size_t i = 0; i < N_ELEMS(u64); i++)
		roundtrip(MB_UINT64, u64[i]);
	for (size_t i = 0; i < N_ELEMS(f32); i++)
		roundtrip(MB_FLOAT32, f32[i]);
	for (size_t i = 0; i < N_ELEMS(f64); i++)
		roundtrip(MB_FLOAT64, f64[i]);
	roundtrip(MB_BOOL, 0);
	roundtrip(MB_BOOL, 1);

	/* Every 16-bit pattern survives decode then encode in every order. */
	for (uint32_t w = 0; w <= 0xffff; w++) {
		uint16_t in[1] = { (uint16_t)w }, out[1];

		for (int o = 0; o < MB_ORDER_COUNT; o++) {
			ASSERT_OK(mb_encode(MB_INT16, o, mb_decode(MB_INT16, o, in), out));
			ASSERT_EQ(out[0], in[0]);
		}
	}
}

static void expect_range(enum mb_type type, double v)
{
	uint16_t regs[4] = { 0xaaaa, 0xaaaa, 0xaaaa, 0xaaaa };
	int r = mb_encode(type, MB_ABCD, v, regs);

	if (r != -ERANGE)
		TEST_FAIL("%s accepted %.17g (%d)", mb_type_names[type], v, r);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(regs[i], 0xaaaa);
}

static void test_unrepresentable(void)
{
	expect_range(MB_UINT16, 70000);
	expect_range(MB_UINT16, -1);
	expect_range(MB_UINT16, 1.5);
	expect_range(MB_UINT16, NAN);
	expect_range(MB_UINT16, INFINITY);
	expect_range(MB_INT16, 32768);
	expect_range(MB_INT16, -32769);
	expect_range(MB_INT16, 0.25);
	expect_range(MB_INT32, 2147483648.0);
	expect_range(MB_INT32, -2147483649.0);
	expect_range(MB_UINT32, 4294967296.0);
	expect_range(MB_UINT32, -0.5);
	expect_range(MB_INT64, 9223372036854775808.0);
	expect_range(MB_INT64, NAN);
	expect_range(MB_INT64, -INFINITY);
	expect_range(MB_UINT64, 18446744073709551616.0);
	expect_range(MB_UINT64, -1);
	expect_range(MB_FLOAT32, 1e39);
	expect_range(MB_FLOAT32, -DBL_MAX);
	expect_range(MB_BOOL, 2);
	expect_range(MB_BOOL, 0.5);
	expect_range(MB_BOOL, NAN);
	expect_range(MB_STRING, 1);
}

static void test_registers_and_orders(void)
{
	ASSERT_EQ(mb_type_registers(MB_BOOL, 0), 1);
	ASSERT_EQ(mb_type_registers(MB_UINT16, 0), 1);
	ASSERT_EQ(mb_type_registers(MB_FLOAT32, 0), 2);
	ASSERT_EQ(mb_type_registers(MB_INT64, 0), 4);
	ASSERT_EQ(mb_type_registers(MB_FLOAT64, 0), 4);
	ASSERT_EQ(mb_type_registers(MB_STRING, 10), 10);
	ASSERT(mb_order_valid(MB_STRING, MB_ABCD));
	ASSERT(mb_order_valid(MB_STRING, MB_BADC));
	ASSERT(!mb_order_valid(MB_STRING, MB_CDAB));
	ASSERT(!mb_order_valid(MB_STRING, MB_DCBA));
	ASSERT(mb_order_valid(MB_FLOAT64, MB_DCBA));
	ASSERT(mb_table_is_bits(MB_COIL));
	ASSERT(mb_table_is_bits(MB_DISCRETE_INPUT));
	ASSERT(!mb_table_is_bits(MB_HOLDING_REGISTER));
	ASSERT(mb_table_is_writable(MB_COIL));
	ASSERT(mb_table_is_writable(MB_HOLDING_REGISTER));
	ASSERT(!mb_table_is_writable(MB_INPUT_REGISTER));
	ASSERT(!mb_table_is_writable(MB_DISCRETE_INPUT));
	ASSERT_STR_EQ(mb_type_names[MB_FLOAT32], "float32");
	ASSERT(mb_type_names[MB_TYPE_COUNT] == NULL);
	ASSERT(mb_table_names[MB_TABLE_COUNT] == NULL);
	ASSERT(mb_order_names[MB_ORDER_COUNT] == NULL);
}

static void test_bits(void)
{
	ASSERT_DOUBLE_EQ(mb_decode_bit(0x8001, 0), 1, 0);
	ASSERT_DOUBLE_EQ(mb_decode_bit(0x8001, 1), 0, 0);
	ASSERT_DOUBLE_EQ(mb_decode_bit(0x8001, 15), 1, 0);
	ASSERT_DOUBLE_EQ(mb_decode_bit(0xffff, 16), 0, 0);
}

static void test_strings(void)
{
	uint16_t regs[4];
	char buf[16];

	ASSERT_OK(mb_encode_string("SN-42", 4, MB_ABCD, regs));
	ASSERT_EQ(regs[0], ('S' << 8) | 'N');
	ASSERT_EQ(regs[1], ('-' << 8) | '4');
	ASSERT_EQ(regs[2], '2' << 8);
	ASSERT_EQ(regs[3], 0);
	ASSERT_EQ(mb_decode_string(regs, 4, MB_ABCD, buf, sizeof(buf)), 5);
	ASSERT_STR_EQ(buf, "SN-42");

	ASSERT_OK(mb_encode_string("SN-42", 4, MB_BADC, regs));
	ASSERT_EQ(regs[0], ('N' << 8) | 'S');
	ASSERT_EQ(mb_decode_string(regs, 4, MB_BADC, buf, sizeof(buf)), 5);
	ASSERT_STR_EQ(buf, "SN-42");

	/* Exactly full, no NUL. */
	ASSERT_OK(mb_encode_string("ABCDEFGH", 4, MB_ABCD, regs));
	ASSERT_EQ(mb_decode_string(regs, 4, MB_ABCD, buf, sizeof(buf)), 8);
	ASSERT_STR_EQ(buf, "ABCDEFGH");
	ASSERT_EQ(mb_encode_string("ABCDEFGHI", 4, MB_ABCD, regs), -ERANGE);

	/* Truncated to the buffer. */
	ASSERT_EQ(mb_decode_string(regs, 4, MB_ABCD, buf, 4), 3);
	ASSERT_STR_EQ(buf, "ABC");

	/* Padding spaces go, control bytes and non-ASCII become '?'. */
	regs[0] = ('o' << 8) | 'k';
	regs[1] = (0x01 << 8) | 0xe9;
	regs[2] = (' ' << 8) | ' ';
	regs[3] = (' ' << 8) | ' ';
	ASSERT_EQ(mb_decode_string(regs, 4, MB_ABCD, buf, sizeof(buf)), 4);
	ASSERT_STR_EQ(buf, "ok??");

	/* A leading NUL is the empty string. */
	regs[0] = 0x0041;
	ASSERT_EQ(mb_decode_string(regs, 4, MB_ABCD, buf, sizeof(buf)), 0);
	ASSERT_STR_EQ(buf, "");
	ASSERT_EQ(mb_decode_string(regs, 4, MB_ABCD, buf, 0), 0);
}

/* Scaled setpoints that land next to an integer are written as it. */
static void test_snap_integer(void)
{
	uint16_t regs[4];

	ASSERT_DOUBLE_EQ(mb_snap_integer(MB_INT16, 0.3 / 0.1), 3, 0);
	ASSERT_DOUBLE_EQ(mb_snap_integer(MB_UINT32, 0.7 / 0.1), 7, 0);
	ASSERT_DOUBLE_EQ(mb_snap_integer(MB_INT64, -2.9999999999999996), -3, 0);
	ASSERT_DOUBLE_EQ(mb_snap_integer(MB_BOOL, 0.9999999999999999), 1, 0);
	ASSERT_OK(mb_encode(MB_INT16, MB_ABCD, mb_snap_integer(MB_INT16, 0.3 / 0.1), regs));
	ASSERT_EQ(regs[0], 3);
	/* A real fraction stays one, and is refused. */
	ASSERT_DOUBLE_EQ(mb_snap_integer(MB_INT16, 2.5), 2.5, 0);
	ASSERT_DOUBLE_EQ(mb_snap_integer(MB_UINT16, 2.000001), 2.000001, 0);
	ASSERT_EQ(mb_encode(MB_INT16, MB_ABCD, mb_snap_integer(MB_INT16, 2.5), regs), -ERANGE);
	/* Floats are never rounded; NaN and infinities pass through. */
	ASSERT_DOUBLE_EQ(mb_snap_integer(MB_FLOAT32, 0.3 / 0.1), 0.3 / 0.1, 0);
	ASSERT_DOUBLE_EQ(mb_snap_integer(MB_FLOAT64, 2.9999999999999996), 2.9999999999999996, 0);
	ASSERT(isnan(mb_snap_integer(MB_INT32, NAN)));
	ASSERT(isinf(mb_snap_integer(MB_INT32, INFINITY)));
}

/* Every field of a Modbus TCP answer is checked; the message names the field and both values. */
static void test_tcp_answers(void)
{
	uint8_t req[MB_TCP_READ_REQUEST], a[16];
	uint16_t regs[2];
	uint8_t bits[10];
	char why[96];
	int exc = -1;
	static const uint8_t good[] = { 0x12, 0x34, 0, 0, 0, 7, 8, 3, 4, 0x03, 0xe8, 0x03, 0xe9 };

	ASSERT_EQ(mb_tcp_read_request(req, 0x1234, 8, 3, 100, 2), 12);
	ASSERT(memcmp(req, "\x12\x34\0\0\0\x06\x08\x03\0\x64\0\x02", 12) == 0);

	ASSERT_EQ(mb_tcp_check_answer(good, sizeof(good), 0x1234, 8, 3, 2, &exc, why, sizeof(why)), 0);
	mb_tcp_unpack_registers(good + 9, 2, regs);
	ASSERT_EQ(regs[0], 1000);
	ASSERT_EQ(regs[1], 1001);

	memcpy(a, good, sizeof(good));
	a[5] = 3;
	ASSERT_EQ(mb_tcp_check_answer(a, sizeof(good), 0x1234, 8, 3, 2, &exc, why, sizeof(why)), -EBADMSG);
	ASSERT_STR_EQ(why, "MBAP length field 3, expected 7");
	memcpy(a, good, sizeof(good));
	a[6] = 9;
	ASSERT_EQ(mb_tcp_check_answer(a, sizeof(good), 0x1234, 8, 3, 2, &exc, why, sizeof(why)), -EBADMSG);
	ASSERT_STR_EQ(why, "unit id 9, expected 8");
	ASSERT_EQ(mb_tcp_check_answer(good, sizeof(good), 0x1235, 8, 3, 2, &exc, why, sizeof(why)), -EBADMSG);
	ASSERT_STR_EQ(why, "transaction id 4660, expected 4661");
	ASSERT_EQ(mb_tcp_check_answer(good, sizeof(good), 0x1234, 8, 4, 2, &exc, why, sizeof(why)), -EBADMSG);
	ASSERT_STR_EQ(why, "function code 3, expected 4");
	ASSERT_EQ(mb_tcp_check_answer(good, sizeof(good), 0x1234, 8, 3, 1, &exc, why, sizeof(why)), -EBADMSG);
	ASSERT_STR_EQ(why, "byte count 4, expected 2");
	ASSERT_EQ(mb_tcp_check_answer(good, 8, 0x1234, 8, 3, 2, &exc, why, sizeof(why)), -EBADMSG);

	/* An exception: fc | 0x80 and its code. */
	memcpy(a, good, 9);
	a[5] = 3;
	a[7] = 0x83;
	a[8] = 2;
	ASSERT_EQ(mb_tcp_check_answer(a, 9, 0x1234, 8, 3, 2, &exc, why, sizeof(why)), 1);
	ASSERT_EQ(exc, 2);

	/* Ten coils in two bytes, least significant bit first. */
	memcpy(a, "\0\1\0\0\0\5\1\1\2\x05\x02", 11);
	ASSERT_EQ(mb_tcp_check_answer(a, 11, 1, 1, 1, 10, &exc, why, sizeof(why)), 0);
	mb_tcp_unpack_bits(a + 9, 10, bits);
	ASSERT(bits[0] == 1 && bits[1] == 0 && bits[2] == 1 && bits[3] == 0 && bits[9] == 1);
}

int main(void)
{
	RUN_TEST(test_tcp_answers);
	RUN_TEST(test_known_layouts);
	RUN_TEST(test_roundtrip);
	RUN_TEST(test_unrepresentable);
	RUN_TEST(test_registers_and_orders);
	RUN_TEST(test_bits);
	RUN_TEST(test_strings);
	RUN_TEST(test_snap_integer);
	return 0;
}
