#!/usr/bin/env python3
"""SPDX 2.3 JSON SBOM of a zerowire image, written from its root filesystem.

Packages: the image itself (CONTAINER), the zerowire program in it
(APPLICATION, SHA-256 of the binary) and every Debian package of the image's
dpkg status (/var/lib/dpkg/status: name, version, architecture, supplier from
Maintainer, purl pkg:deb/debian/NAME@VERSION?arch=..&distro=debian-N, and the
declared license where /usr/share/doc/NAME/copyright is machine-readable
(DEP-5): the licenses of its Files paragraphs joined with AND; otherwise
NOASSERTION). Debian license names map to SPDX identifiers where one exists,
else to LicenseRef-Debian-NAME with the copyright file's text for it.
Relationships: the document DESCRIBES the image, the image CONTAINS each
package, a package DEPENDS_ON the packages of its Depends/Pre-Depends that are
in the image, the program DEPENDS_ON its runtime packages (--direct).

Usage: sbom.py --rootfs DIR --name zerowire-proxy --version V --revision SHA
               --source URL --created EPOCH --digest sha256:... [--direct FILE]
               --out FILE.spdx.json
"""

import argparse
import hashlib
import json
import os
import re
import sys
import time
import urllib.parse
import uuid

# Debian short license names (DEP-5 and common use) -> SPDX license list ids.
DEBIAN_TO_SPDX = {
    "apache-2": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "artistic": "Artistic-1.0-Perl",
    "artistic-2.0": "Artistic-2.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "cc0-1.0": "CC0-1.0",
    "expat": "MIT",
    "mit": "MIT",
    "gfdl-1.3+": "GFDL-1.3-or-later",
    "gpl-1+": "GPL-1.0-or-later",
    "gpl-2": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later",
    "gpl-2.0": "GPL-2.0-only",
    "gpl-2.0+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only",
    "gpl-3+": "GPL-3.0-or-later",
    "gpl-3.0+": "GPL-3.0-or-later",
    "isc": "ISC",
    "lgpl-2": "LGPL-2.0-only",
    "lgpl-2+": "LGPL-2.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only",
    "lgpl-3+": "LGPL-3.0-or-later",
    "mpl-1.1": "MPL-1.1",
    "mpl-2.0": "MPL-2.0",
    "openssl": "OpenSSL",
    "psf-2": "PSF-2.0",
    "zlib": "Zlib",
    "curl": "curl",
    "x11": "X11",
    "unicode-dfs-2016": "Unicode-DFS-2016",
    "openldap-2.8": "OLDAP-2.8",
    "bsl-1.0": "BSL-1.0",
}
# "NAME with EXCEPTION exception" -> SPDX exception ids.
EXCEPTIONS = {
    "gcc-runtime": "GCC-exception-3.1",
    "autoconf": "Autoconf-exception-3.0",
    "openssl": "openvpn-openssl-exception",
}
DEP5_FORMAT = re.compile(r"^Format:\s*\S*copyright-format", re.I)


def parse_stanzas(text):
    """Splits RFC 822-style Debian control text into a list of dicts (field
    names as written; continuation lines kept with their newlines)."""
    stanzas, cur, last = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, last = {}, None
        elif line[0] in " \t" and last:
            cur[last] += "\n" + line
        elif ":" in line:
            last, _, value = line.partition(":")
            cur[last] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


def copyright_licenses(text):
    """Returns (license names of the Files paragraphs in order, {name: text of
    its standalone License paragraph}) for a DEP-5 copyright file, or None
    when the file is not machine-readable."""
    if not text or not DEP5_FORMAT.search(text.splitlines()[0] if text else ""):
        return None
    names, texts = [], {}
    for st in parse_stanzas(text):
        lic = st.get("License")
        if lic is None:
            continue
        first, _, body = lic.partition("\n")
        first = first.strip()
        if "Files" in st:
            if first and first not in names:
                names.append(first)
        elif body.strip():
            texts[first.lower()] = "\n".join(
                "" if ln.strip() == "." else ln.strip() for ln in body.splitlines()
            )
    return names, texts


def licenseref(name):
    return "LicenseRef-Debian-" + re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-")


def spdx_term(term, refs):
    """One Debian license name (possibly 'X with Y exception') -> SPDX term;
    records LicenseRefs it invents in refs."""
    term = term.strip()
    m = re.fullmatch(r"(.+?)\s+with\s+(.+?)\s+exception", term, re.I)
    if m:
        base, exc = m.group(1).strip(), m.group(2).strip().lower()
        sid = DEBIAN_TO_SPDX.get(base.lower())
        if sid and exc in EXCEPTIONS:
            return f"{sid} WITH {EXCEPTIONS[exc]}"
        refs.add(term)
        return licenseref(term)
    sid = DEBIAN_TO_SPDX.get(term.lower())
    if sid:
        return sid
    refs.add(term)
    return licenseref(term)


def spdx_expression(names, refs):
    """Debian license names of one package -> one SPDX expression: the AND
    of every distinct term (a name with 'or' becomes a parenthesised OR)."""
    parts = []
    for name in names:
        alts = [
            [spdx_term(t, refs) for t in re.split(r"\s+and\s+", alt, flags=re.I)]
            for alt in re.split(r"\s+or\s+", name, flags=re.I)
        ]
        if len(alts) == 1:
            terms = alts[0]
        else:
            ors = [f"({' AND '.join(a)})" if len(a) > 1 else a[0] for a in alts]
            terms = [f"({' OR '.join(ors)})"]
        for t in terms:
            if t not in parts:
                parts.append(t)
    return " AND ".join(parts)


