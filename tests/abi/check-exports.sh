#!/bin/sh
# Each plugin must export exactly one symbol: m2m_plugin_entry.
set -eu
status=0
for so in "$@"; do
	syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort)
	if [ "$syms" != "m2m_plugin_entry" ]; then
		echo "$so exports more than m2m_plugin_entry:" >&2
		echo "$syms" | sed 's/^/  /' >&2
		status=1
	else
		echo "$so: exports only m2m_plugin_entry"
	fi
done
exit $status
