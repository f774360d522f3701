#!/usr/bin/env bash
# Builds the zerowire-proxy and zerowire-webhook images without a Docker
# daemon or a container registry, writes an SPDX SBOM for each and smoke-runs
# them (README "Images"). Run from the repository root (or `make images`):
#   images/build.sh [proxy|webhook ...]        (default: both)
# Steps, per image:
#   1. base: a Debian minbase root made with debootstrap from the mirror this
#      machine's apt uses (apt-get indextargets), cached in
#      ${ZW_CACHE_DIR:-~/.cache/zerowire}/images/ and reused;
#   2. root filesystem: images/rootfs.sh run chrooted in the base, given the
#      binary (a clean build in build/images/obj) and its runtime packages
#      (images/runtime-packages.sh) -> build/images/NAME/rootfs;
#   3. image: `podman build` FROM scratch with the OCI labels, user 65532 and
#      the entrypoint -> localhost/zerowire-NAME:VERSION, saved as an OCI
#      archive build/images/zerowire-NAME.oci.tar (podman load / skopeo copy);
#   4. SBOM: images/sbom.py over the root filesystem's dpkg status ->
#      build/images/zerowire-NAME.spdx.json;
#   5. smoke run: `podman run` (crun, else runc) or, where no OCI runtime
#      starts, chroot into the root filesystem as 65532.
# Steps 1-4 are skipped while the binary and these scripts are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build/images
cache=${ZW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zerowire}/images
version=${ZW_VERSION:-$(sed -n 's/^VERSION *:= *//p' Makefile)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# Uncommitted changes to tracked files: the revision label says so.
changes=$(git diff HEAD -- . 2>/dev/null | sha256sum | cut -c1-64)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit=$commit-dirty
# Reproducible timestamps: the commit's time.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
source_url=https://github.com/zerowire/zerowire
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(proxy webhook)

log() { echo "images: $*" >&2; }
die() { log "$*"; exit 1; }

for n in "${names[@]}"; do
	case $n in proxy | webhook) ;; *) die "unknown image '$n' (proxy, webhook)" ;; esac
done
for tool in debootstrap podman python3 readelf curl openssl; do
	command -v "$tool" >/dev/null || die "$tool is missing (make setup installs it)"
done
[ "$(id -u)" = 0 ] || die "debootstrap and chroot need root"

mkdir -p "$out" "$cache"
exec 9>"$cache/.lock"
flock 9

# --- 1. base -----------------------------------------------------------------
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
base=$cache/debian-$suite-minbase
# Debian's own sources of this machine (suite, -updates, -security), nothing else.
sources() {
	apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
		awk -v s="$suite" '$2 == s || $2 == s "-updates" || $2 == s "-security"' | sort -u
}
in_base() { # CMD...: run chrooted in the base, /proc and /dev mounted in a private mount namespace
	cp /etc/resolv.conf "$base/etc/resolv.conf"
	unshare --mount --fork -- sh -c 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" &&
		exec chroot "$0" "$@"' "$base" "$@"
}
if [ ! -f "$base/.zw-complete" ]; then
	mirror=$(sources | awk -v s="$suite" '$2 == s { print $1; exit }')
	[ -n "$mirror" ] || die "no Debian $suite source in apt's configuration"
	log "debootstrap --variant=minbase $suite from $mirror (once; cached in $base)"
	rm -rf "$base" "$base.tmp"
	nice -n 19 debootstrap --variant=minbase "$suite" "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $cache/debootstrap.log"
	sources | awk '{ print "deb " $1 " " $2 " " $3 }' >"$base.tmp/etc/apt/sources.list"
	mv "$base.tmp" "$base"
	date -u +%FT%TZ >"$base/.zw-complete"
fi

