#!/usr/bin/env bash
# Smoke-runs the images images/build.sh made: `--version` must print what the
# binary printed before it went into the image, then each program serves on
# loopback as uid 65532 and answers:
#   proxy:   /healthz and /readyz on the admin port, 404 on the proxy port;
#   webhook: /healthz over TLS (GnuTLS in the image) and on the plain metrics
#            port, and an AdmissionReview on POST /mutate.
# Runner: `podman run --network=host` with the default OCI runtime (crun),
# else with runc; where neither starts a container, chroot into the image's
# root filesystem (build/images/NAME/rootfs) as 65532:65532 in private mount
# and PID namespaces. The runner used, and why, is printed.
# ZW_IMAGES_RUNNER=crun|runc|chroot skips the choice.
# Usage: images/smoke.sh [proxy|webhook ...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=${ZW_VERSION:-$(sed -n 's/^VERSION *:= *//p' Makefile)}
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(proxy webhook)
log() { echo "smoke: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

work=$(mktemp -d /tmp/zw-smoke.XXXXXX)
chmod 0755 "$work"
ctr=""
child=""
pid=""
cleanup() {
	stop cleanup
	rm -rf "$work"
}
trap cleanup EXIT

# crun and runc refuse to raise limits above the hard ones (no CAP_SYS_RESOURCE
# here) and podman asks for more by default: ask for the current open-files
# limit and at most 4096 processes.
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
ulimits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$nproc:$nproc")

# Picks the runner with the first image: podman (crun), podman (runc), chroot.
runner=${ZW_IMAGES_RUNNER:-}
case $runner in "" | crun | runc | chroot) ;; *) die "ZW_IMAGES_RUNNER=$runner: crun, runc or chroot" ;; esac
pick_runner() { # IMAGE
	local err=$work/probe.err
	if podman run --rm --network=none "${ulimits[@]}" "$1" --version >/dev/null 2>"$err"; then
		runner=crun
		return
	fi
	log "podman run (crun) cannot start a container here: $(tr '\n' ' ' <"$err")"
	if command -v runc >/dev/null &&
		podman --runtime runc run --rm --network=none "${ulimits[@]}" "$1" --version >/dev/null 2>"$err"; then
		runner=runc
		return
	fi
	command -v runc >/dev/null && log "podman run (runc) cannot either: $(tr '\n' ' ' <"$err")"
	runner=chroot
}

podman_cmd() {
	if [ "$runner" = runc ]; then echo "podman --runtime runc"; else echo podman; fi
}

# run_once NAME ARGS...: runs the image's entrypoint with ARGS, prints stdout.
run_once() {
	local name=$1
	shift
	case $runner in
	chroot)
		unshare --mount --pid --fork -- chroot --userspec=65532:65532 "$root/build/images/$name/rootfs" \
			"/usr/local/bin/zerowire-$name" "$@" ;;
	*) $(podman_cmd) run --rm --network=none "${ulimits[@]}" "localhost/zerowire-$name:$version" "$@" ;;
	esac
}

# start NAME MOUNTDIR ARGS...: starts the entrypoint in the background with
# MOUNTDIR visible at /smoke (chroot: at /tmp); sets pid (the program's host PID).
start() {
	local name=$1 dir=$2 rootfs=$root/build/images/$1/rootfs
	shift 2
	case $runner in
	chroot)
		unshare --mount --pid --fork --mount-proc="$rootfs/proc" -- sh -c '
			mount --bind "$1" "$0/tmp" && shift 2 && exec chroot --userspec=65532:65532 "$0" "$@"' \
			"$rootfs" "$dir" x "/usr/local/bin/zerowire-$name" "$@" >"$work/$name.log" 2>&1 &
		child=$!
		local i
		for i in $(seq 50); do
			pid=$(pgrep -P "$child" || true)
			[ -n "$pid" ] && break
			sleep 0.1
		done ;;
	*)
		ctr=zw-smoke-$name-$$
		$(podman_cmd) run -d --name "$ctr" --network=host "${ulimits[@]}" -v "$dir:/smoke:ro" \
			"localhost/zerowire-$name:$version" "$@" >/dev/null
		pid=$(podman inspect --format '{{.State.Pid}}' "$ctr") ;;
	esac
	[ -n "$pid" ] && [ "$pid" != 0 ] || die "$name did not start"
}

