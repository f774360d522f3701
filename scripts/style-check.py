#!/usr/bin/env python3
"""zerowire style checker (make style, run by make check before the unit tests).

Checks, over the C files git tracks (generated and vendored code is not
tracked) and docs/*.md:
  1. banned calls: strcpy, strcat, sprintf, vsprintf, gets, atoi, atol (no
     bound, or no error report); EXEMPT below lists the test and benchmark
     files allowed to keep them, each with its reason;
  2. one NULL-comparison form: `!p` / `p`, never `== NULL`, `!= NULL`,
     `NULL ==` or `NULL !=`;
  3. a header comment (`/* ... */` saying what the file is) opening every
     .c and .h file;
  4. every docs/*.md ends with a "## Tests" section (a heading starting
     "## Tests") that names at least one test file of the repository (a
     path that exists).
Comments and string literals are ignored by checks 1 and 2. Prints one line
per finding (path:line: message) and exits 1 when there is any, else 0."""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

BANNED = ("strcpy", "strcat", "sprintf", "vsprintf", "gets", "atoi", "atol")

# File -> reason. Only test, fuzz and benchmark code; never a program's.
EXEMPT = {
    "bench/hold_client.c": "benchmark client: parses its own fixed-format replies and argv; "
                           "a bad value only spoils the benchmark run",
    "lib/tests/test_target.c": "unit test: builds inputs of known length in fixed buffers",
    "lib/tests/tool_kube.c": "test tool: argv comes from the test suite itself",
    "proxy/fuzz/fuzz_routes.c": "fuzz target: assembles bounded inputs into a buffer sized for the worst case",
    "proxy/tests/test_config.c": "unit test: fixed paths in a buffer sized for them",
    "proxy/tests/test_hold.c": "unit test: fixed specs in a buffer sized for them",
    "proxy/tests/test_http1.c": "unit test: fixed heads in a buffer sized for them",
}

BANNED_RE = re.compile(r"\b(%s)\s*\(" % "|".join(BANNED))
NULL_RE = re.compile(r"(==|!=)\s*NULL\b|\bNULL\s*(==|!=)")
TEST_PATH_RE = re.compile(r"[\w./-]+/(?:tests|fuzz)/[\w./-]+|e2e/[\w./-]+\.py|bench/[\w./-]+\.py")


def mask(src):
    """src with comments blanked and string/char literal contents replaced,
    newlines kept (line numbers stay right)."""
    out = list(src)
    i, n = 0, len(src)
    while i < n:
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif src[i] in "\"'":
            q, j = src[i], i + 1
            while j < n and src[j] != q and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                out[k] = "_"
            i = j + 1
        else:
            i += 1
    return "".join(out)


def tracked(patterns):
    r = subprocess.run(["git", "-C", ROOT, "ls-files", "--", *patterns], capture_output=True,
                       text=True, check=True)
    return [p for p in r.stdout.split() if os.path.exists(os.path.join(ROOT, p))]


def check_c(path, findings):
    with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
        src = f.read()
    if not src.lstrip().startswith("/*"):
        findings.append("%s:1: no header comment (/* what this file is */ first)" % path)
    m = mask(src)
    for no, line in enumerate(m.split("\n"), 1):
        b = BANNED_RE.search(line)
        if b and path not in EXEMPT:
            findings.append("%s:%d: %s() is banned (use the bounded/checked form)" % (path, no, b.group(1)))
        if NULL_RE.search(line):
            findings.append("%s:%d: compare with NULL as !p / p, not ==/!= NULL" % (path, no))


def check_doc(path, findings):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        text = f.read()
    heads = [(i, l) for i, l in enumerate(text.split("\n"), 1) if l.startswith("## ")]
    if not heads or not heads[-1][1].startswith("## Tests"):
        findings.append("%s:%d: the last section must be \"## Tests\"" % (path, heads[-1][0] if heads else 1))
        return
    section = text.split("\n")[heads[-1][0] - 1:]
    named = [p for p in TEST_PATH_RE.findall("\n".join(section))
             if os.path.exists(os.path.join(ROOT, p.rstrip(".,:;)`").split("::")[0]))]
    if not named:
        findings.append("%s:%d: \"## Tests\" names no existing test file" % (path, heads[-1][0]))


def main():
    findings = []
    for p in tracked(["*.c", "*.h"]):
        check_c(p, findings)
    for p in tracked(["docs/*.md"]):
        check_doc(p, findings)
    for p in EXEMPT:
        if not os.path.exists(os.path.join(ROOT, p)):
            findings.append("%s: listed in EXEMPT but missing (remove it from the script)" % p)
    for f in findings:
        print(f)
    if findings:
        print("style: %d finding(s)" % len(findings), file=sys.stderr)
        return 1
    print("style: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
