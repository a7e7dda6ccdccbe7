/* SPDX-License-Identifier: MIT */
/*
 * What m2md-toml, the TOML parser process, writes on its standard output
 * for config-toml-exec.c: the converted document as a pre-order walk of its
 * items, or the parser's one-line error. Both ends are the same build on the
 * same machine, so integers are in the host's byte order.
 *
 *   u32 magic, u8 status
 *   status ERROR: i32 negative errno, u32 length, the message
 *   status TREE:  one node, the root table:
 *     u8 type (enum config_toml_type), u32 line, i64 ival,
 *     u32 length + key (only for the members of a table),
 *     u32 length + key path,
 *     then by type: STRING/DATE/TIME/DATETIME u32 length + text; FLOAT a
 *     double; BOOLEAN u8; INTEGER nothing more (ival is the value);
 *     TABLE/ARRAY u32 count, then that many nodes.
 */
#pragma once

#define CONFIG_TOML_WIRE_MAGIC 0x544d324du /* "M2MT" in a little-endian dump */
#define CONFIG_TOML_WIRE_TREE 1
#define CONFIG_TOML_WIRE_ERROR 2
