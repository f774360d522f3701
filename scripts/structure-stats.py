#!/usr/bin/env python3
"""Counts the structure figures of zerowire's C sources (docs/structure.md).

Usage:
  scripts/structure-stats.py [--top N] [--json] [--no-duplicates] [TREE ...]

TREE is a directory (a checkout) or a git revision of this repository
(exported to a temporary directory with `git archive`); with none, the
working tree. With two trees, the figures are printed side by side
(the first is "before").

What is counted, over the programs' sources (lib/, proxy/, webhook/: the .c
and .h files directly in them, not tests/ or fuzz/), comments left out:
  - functions: every function definition, its length from the line with its
    name to its closing brace (what `ctags --fields=+ne` reports), the ones
    longer than 100 lines and the N longest;
  - files: the N largest by lines;
  - duplicates: the pair counts of the `duplicates` tool (when it is
    installed) over the whole tree and over the programs' sources alone;
  - building blocks written again outside lib/'s own:
      list unlinks       `x->prev->next = ...` (a hand-written doubly linked
                         unlink) outside lib/list.h; apart, functions
                         removing from a singly linked chain through a
                         pointer to a link (`*pp = x->next...;`);
      hash functions     functions holding an FNV prime (1099511628211 or
                         16777619) outside lib/hash.c;
      host:port parsers  functions outside lib/addr.c that look for ':' and
                         turn digits into a number, and look for no '/' (so
                         "ns/svc:port" Service references are not counted);
      apiVersion splits  functions outside lib/apiversion.c that look for
                         '/' in, or compare a prefix of, an apiVersion;
      buffer types       structs with a char pointer and `len` and `cap`;
      growth sites       realloc() calls outside lib/buf.c.
Only counts: nothing is edited. Exit status 0, or 2 on a bad argument.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

DIRS = ("lib", "proxy", "webhook")
LONG = 100


def source_files(root):
    """The programs' .c/.h files below root, as sorted relative paths."""
    out = []
    for d in DIRS:
        full = os.path.join(root, d)
        if not os.path.isdir(full):
            continue
        for name in sorted(os.listdir(full)):
            if name.endswith((".c", ".h")) and os.path.isfile(os.path.join(full, name)):
                out.append(d + "/" + name)
    return out


def strip(text):
    """Returns (code, masked): comments blanked in both (newlines kept);
    in masked also string and character literals blanked, and preprocessor
    lines (with their continuations) blanked."""
    code, masked = [], []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank = re.sub(r"[^\n]", " ", text[i:j])
            code.append(blank)
            masked.append(blank)
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            code.append(" " * (j - i))
            masked.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            code.append(text[i:j])
            masked.append(c + " " * max(j - i - 2, 0) + (c if j - i >= 2 else ""))
            i = j
        else:
            code.append(c)
            masked.append(c)
            i += 1
    code, masked = "".join(code), "".join(masked)
    lines = masked.split("\n")
    cont = False
    for k, line in enumerate(lines):
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            lines[k] = " " * len(line)
    return code, "\n".join(lines)


IDENT_BEFORE_PAREN = re.compile(r"([A-Za-z_]\w*)\s*$")


def functions(path, text):
    """Function definitions of one file: list of dicts name, file, start,
    end (1-based lines), lines, body (comment-free code of the body)."""
    code, masked = strip(text)
    out = []
    depth = 0
    head_start = 0
    i = 0
    n = len(masked)
    while i < n:
        c = masked[i]
        if depth == 0 and c in ";}":
            head_start = i + 1
        elif c == "{":
            if depth == 0:
                head = masked[head_start:i]
                fn = function_head(head)
                close = matching(masked, i, 1)
                if close is None:
                    close = n - 1
                if fn is not None:
                    name_off = head_start + fn
                    start = masked.count("\n", 0, name_off) + 1
                    end = masked.count("\n", 0, close) + 1
                    out.append({
                        "name": head_name(head),
                        "file": path,
                        "start": start,
                        "end": end,
                        "lines": end - start + 1,
                        "body": code[i:close + 1],
                    })
                i = close + 1
                head_start = i
                continue
            depth += 1
        elif c == "}":
            depth -= 1
        i += 1
    return out