# --- the programs: a clean release build of this revision ----------------------
# make's own objects (build/rel) would keep an older commit in --version, so the
# images get their own build tree, started afresh whenever HEAD or the
# uncommitted changes differ from the last build.
obj=$out/obj
stamp="$commit $changes"
if [ "$(cat "$obj/stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$obj"
	log "clean build of $commit in $obj"
fi
mkdir -p "$obj"
nice -n 19 make -s -j2 BUILD="$obj/build" BINDIR="$obj/bin" "${names[@]/#/$obj/bin/zerowire-}" >"$obj/make.log" 2>&1 ||
	die "build failed, see $obj/make.log"
echo "$stamp" >"$obj/stamp"

recipe_hash() {
	cat images/build.sh images/rootfs.sh images/runtime-packages.sh images/sbom.py "$base/.zw-complete" | sha256sum | cut -c1-64
}

# --- 2-4. per image ----------------------------------------------------------
build_image() {
	local name=$1 prog=zerowire-$1 dir=$out/$1
	local bin=$obj/bin/$prog image=localhost/zerowire-$1
	mkdir -p "$dir"
	images/runtime-packages.sh "$bin" >"$dir/runtime-packages.txt"
	local key
	key=$( (sha256sum <"$bin" && cat "$dir/runtime-packages.txt" && recipe_hash && echo "$commit") |
		sha256sum | cut -c1-64)
	# Kept while the key matches and the tag still names the image made for it.
	if [ -f "$dir/key" ] && [ "$(cat "$dir/key")" = "$key" ] && [ -f "$out/$prog.oci.tar" ] &&
		[ -f "$out/$prog.spdx.json" ] &&
		[ "$(podman image inspect --format '{{.Id}}' "$image:$version" 2>/dev/null)" = "$(cat "$dir/image-id" 2>/dev/null)" ]; then
		log "$prog: unchanged, image $image:$version kept"
		return
	fi
	rm -f "$dir/key"
	local t0=$SECONDS old
	old=$(podman image inspect --format '{{.Id}}' "$image:$version" 2>/dev/null || true)
	# Root filesystem, assembled inside the base.
	local stage=$base/tmp/zw-$name
	rm -rf "$stage" "$dir/rootfs"
	mkdir -p "$stage"
	cp "$bin" "$dir/runtime-packages.txt" images/rootfs.sh "$stage/"
	in_base bash "/tmp/zw-$name/rootfs.sh" "/tmp/zw-$name/$prog" "/tmp/zw-$name/runtime-packages.txt" "/tmp/zw-$name/rootfs"
	mv "$stage/rootfs" "$dir/rootfs"
	mv "$stage/rootfs.packages" "$dir/packages.txt"
	rm -rf "$stage"

	# Every shared object the binary loads, transitively, is in the tree.
	check_needed "$dir/rootfs" "usr/local/bin/$prog"

	local description ports
	case $name in
	proxy)
		description="zerowire HTTP scale-to-zero proxy: holds requests while a workload wakes from zero, serves KEDA's external-push scaler"
		ports="8080 9090 9091" ;;
	webhook)
		description="zerowire mutating admission webhook: wires routes of scaled workloads to the zerowire proxy"
		ports="8443" ;;
	esac
	cat >"$dir/Containerfile" <<-EOF
		# Generated by images/build.sh; proxy/Dockerfile and webhook/Dockerfile build the same.
		FROM scratch
		ADD layer.tar /
		LABEL org.opencontainers.image.title="$prog" \\
		      org.opencontainers.image.description="$description" \\
		      org.opencontainers.image.source="$source_url" \\
		      org.opencontainers.image.version="$version" \\
		      org.opencontainers.image.revision="$commit" \\
		      org.opencontainers.image.licenses="Apache-2.0"
		USER 65532:65532
		EXPOSE $ports
		ENTRYPOINT ["/usr/local/bin/$prog"]
	EOF
	# One reproducible layer (sorted, the commit's time, numeric owners: ADD keeps
	# them, so /home/nonroot stays 65532's).
	tar -C "$dir/rootfs" --sort=name --mtime="@$epoch" --numeric-owner \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf "$dir/layer.tar" .
	printf 'rootfs\n' >"$dir/.containerignore"
	podman build -q --timestamp "$epoch" -f "$dir/Containerfile" -t "$image:$version" -t "$image:${commit:0:12}" "$dir" >/dev/null
	rm -f "$out/$prog.oci.tar"
	podman save -q --format oci-archive -o "$out/$prog.oci.tar" "$image:$version"

	local digest
	# The digest of the manifest in the OCI archive (what podman load and
	# skopeo copy read), not podman's own copy of it.
	digest=$(tar -xOf "$out/$prog.oci.tar" index.json |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
	python3 images/sbom.py --rootfs "$dir/rootfs" --name "$prog" --version "$version" --digest "$digest" \
		--revision "$commit" --source "$source_url" --created "$epoch" \
		--direct "$dir/runtime-packages.txt" --out "$out/$prog.spdx.json"

	local size gz npkg
	size=$(podman image inspect --format '{{.Size}}' "$image:$version")
	gz=$(gzip -6n <"$dir/layer.tar" | wc -c)
	rm -f "$dir/layer.tar"
	npkg=$(wc -l <"$dir/packages.txt")
	# The image this one replaces (and its commit tag) goes.
	if [ -n "$old" ] && [ "$old" != "$(podman image inspect --format '{{.Id}}' "$image:$version")" ]; then
		podman rmi -f "$old" >/dev/null 2>&1 || true
	fi
	printf '%s size=%s gzip=%s packages=%s\n' "$prog" "$size" "$gz" "$npkg" >"$dir/size.txt"
	podman image inspect --format '{{.Id}}' "$image:$version" >"$dir/image-id"
	echo "$key" >"$dir/key"
	log "$prog: built in $((SECONDS - t0)) s"
}

check_needed() { # ROOTFS ELF: every NEEDED entry, transitively, resolves inside ROOTFS
	local rootfs=$1 todo=("$2") seen=" " f lib found d
	while [ "${#todo[@]}" -gt 0 ]; do
		f=${todo[0]}
		todo=("${todo[@]:1}")
		for lib in $(readelf -d "$rootfs/$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
			case $seen in *" $lib "*) continue ;; esac
			seen="$seen$lib "
			found=""
			for d in usr/lib/x86_64-linux-gnu usr/lib/aarch64-linux-gnu usr/lib usr/lib64; do
				if [ -e "$rootfs/$d/$lib" ]; then found=$d/$lib; break; fi
			done
			[ -n "$found" ] || die "$f needs $lib, which is not in $rootfs"
			todo+=("$found")
		done
	done
}

for n in "${names[@]}"; do build_image "$n"; done
exec 9>&-

# --- 5. smoke ----------------------------------------------------------------
images/smoke.sh "${names[@]}"
for n in "${names[@]}"; do cat "$out/$n/size.txt"; done
