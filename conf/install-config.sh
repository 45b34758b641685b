#!/bin/sh
# meson install helper: put the sample gateway.conf in place unless the
# operator already has one. $1: target directory, $2: the sample.
set -eu
dir="${DESTDIR:-}$1"
if [ -e "$dir/gateway.conf" ]; then
  echo "keeping existing $dir/gateway.conf"
  exit 0
fi
mkdir -p "$dir"
install -m 0640 "$2" "$dir/gateway.conf"
echo "installed $dir/gateway.conf"
