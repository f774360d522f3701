#!/usr/bin/env bash
# Builds kube-apiserver 1.20.2 from Debian's `kubernetes` source package with
# Debian's Go, once, and caches the binary outside the work tree.
# Prints the path of the cached binary on stdout.
set -euo pipefail

CACHE="${ZW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zerowire}"
# -p2: with the validation patch below (a binary cached before it rejects "" in
# CRD string fields, so it gets a new name and is rebuilt once).
BIN="$CACHE/kube-apiserver-1.20.2-p2"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

SRC_LIST=/etc/apt/sources.list.d/zerowire-src.sources
if ! apt-get indextargets 2>/dev/null | grep -q 'Created-By: Sources'; then
	echo "build-apiserver: enabling deb-src for Debian's suites" >&2
	# The same mirror the machine's binary sources use (never named here).
	# (sources.list may not exist: grep's status 2 must not end the script.)
	uri=$({ grep -shoE '^(URIs:|deb) +[a-z]+://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list || true; } \
		| awk '{print $2}' | { grep -v security || true; } | head -1)
	[ -n "$uri" ] || { echo "build-apiserver: no Debian mirror found in apt sources" >&2; exit 1; }
	as_root sh -c "cat > $SRC_LIST" <<SRC
Types: deb-src
URIs: $uri
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	as_root apt-get update -qq
fi

WORK="$CACHE/build"
rm -rf "$WORK"; mkdir -p "$WORK"; cd "$WORK"
echo "build-apiserver: downloading Debian source package kubernetes" >&2
apt-get source --download-only kubernetes >/dev/null 2>&1
orig=$(ls kubernetes_*.orig.tar.* | head -1)
echo "build-apiserver: unpacking $orig" >&2
mkdir src && tar -xf "$orig" -C src --strip-components=1
cd src
R2=/usr/share/gocode/src/github.com/modern-go/reflect2
[ -d "$R2" ] || { echo "build-apiserver: $R2 missing (golang-github-modern-go-reflect2-dev)" >&2; exit 1; }
rm -rf vendor/github.com/modern-go/reflect2
cp -r "$R2" vendor/github.com/modern-go/reflect2
# The OpenAPI type check (kube-openapi's fork of go-openapi/validate, used for
# CRD validation) treats any value DeepEqual to its type's reflect.Zero as null;
# with Go >= 1.19 reflect.Zero and ValueOf("") share one zero buffer, so every
# "" in a typed CRD string field fails with `must be of type string: "null"`.
# Upstream later reduced the check to nil; do the same in both copies.
for f in vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go vendor/github.com/go-openapi/validate/type.go; do
	sed -i 's/if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {/if data == nil {/' "$f"
	if grep -q 'reflect.DeepEqual(reflect.Zero(reflect.TypeOf' "$f"; then
		echo "build-apiserver: validation patch did not apply to $f" >&2; exit 1
	fi
done
mkdir -p .go/src/k8s.io
ln -sfn ../../.. .go/src/k8s.io/kubernetes
# The 1.20 tree needs Debian's Go 1.19 (golang-go), not a newer Go earlier on PATH.
GO119=/usr/lib/go-1.19/bin
[ -x "$GO119/go" ] || { echo "build-apiserver: $GO119/go missing (golang-1.19-go)" >&2; exit 1; }
export PATH="$GO119:$PATH"
export GOPATH="$PWD/.go" GO111MODULE=off GOTOOLCHAIN=local CGO_ENABLED=0 GOCACHE="$CACHE/gocache"
export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
cd .go/src/k8s.io/kubernetes
echo "build-apiserver: compiling kube-apiserver (about 7 minutes on 2 cores)" >&2
start=$(date +%s)
( make WHAT=cmd/kube-apiserver >"$WORK/make.log" 2>&1; echo $? >"$WORK/make.rc" ) &
pid=$!
while kill -0 $pid 2>/dev/null; do
	sleep 15
	echo "build-apiserver: still compiling, $(( $(date +%s) - start ))s elapsed" >&2
done
if [ "$(cat "$WORK/make.rc")" != 0 ]; then tail -40 "$WORK/make.log" >&2; exit 1; fi
out=$(find _output -type f -name kube-apiserver | head -1)
cp "$out" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
cd "$CACHE" && rm -rf "$WORK"
echo "build-apiserver: done in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