PAIRS = {"{": "}", "}": "{", "(": ")", ")": "("}


def matching(text, i, step):
    """Offset of the bracket matching the one at text[i], looking forward
    (step 1) or back (step -1); None when there is none."""
    opening, closing = text[i], PAIRS[text[i]]
    depth = 0
    while 0 <= i < len(text):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i
        i += step
    return None


def head_paren(head):
    """Offset in head of the '(' matching its final ')', or None."""
    h = head.rstrip()
    return matching(h, len(h) - 1, -1) if h.endswith(")") else None


def function_head(head):
    """Offset of the function's name in a top-level head ending before '{',
    or None when the head is not a function definition."""
    p = head_paren(head)
    if p is None:
        return None
    before = head[:p]
    if "=" in before or re.search(r"\b(struct|union|enum)\s*$", before):
        return None
    m = IDENT_BEFORE_PAREN.search(before)
    if not m or m.group(1) in ("if", "while", "for", "switch", "return", "sizeof"):
        return None
    return m.start(1)


def head_name(head):
    """The name of the function whose head (see function_head) is head."""
    p = head_paren(head)
    return IDENT_BEFORE_PAREN.search(head[:p]).group(1)


# ---- building blocks ------------------------------------------------------

DLIST_UNLINK = re.compile(r"->\s*prev\s*->\s*next\s*=")
SLIST_REMOVE = re.compile(r"^\s*\*\s*\w+\s*=\s*[\w.>()*\-\[\]]*->\s*next\w*\s*;", re.M)
FNV_PRIME = re.compile(r"\b(1099511628211|16777619)u?(ll|ull|l)?\b", re.I)
COLON_SEARCH = re.compile(r"\b(strchr|strrchr|memchr|memrchr)\s*\([^;]*?':'")
SLASH_SEARCH = re.compile(r"\b(strchr|strrchr|memchr|memrchr)\s*\([^;]*?'/'")
NUMBER = re.compile(r"\b(strtol|strtoul|strtoll|strtoull|atoi|atol|sscanf|parse_u64|parse_port)\s*\(")
AV = r"(?:\bav\b|api_?version|apiVersion|\bapi\b)"
ARG = r"((?:[^,;()]|\([^();]*\))*)"  # a first argument, calls one level deep
AV_SPLIT = re.compile(r"\b(?:strchr|strrchr|memchr)\s*\(" + ARG + r",\s*'/'\s*\)"
                      r"|\bstrncmp\s*\(" + ARG + r",")
STRUCT = re.compile(r"\bstruct\s+(\w+)\s*\{([^{}]*)\}", re.S)
REALLOC = re.compile(r"\brealloc\s*\(")