def spdx_id(kind, name, used):
    base = f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]+", "-", name)
    sid, n = base, 2
    while sid in used:
        sid, n = f"{base}-{n}", n + 1
    used.add(sid)
    return sid


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def os_release(rootfs):
    out = {}
    for p in ("etc/os-release", "usr/lib/os-release"):
        text = read(os.path.join(rootfs, p))
        if text:
            for line in text.splitlines():
                k, _, v = line.partition("=")
                out[k] = v.strip().strip('"')
            break
    return out


def purl(name, version, arch, distro):
    q = urllib.parse.quote
    return f"pkg:deb/debian/{q(name, safe='')}@{q(version, safe='')}?arch={q(arch, safe='')}&distro={q(distro, safe='')}"


def supplier(maintainer):
    """Debian Maintainer 'Name <mail>' -> SPDX 'Organization: Name (mail)'."""
    if not maintainer:
        return "NOASSERTION"
    return "Organization: " + re.sub(r"\s*<([^>]*)>", r" (\1)", maintainer).strip()


def dep_names(field):
    out = []
    for group in (field or "").split(","):
        for alt in group.split("|"):
            n = re.sub(r"\(.*?\)|\[.*?\]|<.*?>|:any", "", alt).strip()
            if n:
                out.append(n)
    return out


def build(args):
    rootfs = args.rootfs
    status = read(os.path.join(rootfs, "var/lib/dpkg/status"))
    if status is None:
        raise SystemExit(f"sbom: {rootfs}/var/lib/dpkg/status: missing")
    debs = [s for s in parse_stanzas(status) if "Package" in s]
    osr = os_release(rootfs)
    distro = f"{osr.get('ID', 'debian')}-{osr.get('VERSION_ID', 'unknown')}"
    binary = os.path.join(rootfs, "usr/local/bin", args.name)
    with open(binary, "rb") as f:
        bin_sha = hashlib.sha256(f.read()).hexdigest()

    used, refs, ref_texts = set(), set(), {}
    image_id = spdx_id("Image", args.name, used)
    app_id = spdx_id("Package", args.name, used)
    image = {
        "SPDXID": image_id,
        "name": args.name,
        "versionInfo": args.version,
        "supplier": "Organization: zerowire",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "description": f"OCI image {args.name}:{args.version} ({distro}, user 65532)",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": f"pkg:oci/{args.name}@{urllib.parse.quote(args.digest, safe='')}"
                f"?tag={urllib.parse.quote(args.version, safe='')}",
            }
        ],
    }
    app = {
        "SPDXID": app_id,
        "name": args.name,
        "versionInfo": args.version,
        "supplier": "Organization: zerowire",
        "downloadLocation": f"git+{args.source}@{args.revision}",
        "sourceInfo": f"built from commit {args.revision}",
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": bin_sha}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "Apache-2.0",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "APPLICATION",
    }
    packages = [image, app]
    rels = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id},
        {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": app_id},
    ]
    ids = {}
    for st in sorted(debs, key=lambda s: s["Package"]):
        name, version = st["Package"], st.get("Version", "")
        arch = st.get("Architecture", "all")
        sid = spdx_id("Package-deb", name, used)
        ids[name] = sid
        cr = read(os.path.join(rootfs, "usr/share/doc", name, "copyright"))
        parsed = copyright_licenses(cr)
        declared = "NOASSERTION"
        if parsed and parsed[0]:
            declared = spdx_expression(parsed[0], refs)
            for k, v in parsed[1].items():
                ref_texts.setdefault(k, v)
        pkg = {
            "SPDXID": sid,
            "name": name,
            "versionInfo": version,
            "supplier": supplier(st.get("Maintainer")),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY" if name.startswith("lib") else "OPERATING-SYSTEM" if name == "base-files" else "OTHER",
            "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl(name, version, arch, distro)}
            ],
        }
        if st.get("Source"):
            pkg["sourceInfo"] = f"built from Debian source package {st['Source']}"
        if st.get("Homepage"):
            pkg["homepage"] = st["Homepage"]
        if st.get("Description"):
            pkg["summary"] = st["Description"].split("\n")[0]
        packages.append(pkg)
        rels.append({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": sid})
    for st in debs:
        deps = dep_names(st.get("Pre-Depends")) + dep_names(st.get("Depends"))
        for d in sorted(set(deps)):
            if d in ids and d != st["Package"]:
                rels.append({"spdxElementId": ids[st["Package"]], "relationshipType": "DEPENDS_ON", "relatedSpdxElement": ids[d]})
    if args.direct:
        for d in read(args.direct).split():
            if d not in ids:
                raise SystemExit(f"sbom: runtime package {d} is not in the image's dpkg status")
            rels.append({"spdxElementId": app_id, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": ids[d]})

    extracted = [
        {
            "licenseId": licenseref(name),
            "name": name,
            "extractedText": ref_texts.get(name.lower())
            or f"The license named '{name}' in the package's /usr/share/doc/*/copyright (Debian DEP-5).",
        }
        for name in sorted(refs)
    ]
    digest = hashlib.sha256((status + bin_sha + args.revision).encode()).hexdigest()
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{args.name}-{args.version}",
        "documentNamespace": f"{args.source}/spdx/{args.name}-{args.version}-{uuid.UUID(digest[:32])}",
        "creationInfo": {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(args.created))),
            "creators": ["Tool: zerowire-images-sbom", "Organization: zerowire"],
        },
        "packages": packages,
        "relationships": rels,
    }
    if extracted:
        doc["hasExtractedLicensingInfos"] = extracted
    return doc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--created", required=True, help="seconds since the epoch")
    ap.add_argument("--digest", required=True, help="the image's manifest digest (sha256:...)")
    ap.add_argument("--direct", help="file listing the program's runtime packages")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    doc = build(args)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
