#!/bin/sh
# Copies built plugins into one directory with the modes m2md requires.
set -eu
out=$1; shift
chmod go-w "$out"
for so in "$@"; do
	install -m 0644 "$so" "$out/$(basename "$so")"
done