def count_tree(root, top):
    files = source_files(root)
    texts = {}
    for f in files:
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            texts[f] = fh.read()
    fns = []
    for f in files:
        if f.endswith(".c"):
            fns.extend(functions(f, texts[f]))
    fns.sort(key=lambda x: (-x["lines"], x["file"], x["name"]))
    sizes = sorted(((t.count("\n"), f) for f, t in texts.items()), key=lambda x: (-x[0], x[1]))

    blocks = {k: [] for k in ("list_unlinks", "slist_removals", "hash_functions",
                              "hostport_parsers", "apiversion_splitters", "buffer_types",
                              "growth_sites")}
    for f in files:
        code, _ = strip(texts[f])
        for k, line in enumerate(code.split("\n"), 1):
            if f != "lib/list.h" and DLIST_UNLINK.search(line):
                blocks["list_unlinks"].append("%s:%d" % (f, k))
            if f != "lib/buf.c" and REALLOC.search(line):
                blocks["growth_sites"].append("%s:%d" % (f, k))
        for m in STRUCT.finditer(code):
            body = m.group(2)
            if (re.search(r"\b(unsigned\s+)?char\s*\*|\buint8_t\s*\*", body)
                    and re.search(r"\blen\b", body) and re.search(r"\bcap\b", body)):
                blocks["buffer_types"].append("%s (%s)" % (m.group(1), f))
    for fn in fns:
        where = "%s (%s)" % (fn["name"], fn["file"])
        body = fn["body"]
        if SLIST_REMOVE.search(body) and not DLIST_UNLINK.search(body):
            blocks["slist_removals"].append(where)
        if fn["file"] != "lib/hash.c" and FNV_PRIME.search(body):
            blocks["hash_functions"].append(where)
        if (fn["file"] != "lib/addr.c" and COLON_SEARCH.search(body) and NUMBER.search(body)
                and not SLASH_SEARCH.search(body)):
            blocks["hostport_parsers"].append(where)
        if fn["file"] != "lib/apiversion.c" and any(
                re.search(AV, m.group(1) or m.group(2) or "") for m in AV_SPLIT.finditer(body)):
            blocks["apiversion_splitters"].append(where)
    for v in blocks.values():
        v.sort()

    return {
        "root": root,
        "source_files": len(files),
        "source_lines": sum(t.count("\n") for t in texts.values()),
        "functions": len(fns),
        "functions_over_100": [strip_fn(x) for x in fns if x["lines"] > LONG],
        "longest": [strip_fn(x) for x in fns[:top]],
        "largest_files": [{"file": f, "lines": n} for n, f in sizes[:top]],
        "blocks": blocks,
    }


def strip_fn(fn):
    return {"name": fn["name"], "file": fn["file"], "lines": fn["lines"]}


DUP_HEAD = re.compile(r"^(\d+) pairs? of places .*?(?:\((\d+) by shape alone(?:, (\d+) of those "
                      r"marked boilerplate)?\))?$|^no duplicates")


def run_duplicates(tool, root):
    """Pair counts of `duplicates` over root: dict pairs, shape (alike but
    for names and values), boilerplate (thin shape pairs), complete."""
    r = subprocess.run([tool, "--repo", root, "--seconds", "300"], capture_output=True, text=True,
                       check=False)
    lines = r.stdout.splitlines()
    m = DUP_HEAD.match(lines[0]) if lines else None
    if not m:
        return None
    return {"pairs": int(m.group(1) or 0), "shape": int(m.group(2) or 0),
            "boilerplate": int(m.group(3) or 0),
            "complete": not any(l.startswith("incomplete:") for l in lines)}


def duplicates(root, files):
    """`duplicates` over the whole tree and over the programs' sources alone
    (files copied into a scratch directory); None without the tool."""
    tool = shutil.which("duplicates")
    if not tool:
        return None
    out = {"tree": run_duplicates(tool, root)}
    with tempfile.TemporaryDirectory(prefix="zw-structure-src-") as tmp:
        for f in files:
            os.makedirs(os.path.join(tmp, os.path.dirname(f)), exist_ok=True)
            shutil.copyfile(os.path.join(root, f), os.path.join(tmp, f))
        out["sources"] = run_duplicates(tool, tmp)
    return out


