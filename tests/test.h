/* SPDX-License-Identifier: MIT */
/*
 * Small assertion macros for the C tests (after libuv's test/task.h). A
 * failed assertion prints file:line and the values, then aborts, so that
 * meson reports the test as failed and a core dump shows where.
 */
#pragma once

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_FAIL(...)                                              \
	do {                                                        \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);     \
		fprintf(stderr, __VA_ARGS__);                       \
		fputc('\n', stderr);                                \
		abort();                                            \
	} while (0)

#define ASSERT(expr)                                                \
	do {                                                        \
		if (!(expr))                                        \
			TEST_FAIL("assertion failed: %s", #expr);   \
	} while (0)

#define ASSERT_INT_OP(a, op, b)                                               \
	do {                                                                  \
		int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                 \
		if (!(a_ op b_))                                              \
			TEST_FAIL("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, a_, b_); \
	} while (0)

#define ASSERT_EQ(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP(a, >=, b)
#define ASSERT_OK(r) ASSERT_INT_OP(r, ==, 0)

#define ASSERT_DOUBLE_EQ(a, b, eps)                                           \
	do {                                                                  \
		double a_ = (a), b_ = (b);                                    \
		if (!(fabs(a_ - b_) <= (eps)))                                \
			TEST_FAIL("%s == %s: %.17g vs %.17g", #a, #b, a_, b_); \
	} while (0)

#define ASSERT_STR_EQ(a, b)                                                   \
	do {                                                                  \
		const char *a_ = (a), *b_ = (b);                              \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                        \
			TEST_FAIL("%s == %s: \"%s\" vs \"%s\"", #a, #b,       \
			          a_ ? a_ : "(null)", b_ ? b_ : "(null)");     \
	} while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                      \
	do {                                                                  \
		const char *h_ = (hay), *n_ = (needle);                       \
		if (!h_ || !strstr(h_, n_))                                   \
			TEST_FAIL("\"%s\" does not contain \"%s\"",           \
			          h_ ? h_ : "(null)", n_);                     \
	} while (0)

/* Runs one test function and says so, for readable logs. */
#define RUN_TEST(fn)                                         \
	do {                                                 \
		fprintf(stderr, "-- %s\n", #fn);             \
		fn();                                        \
	} while (0)
