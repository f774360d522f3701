# Sourced by the scripts that build Go programs from wrapper modules under
# e2e/peers/ (e2e/build-peers.sh, e2e/build-addon.sh, e2e/peers/build-go-tool.sh):
# one way to hash a wrapper, to check the Go toolchain and to run a build with
# progress lines. Each caller keeps its own cache layout and environment.
# Callers define log() (their own "name: message" line on stderr) first.

# zw_wrapper_hash DIR: first 10 hex of the sha256 of the wrapper's go.mod,
# go.sum and *.go files (sorted by path), so a changed wrapper builds afresh.
zw_wrapper_hash() {
	(cd "$1" && find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort | xargs cat |
		sha256sum | cut -c1-10)
}

# zw_require_go GO MIN_MINOR: fails with a message unless GO exists and is
# Go 1.MIN_MINOR or newer.
zw_require_go() {
	local go=$1 want=$2 gov minor
	command -v "$go" >/dev/null || { log "no Go toolchain ('$go' on PATH; ZW_GO names another)"; return 1; }
	gov=$("$go" env GOVERSION)
	minor=$(echo "$gov" | sed -nE 's/^go1\.([0-9]+).*/\1/p')
	if [ -z "$minor" ] || [ "$minor" -lt "$want" ]; then
		log "$go is $gov; this build needs Go >= 1.$want (set ZW_GO to one)"
		return 1
	fi
}

# zw_go_build WHAT WRAPDIR OUTDIR OUT PKG [go build flags...]: runs
# `nice -n 19 $GO build FLAGS -o OUTDIR/OUT PKG` in WRAPDIR in the background
# with a progress line every 15 s; the output in OUTDIR/OUT.log; on success
# appends "OUT WHAT <wall>s <cpu>cpu-s <bytes>B" to OUTDIR/build-times and
# moves the binary in place (never a half-written one). Returns 1 after
# printing the log's tail when the build fails. Needs GO set.
zw_go_build() {
	local what=$1 wrap=$2 dir=$3 out=$4 pkg=$5 start now next rc cpu size
	shift 5
	log "$what: compiling $out (modules in ${GOMODCACHE:-the default module cache})"
	start=$(date +%s)
	rm -f "$dir/$out.rc" "$dir/$out.cpu"
	# CPU seconds (user+sys of the go command and its compilers) are recorded
	# too: unlike wall time they hardly depend on other load.
	( set +e; cd "$wrap" || exit 1; TIMEFORMAT='%U %S'
	  { time nice -n 19 "$GO" build "$@" -o "$dir/$out.tmp" "$pkg" >"$dir/$out.log" 2>&1; } 2>"$dir/$out.cpu"
	  echo $? >"$dir/$out.rc" ) &
	next=$((start + 15))
	while ! [ -e "$dir/$out.rc" ]; do
		sleep 1
		now=$(date +%s)
		if [ "$now" -ge "$next" ] && ! [ -e "$dir/$out.rc" ]; then
			log "$what: still compiling $out, $((now - start))s elapsed"
			next=$((now + 15))
		fi
	done
	wait
	rc=$(cat "$dir/$out.rc"); rm -f "$dir/$out.rc"
	if [ "$rc" != 0 ]; then
		rm -f "$dir/$out.cpu" "$dir/$out.tmp"
		log "$what: building $out failed (exit $rc):"
		tail -40 "$dir/$out.log" >&2
		return 1
	fi
	mv "$dir/$out.tmp" "$dir/$out"
	cpu=$(awk '{printf "%d", $1 + $2}' "$dir/$out.cpu" 2>/dev/null || echo "?"); rm -f "$dir/$out.cpu"
	size=$(stat -c %s "$dir/$out")
	echo "$out $what $(($(date +%s) - start))s ${cpu}cpu-s ${size}B" >>"$dir/build-times"
	log "$what: $out built in $(($(date +%s) - start))s, ${cpu} CPU-s ($((size / 1048576)) MiB)"
}
