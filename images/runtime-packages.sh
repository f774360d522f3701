#!/usr/bin/env bash
# Prints, one per line, the Debian packages that own the shared libraries a
# binary needs (its ELF NEEDED entries, resolved with ldconfig's cache of the
# machine that linked it, owners found with dpkg -S). images/rootfs.sh installs
# them and their Depends; nothing else of the build machine goes into an image.
# Usage: images/runtime-packages.sh BINARY
set -euo pipefail
bin=${1:?usage: runtime-packages.sh BINARY}
[ -f "$bin" ] || { echo "runtime-packages: $bin: no such file" >&2; exit 1; }

owner() { # PATH -> package name without the architecture, or nothing
	dpkg -S "$1" 2>/dev/null | sed -n '1s/[:,].*//p'
}

case "$(dpkg --print-architecture)" in
amd64) abi=x86-64 ;;
arm64) abi=AArch64 ;;
*) echo "runtime-packages: architecture $(dpkg --print-architecture) not handled" >&2; exit 1 ;;
esac
cache=$(ldconfig -p)

readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | while read -r soname; do
	path=$(awk -v s="$soname" -v abi="$abi" '$1 == s && index($2, abi) { print $NF; exit }' <<<"$cache")
	[ -n "$path" ] || { echo "runtime-packages: $soname: not in ldconfig's cache" >&2; exit 1; }
	pkg=""
	for p in "$path" "/usr$path" "${path#/usr}" "$(readlink -f "$path")"; do
		pkg=$(owner "$p" || true)
		[ -n "$pkg" ] && break
	done
	[ -n "$pkg" ] || { echo "runtime-packages: $path ($soname): no Debian package owns it" >&2; exit 1; }
	echo "$pkg"
done | sort -u
