"""Names unique per program: no global symbol is defined by both the webhook and
the proxy (their libraries and main objects, sanitizer build), and no header
name is used by both directories, so that a reader (and a debugger) always knows
which program a zw_ name belongs to."""

import glob
import os
import subprocess

ROOT = os.environ.get("ZW_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build", "san")


def defined(*paths):
    out = subprocess.run(["nm", "-g", "--defined-only", *paths], capture_output=True, text=True,
                         check=True).stdout
    return {f[2] for f in (line.split() for line in out.splitlines()) if len(f) == 3}


def test_no_symbol_defined_by_both_programs():
    files = {p: [os.path.join(BUILD, "lib%s.a" % p), os.path.join(BUILD, p, "main.o")]
             for p in ("webhook", "proxy")}
    for paths in files.values():
        for f in paths:
            assert os.path.exists(f), "%s missing: make SAN=1 tools" % f
    webhook, proxy = defined(*files["webhook"]), defined(*files["proxy"])
    assert len(webhook) > 50 and len(proxy) > 50, (len(webhook), len(proxy))
    assert webhook & proxy == {"main"}, sorted(webhook & proxy)


def test_no_header_name_in_both_programs():
    names = {d: {os.path.basename(h) for h in glob.glob(os.path.join(ROOT, d, "*.h"))}
             for d in ("webhook", "proxy")}
    assert names["webhook"] and names["proxy"]
    assert not names["webhook"] & names["proxy"], sorted(names["webhook"] & names["proxy"])
