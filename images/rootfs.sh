#!/usr/bin/env bash
# Assembles the root filesystem of one zerowire image. Runs inside a Debian
# root that has apt (the debootstrap base of images/build.sh, chrooted, or the
# `rootfs` stage of proxy/Dockerfile and webhook/Dockerfile), so both paths
# make the same tree:
#   - the runtime packages listed in PKGS_FILE (images/runtime-packages.sh),
#     installed here with apt, plus every package they Depend/Pre-Depend on;
#   - three data packages whose dependencies are not followed: base-files
#     (os-release), netbase (/etc/services, /etc/protocols) and
#     ca-certificates (its generated bundle /etc/ssl/certs/ca-certificates.crt;
#     openssl and debconf, which only generate it, stay out);
#   - the files of exactly those packages (no documentation but copyright
#     files), their dpkg status and file lists, so scanners and the SBOM see
#     them;
#   - /etc/passwd and /etc/group with root and nonroot (65532), /home/nonroot,
#     /tmp, and the binary as /usr/local/bin/NAME.
# No shell, package manager, compiler or coreutils goes in.
# Usage: rootfs.sh BINARY PKGS_FILE OUTDIR
set -euo pipefail
bin=${1:?usage: rootfs.sh BINARY PKGS_FILE OUTDIR}
pkgs_file=${2:?usage: rootfs.sh BINARY PKGS_FILE OUTDIR}
out=${3:?usage: rootfs.sh BINARY PKGS_FILE OUTDIR}
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

mapfile -t libs < <(grep -v '^[[:space:]]*$' "$pkgs_file")
[ "${#libs[@]}" -gt 0 ] || { echo "rootfs: $pkgs_file lists no package" >&2; exit 1; }
data=(base-files netbase ca-certificates)

installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }

missing=()
for p in "${libs[@]}" "${data[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
	apt-get -qq update
	apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# Dependency closure of the library packages (first installed alternative of
# each Depends/Pre-Depends group; version constraints and :any dropped).
declare -A seen=()
queue=("${libs[@]}")
while [ "${#queue[@]}" -gt 0 ]; do
	p=${queue[0]}
	queue=("${queue[@]:1}")
	[ -n "${seen[$p]:-}" ] && continue
	installed "$p" || { echo "rootfs: $p is not installed" >&2; exit 1; }
	seen[$p]=1
	deps=$(dpkg-query -W -f='${Pre-Depends}, ${Depends}' "$p")
	IFS=',' read -ra groups <<<"$deps"
	for g in "${groups[@]}"; do
		[ -n "${g//[[:space:]]/}" ] || continue
		IFS='|' read -ra alts <<<"$g"
		pick=""
		for a in "${alts[@]}"; do
			name=$(sed -e 's/([^)]*)//g' -e 's/:any//' -e 's/[[:space:]]//g' <<<"$a")
			if installed "$name"; then pick=$name; break; fi
		done
		[ -n "$pick" ] || { echo "rootfs: $p needs '$g', which is not installed" >&2; exit 1; }
		queue+=("$pick")
	done
done
mapfile -t all < <(printf '%s\n' "${!seen[@]}" "${data[@]}" | sort -u)

rm -rf "$out"
mkdir -p "$out"
# The merged-/usr links (/bin -> usr/bin, /lib -> usr/lib, ...) as in this root.
for d in bin sbin lib lib32 lib64 libx32; do
	if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$out/$d"; fi
done
mkdir -p "$out/usr/bin" "$out/usr/sbin" "$out/usr/lib" "$out/usr/lib64"

for p in "${all[@]}"; do dpkg-query -L "$p"; done | awk '
	!/^\// || $0 == "/." { next }
	/^\/usr\/share\/(man|info|locale|lintian|bug|doc-base)(\/|$)/ { next }
	/^\/usr\/share\/doc\/[^\/]+\/./ && !/^\/usr\/share\/doc\/[^\/]+\/copyright$/ { next }
	{ print substr($0, 2) }' | sort -u >"$out.files"
tar -C / --no-recursion -cf - -T "$out.files" | tar -C "$out" --keep-directory-symlink -xf -
rm -f "$out.files"
cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"

# dpkg's view of the image: status stanzas and file lists of what is in it.
mkdir -p "$out/var/lib/dpkg/info"
for p in "${all[@]}"; do
	dpkg-query -s "$p"
	echo
	arch=$(dpkg-query -W -f='${Architecture}' "$p")
	for ext in list md5sums; do
		for f in "/var/lib/dpkg/info/$p:$arch.$ext" "/var/lib/dpkg/info/$p.$ext"; do
			if [ -f "$f" ]; then cp "$f" "$out/var/lib/dpkg/info/"; break; fi
		done
	done
done >"$out/var/lib/dpkg/status"

# Users, writable places, the program.
mkdir -p "$out/etc" "$out/home/nonroot" "$out/tmp" "$out/proc" "$out/sys" "$out/dev" "$out/run"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n' >"$out/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$out/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$out/etc/nsswitch.conf"
chown 65532:65532 "$out/home/nonroot"
chmod 0700 "$out/home/nonroot"
chmod 1777 "$out/tmp"
install -D -m 0755 "$bin" "$out/usr/local/bin/$(basename "$bin")"
printf '%s\n' "${all[@]}" >"$out.packages"
