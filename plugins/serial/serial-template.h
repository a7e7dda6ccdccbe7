/* SPDX-License-Identifier: MIT */
/*
 * serial-template.h - the bytes the driver sends: escapes in configured
 * strings, and command templates that carry a value ("SP{value:.1f}\r").
 *
 * TOML's basic strings already turn "\r" into a carriage return, but they
 * have no way to write a byte above 0x7f, and literal strings ('...') have
 * no escapes at all. So the driver decodes its own escapes in commands,
 * delimiters and templates: \r \n \t \0 \\ and \xHH. Decoding a string
 * that TOML already decoded changes nothing but those sequences.
 *
 * Pure functions, any thread; the config checks each template once with
 * ser_template_check(), so that formatting a write cannot fail on syntax.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The longest command or rendered template, in bytes. */
#define SER_CMD_MAX 512

/*
 * Decodes the escapes of s into out (at most size bytes). Returns the
 * number of bytes, -EINVAL for an unknown escape or a bad \x (what names
 * the offset in err), or -E2BIG when the result does not fit.
 */
int ser_unescape(const char *s, uint8_t *out, size_t size, char *err, size_t errsize);

/*
 * Renders template tpl (already unescaped, tpl_len bytes) with value into
 * out. The template holds literal bytes and placeholders: "{value}" (the
 * shortest text that reads back as the value), "{value:SPEC}" where SPEC
 * is a printf conversion without the '%' ([flags][width][.precision] and
 * one of f F e E g G d x X; d, x and X need a whole number), and "{{" or
 * "}}" for a brace. Returns the length, -EINVAL for a bad template (a
 * message in err), -ERANGE for a value the conversion cannot show (a
 * fraction for d, NaN, out of the range of a 64-bit integer), -E2BIG when
 * it does not fit in size bytes.
 */
int ser_template_render(const uint8_t *tpl, size_t tpl_len, double value, uint8_t *out,
                        size_t size, char *err, size_t errsize);

/* Checks a template's syntax (a dry run with 0). 0 or -EINVAL with err. */
int ser_template_check(const uint8_t *tpl, size_t tpl_len, char *err, size_t errsize);
