"""Tests of scripts/structure-stats.py (docs/structure.md) and the guard it
gives lib/'s building blocks: its counting rules on a small tree written
here, its function lengths against ctags on this checkout, and no new copy
of a hash function, a host:port parser, a list unlink or an apiVersion
splitter outside lib/ in this checkout."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.environ.get("ZW_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "structure-stats.py")

# What is still written by hand (docs/structure.md says where and why); the
# guard lets these numbers shrink, never grow.
LEFT = {"list_unlinks": 1, "apiversion_splitters": 1, "hash_functions": 0, "hostport_parsers": 0}


def stats(tree, *extra):
    r = subprocess.run([sys.executable, SCRIPT, "--json", "--no-duplicates", *extra, tree],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)[0]


def write(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        f.write(text)


def long_function(name, lines):
    """A function definition of exactly `lines` lines, name line to brace."""
    body = "".join("\tx += %d; /* { not a brace */\n" % i for i in range(lines - 4))
    return "static int %s(int x)\n{\n%s\treturn x;\n}\n" % (name, body)


def test_counting_rules_on_a_small_tree(tmp_path):
    root = str(tmp_path)
    a_c = "/* a */\n#define OPEN {\n" + long_function("big", 101) + long_function("edge", 100) + r'''
struct node { struct node *prev, *next; };
struct bytes { char *data; size_t len, cap; };
struct items { int *v; size_t len, cap; };
static const char *brace = "{ } /* ( ) */";

static void unlink_by_hand(struct node **head, struct node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		*head = n->next;
}

static void drop(struct node **pp)
{
	*pp = (*pp)->next;
}

static unsigned long fnv(const char *s)
{
	unsigned long h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int listen_addr(const char *s, int *port)
{
	const char *colon = strrchr(s, ':');
	*port = colon ? (int)strtol(colon + 1, NULL, 10) : 0;
	return 0;
}

static int service_ref(const char *s, long *port)
{
	const char *slash = strchr(s, '/');
	const char *colon = strchr(s, ':');
	*port = strtol(colon + 1, NULL, 10);
	return slash ? 0 : -1;
}

static int group_of(const json_t *o, const char *av)
{
	if (strncmp(jstr(o, "apiVersion"), "http.keda.sh/", 13) == 0)
		return 1;
	return strchr(av, '/') != NULL;
}

static void *grow(void *p, size_t n)
{
	return realloc(p, n);
}
'''
    write(root, "proxy/a.c", a_c)
    # lib/'s own building blocks are not copies of themselves.
    write(root, "lib/list.h", "#define U(n) (n)->prev->next = (n)->next\n")
    write(root, "lib/hash.c", "unsigned long h(unsigned long x)\n{\n\treturn x * 1099511628211ull;\n}\n")
    write(root, "lib/buf.c", "void *g(void *p)\n{\n\treturn realloc(p, 1);\n}\n")
    # Tests and fuzzers are not counted.
    write(root, "proxy/tests/test_a.c", long_function("test_big", 300))
    r = stats(root)
    assert [(f["name"], f["lines"]) for f in r["functions_over_100"]] == [("big", 101)]
    assert r["longest"][1] == {"name": "edge", "file": "proxy/a.c", "lines": 100}
    assert r["functions"] == 11
    b = r["blocks"]
    unlink_line = a_c.split("\n").index("\t\tn->prev->next = n->next;") + 1
    assert b["list_unlinks"] == ["proxy/a.c:%d" % unlink_line]
    assert b["slist_removals"] == ["drop (proxy/a.c)"]
    assert b["hash_functions"] == ["fnv (proxy/a.c)"]
    assert b["hostport_parsers"] == ["listen_addr (proxy/a.c)"]
    assert b["apiversion_splitters"] == ["group_of (proxy/a.c)"]
    assert b["buffer_types"] == ["bytes (proxy/a.c)"]
    assert len(b["growth_sites"]) == 1 and b["growth_sites"][0].startswith("proxy/a.c:")
    assert r["largest_files"][0]["file"] == "proxy/a.c"


def test_function_lengths_match_ctags():
    ctags = shutil.which("ctags")
    if not ctags or b"Universal Ctags" not in subprocess.run(
            [ctags, "--version"], capture_output=True, check=False).stdout:
        pytest.skip("Universal Ctags is not installed: no second opinion on function lengths")
    r = stats(ROOT, "--top", "100000")
    files = sorted({f["file"] for f in r["longest"]})
    out = subprocess.run([ctags, "--c-kinds=f", "--fields=+ne", "-o", "-", *files], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    theirs = []
    for line in out.splitlines():
        cols = line.split("\t")
        fields = dict(c.split(":", 1) for c in cols[3:] if ":" in c)
        theirs.append((cols[1], cols[0], int(fields["end"]) - int(fields["line"]) + 1))
    mine = [(f["file"], f["name"], f["lines"]) for f in r["longest"]]
    assert len(mine) == r["functions"] > 1000
    assert sorted(mine) == sorted(theirs)


def test_building_blocks_not_written_again():
    r = stats(ROOT)
    for key, most in LEFT.items():
        found = r["blocks"][key]
        assert len(found) <= most, "%s outside lib/: %s (lib/ has one; use it)" % (key, found)
