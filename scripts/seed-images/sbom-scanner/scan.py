"""builder's SBOM generator: BuildKit's SBOM generator protocol with the standard library.

BuildKit runs this image with the root filesystem of the built stage mounted read-only at
$BUILDKIT_SCAN_SOURCE and, for `BUILDKIT_SBOM_SCAN_STAGE`/`_CONTEXT`, further roots in the
directories of $BUILDKIT_SCAN_SOURCE_EXTRAS. For each root it writes
$BUILDKIT_SCAN_DESTINATION/<root's name>.spdx.json: an in-toto statement whose predicate
is an SPDX 2.3 document listing the root's dpkg packages (with purls) and the regular
files no package owns (SHA1 and SHA256): what a package installed its package names and
versions, and hashing a Python image's 4,500 package files cost seconds per platform
and 2 MB of SBOM, for what the image digest already pins. BuildKit attaches each statement to the image as an attestation, the
subject filled in by BuildKit. `python3 scan.py --self-test DIR` prints the statement for
DIR instead, for a quick look.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

TOOL = "builder-sbom-scanner-1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v0.1"
PREDICATE_TYPE = "https://spdx.dev/Document"
_ID_RE = re.compile(r"[^A-Za-z0-9.-]+")


def spdx_id(kind: str, text: str) -> str:
    """A valid SPDX identifier (letters, digits, '.' and '-'), unique per `text`."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"SPDXRef-{kind}-{_ID_RE.sub('-', text)[:60].strip('-')}-{digest}"


def dpkg_packages(root: Path) -> list[dict[str, str]]:
    """Installed packages from var/lib/dpkg/status (and status.d, as distroless keeps it)."""
    texts = []
    status = root / "var/lib/dpkg/status"
    if status.is_file():
        texts.append(status.read_text(encoding="utf-8", errors="replace"))
    extra = root / "var/lib/dpkg/status.d"
    if extra.is_dir():
        texts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(extra.iterdir()) if p.is_file()]
    found = []
    for text in texts:
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line[:1] in (" ", "\t") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
            if "Package" not in fields or "Version" not in fields:
                continue
            if "Status" in fields and not fields["Status"].endswith(" installed"):
                continue
            found.append(fields)
    return sorted(found, key=lambda f: (f["Package"], f.get("Architecture", "")))


# usrmerge: dpkg may list /bin/x for what lies at /usr/bin/x (and the other way round).
_MERGED = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")


def owned_paths(root: Path) -> set[str]:
    """The paths dpkg's file lists (var/lib/dpkg/info/*.list) say packages installed."""
    owned: set[str] = set()
    info = root / "var/lib/dpkg/info"
    if not info.is_dir():
        return owned
    for listing in info.glob("*.list"):
        try:
            lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            path = line.strip()
            if not path.startswith("/"):
                continue
            owned.add(path)
            if path.startswith(_MERGED):
                owned.add("/usr" + path)
            elif path.startswith("/usr/") and ("/" + path[5:]).startswith(_MERGED):
                owned.add(path[4:])
    return owned


def regular_files(root: Path) -> list[Path]:
    """Every regular file under root, symbolic links not followed, in a stable order (one
    scandir per directory: a python image holds thousands of files)."""
    files = []
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                files.append(Path(entry.path))
        stack.extend(reversed(subdirs))
    return sorted(files)


def checksums(path: Path) -> list[dict[str, str]]:
    sha1, sha256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha1.update(chunk)
            sha256.update(chunk)
    return [
        {"algorithm": "SHA1", "checksumValue": sha1.hexdigest()},
        {"algorithm": "SHA256", "checksumValue": sha256.hexdigest()},
    ]


def document(root: Path, name: str, created: str) -> dict[str, object]:
    """An SPDX 2.3 document: the root as a package containing its packages and the files
    no package owns."""
    root_id = spdx_id("Root", name)
    packages: list[dict[str, object]] = [
        {
            "name": name,
            "SPDXID": root_id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "CONTAINER",
        }
    ]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root_id}
    ]
    for fields in dpkg_packages(root):
        package, version = fields["Package"], fields["Version"]
        arch = fields.get("Architecture", "")
        ident = spdx_id("Package-deb", f"{package}-{version}-{arch}")
        purl = f"pkg:deb/debian/{package}@{version}" + (f"?arch={arch}" if arch else "")
        packages.append(
            {
                "name": package,
                "SPDXID": ident,
                "versionInfo": version,
                "supplier": f"Organization: {fields['Maintainer']}" if fields.get("Maintainer") else "NOASSERTION",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "externalRefs": [
                    {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}
                ],
            }
        )
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": ident})
    files = []
    owned = owned_paths(root)
    for path in regular_files(root):
        relative = "./" + path.relative_to(root).as_posix()
        if relative[1:] in owned:
            continue  # its package stands for it
        ident = spdx_id("File", relative)
        try:
            sums = checksums(path)
        except OSError:
            continue  # unreadable (a socket's leftovers, permissions): not content
        files.append({"fileName": relative, "SPDXID": ident, "checksums": sums})
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": ident})
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"https://builder.invalid/spdx/{name}-{uuid.uuid4()}",
        "creationInfo": {"created": created, "creators": [f"Tool: {TOOL}"]},
        "packages": packages,
        "files": files,
        "relationships": relationships,
    }


def statement(root: Path, name: str, created: str) -> dict[str, object]:
    return {
        "_type": STATEMENT_TYPE,
        "predicateType": PREDICATE_TYPE,
        "subject": [],
        "predicate": document(root, name, created),
    }


def main(environ: dict[str, str]) -> int:
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(sys.argv) == 3 and sys.argv[1] == "--self-test":
        root = Path(sys.argv[2])
        json.dump(statement(root, root.name, created), sys.stdout, indent=1)
        return 0
    destination, source = environ.get("BUILDKIT_SCAN_DESTINATION"), environ.get("BUILDKIT_SCAN_SOURCE")
    if not destination or not source:
        print("builder-sbom-scan: BUILDKIT_SCAN_DESTINATION and BUILDKIT_SCAN_SOURCE must be set", file=sys.stderr)
        return 2
    roots = [Path(source)]
    extras = environ.get("BUILDKIT_SCAN_SOURCE_EXTRAS")
    if extras and Path(extras).is_dir():
        roots += sorted(p for p in Path(extras).iterdir() if p.is_dir())
    out = Path(destination)
    out.mkdir(parents=True, exist_ok=True)
    for root in roots:
        name = root.name
        text = json.dumps(statement(root, name, created), separators=(",", ":"))
        (out / f"{name}.spdx.json").write_text(text, encoding="utf-8")
        print(f"builder-sbom-scan: {root} -> {name}.spdx.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(os.environ)))
