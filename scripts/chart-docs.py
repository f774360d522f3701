#!/usr/bin/python3
"""Generates charts/zerowire/README.md with helm-docs (built from its Go module by
e2e/peers/build-go-tool.sh) from Chart.yaml, values.yaml and values.schema.json.

helm-docs takes a value's description from a `# --` comment above it in values.yaml;
zerowire describes every value in values.schema.json (the schema is closed), so this
script hands helm-docs a copy of values.yaml with each leaf's schema description added
as its `# --` comment (a `# --` comment already in values.yaml wins), and renders
charts/zerowire/README.md.gotmpl.

Usage: scripts/chart-docs.py            rewrite charts/zerowire/README.md
       scripts/chart-docs.py --check    exit 1 (with a diff) when it is stale"""
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CHART = os.path.join(ROOT, "charts", "zerowire")
README = os.path.join(CHART, "README.md")
KEY = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):(\s*)(.*)$")


def schema_node(schema, path):
    node = schema
    for k in path:
        node = (node.get("properties") or {}).get(k)
        if node is None:
            return None
    return node


def annotate(values_text, schema):
    """values.yaml with `# -- <schema description>` above every key whose value is on
    its own line (a scalar, a flow list or map, or an empty one)."""
    out, stack = [], []  # stack: [(indent, key)]
    prev_comment_is_doc = False
    for line in values_text.splitlines():
        m = KEY.match(line)
        if not m or line.lstrip().startswith("#"):
            prev_comment_is_doc = line.strip().startswith("# --") or (prev_comment_is_doc and
                                                                     line.strip().startswith("#"))
            out.append(line)
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k in stack] + [m.group(2)]
        rest = m.group(4).split(" #")[0].strip()
        node = schema_node(schema, path)
        free_form = node is not None and "properties" not in node
        inside_free_form = any(schema_node(schema, path[:i]) is not None and
                               "properties" not in schema_node(schema, path[:i]) for i in range(1, len(path)))
        if (rest or free_form) and not inside_free_form and not prev_comment_is_doc:
            desc = (node or {}).get("description")
            if not desc:
                raise SystemExit("chart-docs: %s has no description in values.schema.json" % ".".join(path))
            # A flag in backticks: helm-docs reads "<space>--" as its own separator.
            desc = re.sub(r"(?<![`\w])--([\w-]+)", r"`--\1`", " ".join(desc.split()))
            out.append("%s# -- %s" % (m.group(1), desc))
        if not rest:
            stack.append((indent, m.group(2)))
        prev_comment_is_doc = False
        out.append(line)
    return "\n".join(out) + "\n"


def helm_docs():
    r = subprocess.run([os.path.join(ROOT, "e2e", "peers", "build-go-tool.sh"), "helm-docs"],
                       stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit("chart-docs: could not build helm-docs (see above)")
    return r.stdout.strip()


def generate(tool):
    with open(os.path.join(CHART, "values.yaml")) as f:
        values = f.read()
    with open(os.path.join(CHART, "values.schema.json")) as f:
        schema = json.load(f)
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "build") if os.path.isdir(
            os.path.join(ROOT, "build")) else None) as tmp:
        annotated = os.path.join(tmp, "values.yaml")
        with open(annotated, "w") as f:
            f.write(annotate(values, schema))
        out = os.path.join(tmp, "README.md")
        subprocess.run([tool, "--chart-search-root", CHART, "--values-file", os.path.relpath(annotated, CHART),
                        "--output-file", os.path.relpath(out, CHART), "--template-files", "README.md.gotmpl",
                        "--sort-values-order", "file", "--log-level", "warning"],
                       check=True, cwd=ROOT)
        with open(out) as f:
            return f.read()


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] not in ([], ["--check"]):
        raise SystemExit(__doc__)
    text = generate(helm_docs())
    if not check:
        with open(README, "w") as f:
            f.write(text)
        print("chart-docs: wrote %s" % os.path.relpath(README, ROOT))
        return 0
    with open(README) as f:
        current = f.read()
    if current == text:
        print("chart-docs: %s is current" % os.path.relpath(README, ROOT))
        return 0
    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                               "committed/README.md", "generated/README.md"))
    print("chart-docs: %s is stale: run scripts/chart-docs.py and commit it" % os.path.relpath(README, ROOT))
    return 1


if __name__ == "__main__":
    sys.exit(main())