def export(rev, repo):
    """Exports rev of repo into a new temporary directory; returns it."""
    tmp = tempfile.mkdtemp(prefix="zw-structure-")
    archive = subprocess.run(["git", "-C", repo, "archive", "--format=tar", rev],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        shutil.rmtree(tmp)
        print("structure-stats: %s: %s" % (rev, archive.stderr.decode().strip()), file=sys.stderr)
        sys.exit(2)
    with tempfile.TemporaryFile() as fh:
        fh.write(archive.stdout)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
    return tmp


def label(spec, repo):
    if os.path.isdir(spec):
        return spec
    r = subprocess.run(["git", "-C", repo, "rev-parse", "--short", spec],
                       capture_output=True, text=True, check=False)
    return r.stdout.strip() or spec


def dup_figure(r, where, key):
    d = r["dup"] and r["dup"][where]
    if not d:
        return "n/a"
    return str(d[key]) + ("" if d["complete"] else " (incomplete)")


def fmt_fns(rows):
    return ["%s (%s) %d" % (r["name"], r["file"], r["lines"]) for r in rows]


def print_markdown(results, labels, top):
    keys = [("source files (lib/, proxy/, webhook/)", lambda r: r["source_files"]),
            ("source lines", lambda r: r["source_lines"]),
            ("functions", lambda r: r["functions"]),
            ("functions over %d lines" % LONG, lambda r: len(r["functions_over_100"])),
            ("longest function (lines)", lambda r: r["longest"][0]["lines"] if r["longest"] else 0),
            ("largest file (lines)", lambda r: r["largest_files"][0]["lines"])]
    for k, title in (("list_unlinks", "hand-written doubly linked unlinks"),
                     ("slist_removals", "functions unlinking through `*pp = x->next`"),
                     ("hash_functions", "hash functions outside lib/hash.c"),
                     ("hostport_parsers", "host:port parsers outside lib/addr.c"),
                     ("apiversion_splitters", "apiVersion splitters outside lib/apiversion.c"),
                     ("buffer_types", "byte buffer types"),
                     ("growth_sites", "realloc() growth sites outside lib/buf.c")):
        keys.append((title, lambda r, k=k: len(r["blocks"][k])))
    for where, title in (("tree", "whole tree"), ("sources", "lib/, proxy/, webhook/ alone")):
        for k, what in (("pairs", "pairs"), ("shape", "of those alike only by shape"),
                        ("boilerplate", "of those boilerplate")):
            keys.append(("`duplicates`, %s: %s" % (title, what),
                         lambda r, w=where, k=k: dup_figure(r, w, k)))
    print("| figure | " + " | ".join(labels) + " |")
    print("| --- |" + " ---: |" * len(labels))
    for title, get in keys:
        print("| %s | %s |" % (title, " | ".join(str(get(r)) for r in results)))
    print()
    for what, get in (("The %d longest functions" % top, lambda r: fmt_fns(r["longest"])),
                      ("The %d largest files" % top,
                       lambda r: ["%s %d" % (x["file"], x["lines"]) for x in r["largest_files"]])):
        print("%s:\n" % what)
        print("| # | " + " | ".join(labels) + " |")
        print("| ---: |" + " --- |" * len(labels))
        cols = [get(r) for r in results]
        for i in range(max(len(c) for c in cols)):
            print("| %d | %s |" % (i + 1, " | ".join(c[i] if i < len(c) else "" for c in cols)))
        print()
    for r, lab in zip(results, labels):
        print("Where, in %s:\n" % lab)
        print("- functions over %d lines: %s" % (LONG, ", ".join(fmt_fns(r["functions_over_100"]))
                                                 or "none"))
        for k, v in r["blocks"].items():
            print("- %s: %s" % (k, ", ".join(v) or "none"))
        print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trees", nargs="*", help="directories or git revisions")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    ap.add_argument("--no-duplicates", action="store_true", help="skip the duplicates tool")
    args = ap.parse_args()
    if args.top < 1:
        ap.error("--top wants a positive number")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    specs = args.trees or [repo]
    results, labels, tmps = [], [], []
    try:
        for spec in specs:
            root = spec if os.path.isdir(spec) else export(spec, repo)
            if root != spec:
                tmps.append(root)
            r = count_tree(root, args.top)
            r["dup"] = None if args.no_duplicates else duplicates(root, source_files(root))
            r["root"] = label(spec, repo)
            results.append(r)
            labels.append(r["root"])
    finally:
        for t in tmps:
            shutil.rmtree(t, ignore_errors=True)
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        print()
    else:
        print_markdown(results, labels, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
