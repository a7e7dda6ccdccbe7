/* SPDX-License-Identifier: MIT */
/*
 * serial-number.h - decimal numbers out of text, without the C locale.
 *
 * strtod() reads "3.5" as 3 under a locale with a decimal comma, and a
 * plugin cannot know what locale the daemon runs with; these parsers take
 * the decimal separator as an argument instead. Pure functions, any thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Parses all of p[0..len) as [+-]digits[<decimal>digits][(e|E)[+-]digits],
 * at least one digit, nothing else (no spaces). Up to 15 significant digits
 * and exponents up to 22 are converted exactly (correctly rounded); longer
 * numbers to within a few units in the last place. Returns 0 and sets
 * *ret, -ENODATA for an empty field, -EINVAL for anything else.
 */
int sn_double(const char *p, size_t len, char decimal, double *ret);

/* All of p[0..len) as unsigned decimal digits up to max: 0, -ENODATA (empty), -EINVAL, -ERANGE. */
int sn_uint(const char *p, size_t len, uint64_t max, uint64_t *ret);
