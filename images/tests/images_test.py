"""Tests of the images (README "Images"): the SPDX 2.3 SBOM writer on a root
filesystem made here (hermetic), and, after `make images`, each image's SBOM
against its root filesystem's dpkg status, the root filesystem's contents
(no shell, package manager or compiler; user 65532; every shared object the
program loads present) and the OCI archive's config (labels, user,
entrypoint)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest

ROOT = os.environ.get("ZW_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "build", "images")
sys.path.insert(0, os.path.join(ROOT, "images"))
import sbom  # noqa: E402

NAMES = ["proxy", "webhook"]
OCI_LABELS = ["title", "description", "source", "version", "revision", "licenses"]
# SPDX license list identifiers the writer may emit (a subset of the list).
SPDX_IDS = {
    "Apache-2.0", "Artistic-1.0-Perl", "Artistic-2.0", "BSD-2-Clause", "BSD-3-Clause",
    "BSD-4-Clause", "CC0-1.0", "MIT", "GFDL-1.3-or-later", "GPL-1.0-or-later", "GPL-2.0-only",
    "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "ISC", "LGPL-2.0-only",
    "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only",
    "LGPL-3.0-or-later", "MPL-1.1", "MPL-2.0", "OpenSSL", "PSF-2.0", "Zlib", "curl", "X11",
    "Unicode-DFS-2016", "OLDAP-2.8", "BSL-1.0",
}
SPDX_EXCEPTIONS = {"GCC-exception-3.1", "Autoconf-exception-3.0", "openvpn-openssl-exception"}
ID_RE = re.compile(r"^SPDXRef-[A-Za-z0-9.-]+$")


def check_license(expr, refs):
    """Fails unless expr is NOASSERTION/NONE or a well-formed SPDX expression
    whose ids are on the list or LicenseRefs defined in refs."""
    if expr in ("NOASSERTION", "NONE"):
        return
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    depth, expect_id = 0, True
    after_with = False
    for t in tokens:
        if t == "(":
            assert expect_id, expr
            depth += 1
        elif t == ")":
            assert not expect_id, expr
            depth -= 1
            assert depth >= 0, expr
        elif t in ("AND", "OR", "WITH"):
            assert not expect_id, expr
            expect_id, after_with = True, t == "WITH"
        else:
            assert expect_id, expr
            if after_with:
                assert t in SPDX_EXCEPTIONS, f"unknown exception {t} in {expr}"
            elif t.startswith("LicenseRef-"):
                assert re.fullmatch(r"LicenseRef-[A-Za-z0-9.-]+", t), t
                assert t in refs, f"{t} used but not in hasExtractedLicensingInfos"
            else:
                assert t in SPDX_IDS, f"{t} is not an SPDX license id ({expr})"
            expect_id, after_with = False, False
    assert depth == 0 and not expect_id, expr


def validate(doc):
    """The SPDX 2.3 document fields the spec requires, and internal
    consistency; returns {name: package} of the Debian packages (purl deb)."""
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["dataLicense"] == "CC0-1.0"
    assert doc["SPDXID"] == "SPDXRef-DOCUMENT"
    assert doc["name"]
    assert re.match(r"^[a-z][a-z0-9+.-]*://", doc["documentNamespace"]) and "#" not in doc["documentNamespace"]
    ci = doc["creationInfo"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ci["created"])
    assert ci["creators"] and all(re.match(r"^(Tool|Organization|Person): \S", c) for c in ci["creators"])
    refs = {}
    for e in doc.get("hasExtractedLicensingInfos", []):
        assert e["licenseId"].startswith("LicenseRef-") and e["extractedText"]
        assert e["licenseId"] not in refs
        refs[e["licenseId"]] = e
    ids, debs = {"SPDXRef-DOCUMENT"}, {}
    for p in doc["packages"]:
        assert ID_RE.match(p["SPDXID"]) and p["SPDXID"] not in ids, p["SPDXID"]
        ids.add(p["SPDXID"])
        assert p["name"] and p["downloadLocation"]
        assert p["filesAnalyzed"] is False and "packageVerificationCode" not in p
        for f in ("licenseConcluded", "licenseDeclared"):
            check_license(p[f], refs)
        assert p["copyrightText"]
        assert p["supplier"] == "NOASSERTION" or re.match(r"^(Organization|Person): \S", p["supplier"])
        for c in p.get("checksums", []):
            assert c["algorithm"] == "SHA256" and re.fullmatch(r"[0-9a-f]{64}", c["checksumValue"])
        for r in p.get("externalRefs", []):
            assert r["referenceCategory"] == "PACKAGE-MANAGER" and r["referenceType"] == "purl"
            assert r["referenceLocator"].startswith("pkg:")
            if r["referenceLocator"].startswith("pkg:deb/"):
                debs[p["name"]] = p
    for r in doc["relationships"]:
        assert r["spdxElementId"] in ids and r["relatedSpdxElement"] in ids, r
    described = [r for r in doc["relationships"] if r["relationshipType"] == "DESCRIBES"]
    assert len(described) == 1 and described[0]["spdxElementId"] == "SPDXRef-DOCUMENT"
    return debs


def deb_purl(p):
    return next(r["referenceLocator"] for r in p["externalRefs"] if r["referenceLocator"].startswith("pkg:deb/"))


# --- the writer, on a root filesystem made here ---------------------------------

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2020 Someone
License: GPL-2+ or LGPL-3+

Files: lib/*
Copyright: 2021 Other
License: Expat

Files: extra/*
Copyright: 2022 Third
License: Foo-custom and Expat

License: Foo-custom
 Permission is granted to do anything.
 .
 No warranty.
"""


