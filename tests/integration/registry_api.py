"""Reading a registry through its HTTP API, as Airflow or Argo would resolve an image."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: dict[str, Any]


class RegistryAPI:
    def __init__(self, address: str, *, auth: tuple[str, str] | None = None) -> None:
        self.base = f"http://{address}/v2"
        self.auth = auth

    def _get(self, path: str, accept: tuple[str, ...] = ()) -> tuple[bytes, dict[str, str]]:
        request = urllib.request.Request(f"{self.base}/{path}")  # noqa: S310 - loopback http
        if accept:
            request.add_header("Accept", ", ".join(accept))
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.read(), dict(response.headers)

    def tags(self, repository: str) -> list[str]:
        try:
            body, _ = self._get(f"{repository}/tags/list")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        return sorted(json.loads(body).get("tags") or [])

    def release_tags(self, repository: str) -> set[str]:
        """The tags people pull: without the build cache and content-key tags."""
        return {
            t
            for t in self.tags(repository)
            if "buildcache" not in t  # a variant's cache carries its affixes
            and not t.startswith("key-")
        }

    def catalog(self) -> list[str]:
        # distribution 2.8 refuses n above its maxentries (1000): page with `last`.
        found: list[str] = []
        while True:
            last = f"&last={found[-1]}" if found else ""
            body, _ = self._get(f"_catalog?n=1000{last}")
            page = json.loads(body).get("repositories") or []
            found += page
            if len(page) < 1000:
                return sorted(found)

    def manifest(self, repository: str, reference: str) -> Manifest:
        body, headers = self._get(
            f"{repository}/manifests/{reference}", accept=INDEX_TYPES + MANIFEST_TYPES
        )
        data = json.loads(body)
        return Manifest(
            digest=headers.get("Docker-Content-Digest", ""),
            media_type=data.get("mediaType") or headers.get("Content-Type", ""),
            body=data,
        )

    def platforms(self, repository: str, reference: str) -> dict[str, str]:
        """platform -> manifest digest, attestation manifests left out."""
        index = self.manifest(repository, reference)
        assert index.media_type in INDEX_TYPES, index.media_type
        found = {}
        for entry in index.body["manifests"]:
            platform = entry.get("platform", {})
            if platform.get("os") == "unknown":
                continue
            found[f"{platform['os']}/{platform['architecture']}"] = entry["digest"]
        return found

    def config(self, repository: str, manifest_digest: str) -> dict[str, Any]:
        manifest = self.manifest(repository, manifest_digest)
        body, _ = self._get(f"{repository}/blobs/{manifest.body['config']['digest']}")
        return dict(json.loads(body))

    def read_file(self, repository: str, reference: str, platform: str, path: str) -> bytes | None:
        """A file's bytes in the image for `platform`, looking through layers top-down."""
        digest = self.platforms(repository, reference)[platform]
        manifest = self.manifest(repository, digest)
        wanted = path.lstrip("/")
        for layer in reversed(manifest.body["layers"]):
            blob, _ = self._get(f"{repository}/blobs/{layer['digest']}")
            data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar.getmembers():
                    if member.name.lstrip("./") == wanted and member.isfile():
                        extracted = tar.extractfile(member)
                        return extracted.read() if extracted else None
        return None

    def entries(self, repository: str, reference: str, platform: str) -> dict[str, Entry]:
        """Every path of the image for `platform`, as its layers stack up (no whiteouts:
        for the FROM scratch images the exactness tests build)."""
        digest = self.platforms(repository, reference)[platform]
        manifest = self.manifest(repository, digest)
        found: dict[str, Entry] = {}
        for layer in manifest.body["layers"]:
            blob, _ = self._get(f"{repository}/blobs/{layer['digest']}")
            data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar.getmembers():
                    content = b""
                    if member.isfile():
                        extracted = tar.extractfile(member)
                        content = extracted.read() if extracted else b""
                    found[member.name.lstrip("./").rstrip("/")] = Entry(
                        kind=member.type.decode(),
                        mode=member.mode & 0o7777,
                        link=member.linkname,
                        content=content,
                    )
        return found


@dataclass(frozen=True)
class Entry:
    """One path of an image layer, as a build's output shows it."""

    kind: str  # tar type flag: "0" file, "2" symlink, "5" directory
    mode: int
    link: str
    content: bytes


# -- Additions for the fault tests (tests/integration/test_faults.py) -----------------------


class BlobReader(RegistryAPI):
    """RegistryAPI plus raw blobs and an existence check, for scans and consistency checks."""

    def blob(self, repository: str, digest: str) -> bytes:
        """A blob's bytes, gunzipped when it is a gzip layer."""
        body, _ = self._get(f"{repository}/blobs/{digest}")
        return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body

    def has_blob(self, repository: str, digest: str) -> bool:
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.base}/{repository}/blobs/{digest}", method="HEAD"
        )
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise
