"""Go tools the tests check zerowire against (the real promtool, a real OTLP
collector), built once from their upstream Go modules by
e2e/peers/build-go-tool.sh and cached under ~/.cache/zerowire/bin."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(name, timeout=3000):
    """Returns the path of the cached binary of tool `name`, building it on
    first use (progress lines go to stderr). Returns (None, reason) when it
    cannot be built here."""
    script = os.path.join(ROOT, "e2e", "peers", "build-go-tool.sh")
    try:
        r = subprocess.run([script, name], stdout=subprocess.PIPE, stderr=sys.stderr,
                           timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        return None, "building %s took longer than %d s" % (name, timeout)
    path = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode != 0 or not os.access(path, os.X_OK):
        return None, "e2e/peers/build-go-tool.sh %s failed (exit %d): no Go toolchain or module proxy?" % (
            name, r.returncode)
    return path, None


def require(name):
    """build() for a pytest fixture: skips the test, saying why, when the tool
    cannot be built."""
    import pytest
    path, why = build(name)
    if not path:
        pytest.skip(why)
    return path