def write_rootfs(tmp_path):
    r = tmp_path / "rootfs"
    (r / "var/lib/dpkg").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "usr/local/bin").mkdir(parents=True)
    (r / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (r / "usr/local/bin/zerowire-proxy").write_bytes(b"\x7fELF fake program")
    (r / "var/lib/dpkg/status").write_text(
        "Package: libdemo1\nStatus: install ok installed\nArchitecture: amd64\n"
        "Maintainer: Demo Team <demo@example.org>\nVersion: 1:2.0+dfsg-1~deb12u1\n"
        "Depends: libc6 (>= 2.34), libother0 | libmissing\nSource: demo (2.0)\n"
        "Description: a demo library\n long text\n\n"
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n"
        "Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n\n")
    (r / "usr/share/doc/libdemo1").mkdir(parents=True)
    (r / "usr/share/doc/libdemo1/copyright").write_text(DEP5)
    (r / "usr/share/doc/libc6").mkdir(parents=True)
    (r / "usr/share/doc/libc6/copyright").write_text("This is the Debian prepackaged version of glibc.\n")
    (tmp_path / "direct").write_text("libdemo1\n")
    return r


def run_writer(tmp_path, rootfs, direct):
    out = tmp_path / "sbom.json"
    sbom.main(["--rootfs", str(rootfs), "--name", "zerowire-proxy", "--version", "0.1.0",
               "--revision", "a" * 40, "--source", "https://example.org/zerowire", "--created", "0",
               "--digest", "sha256:" + "b" * 64, "--direct", str(direct), "--out", str(out)])
    return json.loads(out.read_text())


def test_sbom_writer_on_a_made_rootfs(tmp_path):
    rootfs = write_rootfs(tmp_path)
    doc = run_writer(tmp_path, rootfs, tmp_path / "direct")
    debs = validate(doc)
    assert set(debs) == {"libdemo1", "libc6"}
    demo = debs["libdemo1"]
    assert demo["versionInfo"] == "1:2.0+dfsg-1~deb12u1"
    assert deb_purl(demo) == "pkg:deb/debian/libdemo1@1%3A2.0%2Bdfsg-1~deb12u1?arch=amd64&distro=debian-12"
    assert demo["supplier"] == "Organization: Demo Team (demo@example.org)"
    assert demo["licenseDeclared"] == \
        "(GPL-2.0-or-later OR LGPL-3.0-or-later) AND MIT AND LicenseRef-Debian-Foo-custom"
    ref = {e["licenseId"]: e for e in doc["hasExtractedLicensingInfos"]}["LicenseRef-Debian-Foo-custom"]
    assert ref["extractedText"] == "Permission is granted to do anything.\n\nNo warranty."
    assert debs["libc6"]["licenseDeclared"] == "NOASSERTION"  # not machine-readable
    app = next(p for p in doc["packages"] if p.get("primaryPackagePurpose") == "APPLICATION")
    assert app["checksums"][0]["checksumValue"] == hashlib.sha256(b"\x7fELF fake program").hexdigest()
    assert app["licenseDeclared"] == "Apache-2.0"
    rel = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
    assert (demo["SPDXID"], "DEPENDS_ON", debs["libc6"]["SPDXID"]) in rel
    assert (app["SPDXID"], "DEPENDS_ON", demo["SPDXID"]) in rel
    assert doc["creationInfo"]["created"] == "1970-01-01T00:00:00Z"
    # The same input gives the same document (namespace included).
    assert run_writer(tmp_path, rootfs, tmp_path / "direct") == doc


def test_sbom_writer_refuses_a_runtime_package_not_in_the_image(tmp_path):
    rootfs = write_rootfs(tmp_path)
    (tmp_path / "direct").write_text("libdemo1\nlibnotthere9\n")
    with pytest.raises(SystemExit, match="libnotthere9"):
        run_writer(tmp_path, rootfs, tmp_path / "direct")


def test_validator_rejects_bad_documents(tmp_path):
    doc = run_writer(tmp_path, write_rootfs(tmp_path), tmp_path / "direct")
    for mutate in (
        lambda d: d.pop("dataLicense"),
        lambda d: d["packages"][2].update(licenseDeclared="GPL-2+"),
        lambda d: d["packages"][2].update(licenseDeclared="LicenseRef-Debian-Undefined"),
        lambda d: d["packages"][2].update(licenseDeclared="MIT AND"),
        lambda d: d["packages"][3].update(SPDXID=d["packages"][2]["SPDXID"]),
        lambda d: d["relationships"].append(dict(d["relationships"][0], relatedSpdxElement="SPDXRef-Nowhere")),
    ):
        bad = json.loads(json.dumps(doc))
        mutate(bad)
        with pytest.raises((AssertionError, KeyError)):
            validate(bad)


# --- the images `make images` built -------------------------------------------

def built(name):
    d = os.path.join(OUT, name)
    if not os.path.isfile(os.path.join(d, "key")):
        pytest.fail(f"{d} has no finished image: run `make images` first")
    return d


def dpkg_status(rootfs):
    with open(os.path.join(rootfs, "var/lib/dpkg/status"), encoding="utf-8") as f:
        return {s["Package"]: s for s in sbom.parse_stanzas(f.read())}


@pytest.mark.parametrize("name", NAMES)
def test_image_sbom_lists_every_package_of_the_image(name):
    d = built(name)
    with open(os.path.join(OUT, f"zerowire-{name}.spdx.json"), encoding="utf-8") as f:
        doc = json.load(f)
    debs = validate(doc)
    status = dpkg_status(os.path.join(d, "rootfs"))
    assert set(debs) == set(status)
    for pkg, st in status.items():
        assert debs[pkg]["versionInfo"] == st["Version"]
        assert deb_purl(debs[pkg]).startswith(f"pkg:deb/debian/{pkg}@")
        assert f"arch={st['Architecture']}" in deb_purl(debs[pkg])
    app = next(p for p in doc["packages"] if p.get("primaryPackagePurpose") == "APPLICATION")
    with open(os.path.join(d, "rootfs/usr/local/bin", f"zerowire-{name}"), "rb") as f:
        assert app["checksums"][0]["checksumValue"] == hashlib.sha256(f.read()).hexdigest()
    # Most Debian copyright files are machine-readable: most packages carry a license.
    known = [p for p in debs.values() if p["licenseDeclared"] != "NOASSERTION"]
    assert len(known) >= len(debs) // 2


@pytest.mark.parametrize("name", NAMES)
def test_image_rootfs_holds_only_the_program_and_its_libraries(name):
    d = built(name)
    rootfs = os.path.join(d, "rootfs")
    status = dpkg_status(rootfs)
    with open(os.path.join(d, "packages.txt"), encoding="utf-8") as f:
        assert set(f.read().split()) == set(status)
    with open(os.path.join(d, "runtime-packages.txt"), encoding="utf-8") as f:
        runtime = f.read().split()
    assert runtime and set(runtime) <= set(status)
    for banned in ("bash", "dash", "coreutils", "dpkg", "apt", "perl-base", "gcc-12", "cpp-12",
                   "libc-bin", "util-linux", "login", "passwd"):
        assert banned not in status, f"{banned} is in the {name} image"
    for path in ("bin/sh", "bin/bash", "usr/bin/dpkg", "usr/bin/apt", "usr/bin/perl", "usr/bin/gcc",
                 "usr/bin/cc", "usr/bin/ld", "sbin/ldconfig"):
        assert not os.path.lexists(os.path.join(rootfs, path)), f"/{path} is in the {name} image"
    assert os.listdir(os.path.join(rootfs, "usr/bin")) == []
    with open(os.path.join(rootfs, "etc/passwd"), encoding="utf-8") as f:
        assert "nonroot:x:65532:65532:" in f.read()
    st = os.stat(os.path.join(rootfs, "home/nonroot"))
    assert (st.st_uid, st.st_gid) == (65532, 65532)
    assert os.stat(os.path.join(rootfs, "tmp")).st_mode & 0o7777 == 0o1777
    assert os.path.getsize(os.path.join(rootfs, "etc/ssl/certs/ca-certificates.crt")) > 100000
    # Every shared object the program loads, transitively, is in the tree.
    todo, seen = [os.path.join(rootfs, "usr/local/bin", f"zerowire-{name}")], set()
    while todo:
        elf = todo.pop()
        out = subprocess.run(["readelf", "-d", elf], check=True, capture_output=True, text=True).stdout
        for lib in re.findall(r"\(NEEDED\).*\[(.*)\]", out):
            if lib in seen:
                continue
            seen.add(lib)
            path = os.path.join(rootfs, "usr/lib/x86_64-linux-gnu", lib)
            assert os.path.exists(path), f"{lib} is missing from the {name} image"
            todo.append(path)
    assert "libc.so.6" in seen


@pytest.mark.parametrize("name", NAMES)
def test_image_archive_config(name):
    built(name)
    with tarfile.open(os.path.join(OUT, f"zerowire-{name}.oci.tar")) as t:
        def blob(digest):
            return json.load(t.extractfile("blobs/sha256/" + digest.split(":", 1)[1]))
        layout = json.load(t.extractfile("oci-layout"))
        assert layout["imageLayoutVersion"] == "1.0.0"
        index = json.load(t.extractfile("index.json"))
        manifest = blob(index["manifests"][0]["digest"])
        assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
        assert len(manifest["layers"]) == 1
        config = blob(manifest["config"]["digest"])
    cfg = config["config"]
    assert cfg["User"] == "65532:65532"
    assert cfg["Entrypoint"] == [f"/usr/local/bin/zerowire-{name}"]
    labels = cfg["Labels"]
    for key in OCI_LABELS:
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.title"] == f"zerowire-{name}"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        version = re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.M).group(1)
    assert labels["org.opencontainers.image.version"] == version
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", labels["org.opencontainers.image.revision"])
    # The program in the image was built from that revision.
    with open(os.path.join(OUT, name, "rootfs/usr/local/bin", f"zerowire-{name}"), "rb") as f:
        assert labels["org.opencontainers.image.revision"][:12].encode() in f.read()
    # The SBOM names this archive's manifest.
    with open(os.path.join(OUT, f"zerowire-{name}.spdx.json"), encoding="utf-8") as f:
        assert index["manifests"][0]["digest"].replace(":", "%3A") in f.read()


@pytest.mark.parametrize("name", NAMES)
def test_dockerfile_matches_the_script(name):
    """proxy/Dockerfile and webhook/Dockerfile build the same tree with
    images/rootfs.sh, the same labels, user and entrypoint."""
    with open(os.path.join(ROOT, name, "Dockerfile"), encoding="utf-8") as f:
        text = f.read()
    assert "images/runtime-packages.sh" in text and "images/rootfs.sh" in text
    assert "FROM scratch" in text
    assert "USER 65532:65532" in text
    assert f'ENTRYPOINT ["/usr/local/bin/zerowire-{name}"]' in text
    for key in OCI_LABELS:
        assert f"org.opencontainers.image.{key}=" in text, key


def test_smoke_run_through_the_chroot_fallback():
    """The runner used where no OCI runtime starts a container: the same
    checks, chrooted into the root filesystems as 65532."""
    for name in NAMES:
        built(name)
    r = subprocess.run([os.path.join(ROOT, "images/smoke.sh")], env=dict(os.environ, ZW_IMAGES_RUNNER="chroot"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("(runner chroot)") == 2 and r.stderr.count("uid 65532") == 2, r.stderr


@pytest.mark.parametrize("name", NAMES)
def test_archive_loads_into_an_empty_store(name):
    """The OCI archive is what another machine gets: `podman load` into a
    store of its own gives the image with its user, entrypoint and labels."""
    built(name)
    tmp = tempfile.mkdtemp(prefix="zwload.", dir="/tmp")  # podman: runroot under 50 characters
    store = ["podman", "--root", os.path.join(tmp, "root"), "--runroot", os.path.join(tmp, "run")]
    try:
        out = subprocess.run(store + ["load", "-q", "-i", os.path.join(OUT, f"zerowire-{name}.oci.tar")],
                             check=True, capture_output=True, text=True, timeout=120).stdout
        ref = out.split("Loaded image:")[-1].strip()
        assert ref.startswith(f"localhost/zerowire-{name}:")
        info = json.loads(subprocess.run(store + ["image", "inspect", ref], check=True, capture_output=True,
                                         text=True, timeout=60).stdout)[0]
        assert info["Config"]["User"] == "65532:65532"
        assert info["Config"]["Entrypoint"] == [f"/usr/local/bin/zerowire-{name}"]
        assert info["Config"]["Labels"]["org.opencontainers.image.title"] == f"zerowire-{name}"
    finally:
        subprocess.run(store + ["rmi", "-a", "-f"], capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