stop() { # NAME: stops the program started last, keeps its log
	if [ -n "$ctr" ]; then
		podman logs "$ctr" >"$work/$1.log" 2>&1 || true
		podman rm -f -t 2 "$ctr" >/dev/null 2>&1 || true
		ctr=""
	fi
	if [ -n "$child" ]; then
		# unshare does not pass signals on: end the program (PID 1 of its
		# namespace) itself, then unshare returns.
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
		child=""
	fi
	pid=""
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # URL [curl args]: 200 within 10 s
	local url=$1 i
	shift
	for i in $(seq 100); do
		if curl -fsS -o /dev/null --max-time 1 "$@" "$url" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

check_uid() { # NAME: the running program is uid/gid 65532 (real, effective, saved, fs)
	local uid gid
	uid=$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$pid/status")
	gid=$(awk '/^Gid:/ { print $2 $3 $4 $5 }' "/proc/$pid/status")
	[ "$uid" = 65532655326553265532 ] && [ "$gid" = 65532655326553265532 ] ||
		die "$1 runs as uid $uid gid $gid, not 65532"
}

smoke_proxy() {
	local p1 p2 p3 code
	p1=$(free_port) p2=$(free_port) p3=$(free_port)
	start proxy "$work" --listen "127.0.0.1:$p1" --admin-listen "127.0.0.1:$p2" \
		--scaler-listen "127.0.0.1:$p3" --workers 1 --shutdown-delay 0s \
		--static-endpoint default/none:80=127.0.0.1:9
	wait_http "http://127.0.0.1:$p2/healthz" || die "proxy /healthz did not answer 200 (log: $(cat "$work/proxy.log" 2>/dev/null))"
	wait_http "http://127.0.0.1:$p2/readyz" || die "proxy /readyz did not answer 200"
	code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Host: nothing.example' "http://127.0.0.1:$p1/")
	[ "$code" = 404 ] || die "proxy answered $code, not 404, for an unknown host"
	check_uid proxy
	stop proxy
	log "zerowire-proxy: /healthz, /readyz 200; unknown host 404; uid 65532"
}

smoke_webhook() {
	local p1 p2 body
	p1=$(free_port) p2=$(free_port)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
	chmod 0644 "$work/tls.key"
	local d=/smoke
	[ "$runner" = chroot ] && d=/tmp
	start webhook "$work" --no-kube --listen "127.0.0.1:$p1" --metrics-listen "127.0.0.1:$p2" \
		--tls-cert-file "$d/tls.crt" --tls-key-file "$d/tls.key"
	wait_http "https://127.0.0.1:$p1/healthz" --cacert "$work/tls.crt" ||
		die "webhook /healthz over TLS did not answer 200 (log: $(cat "$work/webhook.log" 2>/dev/null))"
	wait_http "http://127.0.0.1:$p2/healthz" || die "webhook plain /healthz did not answer 200"
	body='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"smoke-1",'
	body+='"kind":{"group":"","version":"v1","kind":"Service"},"resource":{"group":"","version":"v1","resource":"services"},'
	body+='"namespace":"default","name":"s","operation":"CREATE","object":{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"default"}}}}'
	curl -fsS --cacert "$work/tls.crt" -H 'Content-Type: application/json' --data "$body" \
		"https://127.0.0.1:$p1/mutate" | grep -q '"uid": *"smoke-1"' || die "webhook did not answer the AdmissionReview"
	check_uid webhook
	stop webhook
	log "zerowire-webhook: /healthz 200 over TLS and plain; AdmissionReview answered; uid 65532"
}

for name in "${names[@]}"; do
	image=localhost/zerowire-$name:$version
	[ -n "$runner" ] || pick_runner "$image"
	want=$("$root/build/images/obj/bin/zerowire-$name" --version)
	got=$(run_once "$name" --version)
	[ "$got" = "$want" ] || die "zerowire-$name --version in the image printed '$got', not '$want'"
	log "zerowire-$name --version (runner $runner): $got"
	"smoke_$name"
done
