"""The one door to registries: their HTTP API (the distribution spec), one retry policy.

Every question builder asks a registry goes through `Registry`: which digest a tag names
(HEAD requests, which Docker Hub does not count against its pull limits), which platforms
an index holds, an image's labels, and the small state artifact reconcile reads and writes.
Transient faults (connection errors, 429, 5xx) are retried with backoff, honouring
`Retry-After`; "not found" never is. Bearer tokens are cached per repository and access,
and every request is counted for the benchmarks. Credentials: the run's own login for the
registry it pushes to, else what `docker login` stored (read with the docker SDK, the only
module that imports it), else anonymous.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.auth
import docker.errors
import requests
import requests.adapters

from builder.errors import RegistryError
from builder.refs import (
    DOCKER_HUB_ENDPOINT,
    InvalidReference,
    is_docker_hub,
    is_loopback,
    parse_reference,
)

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


ATTESTATION_MANIFEST = "attestation-manifest"  # vnd.docker.reference.type of one
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationManifest:
    """BuildKit's attestations for one platform of an index (an `unknown/unknown` entry)."""

    platform: str  # the platform of the image manifest it describes
    digest: str  # the attestation manifest's own digest
    statements: tuple[tuple[str, str], ...]  # (in-toto predicate type, layer digest)


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """Credentials for one registry host."""

    registry: str
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Login(registry={self.registry!r}, username={self.username!r})"


@dataclass(frozen=True, slots=True)
class _Target:
    domain: str
    path: str
    reference: str  # tag or digest


def _target(reference: str) -> _Target:
    try:
        ref = parse_reference(reference)
    except InvalidReference as exc:
        raise RegistryError(str(exc)) from None
    return _Target(ref.domain, ref.path, ref.digest or ref.tag or "latest")


class Registry:
    """A registry client for one run; `requests` counts what it asked."""

    def __init__(
        self,
        *,
        login: Login | None = None,
        docker_config: Path | None = None,
        timeout: float = 15.0,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self._login = login
        self._docker_config = docker_config
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep
        self._session = session or requests.Session()
        # Look-ups run on a thread pool: keep a connection per worker instead of re-dialing.
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._tokens: dict[tuple[str, str, str], str] = {}
        self._basic: dict[str, tuple[str, str]] = {}
        self._stored: dict[str, tuple[str, str] | None] = {}
        self.requests = 0

    def close(self) -> None:
        self._session.close()

    def use_login(self, login: Login | None) -> None:
        """The run's own login, once builder.yaml said which registry it pushes to."""
        self._login = login

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- questions ----------------------------------------------------------------------------

    def head(self, reference: str) -> str | None:
        """The digest `reference` names now, or None when the registry has no such tag."""
        target = _target(reference)
        response = self._request("HEAD", target, self._manifest_url(target))
        if response is None:
            return None
        return response.headers.get("Docker-Content-Digest") or ""

    def digest(self, reference: str) -> str:
        """The digest a tag names; an error when it names none."""
        digest = self.head(reference)
        if not digest:
            raise RegistryError(f"{reference} is not in the registry")
        return digest

    def manifest(self, reference: str) -> dict[str, Any] | None:
        target = _target(reference)
        return self._get_json(target, self._manifest_url(target))

    def platforms(self, reference: str) -> tuple[str, ...]:
        """The platforms of the index at `reference`, attestation manifests left out."""
        index = self.manifest(reference)
        if index is None:
            raise RegistryError(f"{reference} is not in the registry")
        found = []
        for entry in index.get("manifests") or []:
            platform = entry.get("platform") or {}
            if platform.get("os") in (None, "unknown"):
                continue  # attestation manifests
            text = f"{platform.get('os')}/{platform.get('architecture')}"
            if platform.get("variant"):
                text += f"/{platform['variant']}"
            found.append(text)
        return tuple(sorted(set(found)))

    def attestations(self, reference: str) -> tuple[AttestationManifest, ...]:
        """The attestation manifests of the index at `reference`, one per platform that
        has one (`unknown/unknown` entries that name the manifest they describe)."""
        target = _target(reference)
        index = self.manifest(reference)
        if index is None:
            raise RegistryError(f"{reference} is not in the registry")
        entries = index.get("manifests") or []
        platforms = {}
        for entry in entries:
            platform = entry.get("platform") or {}
            if platform.get("os") not in (None, "unknown"):
                text = f"{platform.get('os')}/{platform.get('architecture')}"
                if platform.get("variant"):
                    text += f"/{platform['variant']}"
                platforms[entry.get("digest")] = text
        found = []
        for entry in entries:
            annotations = entry.get("annotations") or {}
            if annotations.get("vnd.docker.reference.type") != ATTESTATION_MANIFEST:
                continue
            described = annotations.get("vnd.docker.reference.digest")
            manifest = self._get_json(
                target, self._manifest_url(_Target(target.domain, target.path, entry["digest"]))
            )
            statements = tuple(
                (_predicate_type(layer), str(layer["digest"]))
                for layer in (manifest or {}).get("layers") or []
                if layer.get("digest")
            )
            found.append(
                AttestationManifest(
                    platform=platforms.get(described, "unknown"),
                    digest=str(entry["digest"]),
                    statements=statements,
                )
            )
        return tuple(sorted(found, key=lambda a: a.platform))

    def read_blob(self, reference: str, digest: str) -> bytes | None:
        """A blob of the repository `reference` names, or None when it is not there."""
        target = _target(reference)
        response = self._request("GET", target, f"{self._base(target)}/blobs/{digest}")
        return None if response is None else response.content

    def labels(self, reference: str) -> dict[str, str]:
        """The config labels of an image (its first platform's), {} when it is not there."""
        config = self._config(reference) or {}
        inner = config.get("config") or {}
        labels = inner.get("Labels") if isinstance(inner, dict) else None
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    def triggers(self, reference: str) -> tuple[str, ...] | None:
        """The ONBUILD triggers of an image's config (its first platform's): they run in
        the build of every image FROM it. () when it has none; None when its config cannot
        be read (not there, or in a shape builder does not know)."""
        config = self._config(reference)
        if config is None:
            return None
        inner = config.get("config") or {}
        triggers = inner.get("OnBuild") if isinstance(inner, dict) else None
        if triggers is None:
            return ()
        if not isinstance(triggers, list):
            return None
        return tuple(str(t) for t in triggers)

    def _config(self, reference: str) -> dict[str, Any] | None:
        """The image config of `reference` (an index: its first real platform's); None
        when there is none, or the manifests are not what builder knows."""
        target = _target(reference)
        manifest = self.manifest(reference)
        entries = manifest.get("manifests") if manifest is not None else None
        if isinstance(entries, list):  # an index: one platform's manifest
            entries = [m for m in entries if isinstance(m, dict) and m.get("digest")]
            real = [
                m
                for m in entries
                if isinstance(m.get("platform"), dict)
                and m["platform"].get("os") not in (None, "unknown")
            ]
            if not real:
                return None
            manifest = self._get_json(
                target,
                self._manifest_url(_Target(target.domain, target.path, str(real[0]["digest"]))),
            )
        config = manifest.get("config") if manifest is not None else None
        config_digest = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(config_digest, str) or not config_digest:
            return None
        return self._get_json(target, f"{self._base(target)}/blobs/{config_digest}")

    # -- the state artifact -------------------------------------------------------------------

    def read_artifact(self, reference: str) -> bytes | None:
        """The single layer of a small artifact builder wrote, or None when there is none."""
        target = _target(reference)
        manifest = self._get_json(target, self._manifest_url(target))
        layers = (manifest or {}).get("layers") or []
        if not layers:
            return None
        response = self._request("GET", target, f"{self._base(target)}/blobs/{layers[0]['digest']}")
        return None if response is None else response.content

    def write_artifact(self, reference: str, data: bytes, media_type: str) -> str:
        """Push `data` as a one-layer OCI artifact under the tag `reference`; its digest."""
        target = _target(reference)
        config = b"{}"
        blobs = [(config, "application/vnd.oci.empty.v1+json"), (data, media_type)]
        descriptors = [self._put_blob(target, blob, kind) for blob, kind in blobs]
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": media_type,
            "config": descriptors[0],
            "layers": [descriptors[1]],
        }
        body = json.dumps(manifest, separators=(",", ":")).encode()
        response = self._request(
            "PUT",
            target,
            self._manifest_url(target),
            push=True,
            data=body,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        if response is None:
            raise RegistryError(f"registry {target.domain} refused the artifact {reference}")
        return response.headers.get("Docker-Content-Digest") or _digest_of(body)

    def _put_blob(self, target: _Target, data: bytes, media_type: str) -> dict[str, Any]:
        digest = _digest_of(data)
        base = self._base(target)
        exists = self._request("HEAD", target, f"{base}/blobs/{digest}", push=True)
        if exists is None:
            started = self._request("POST", target, f"{base}/blobs/uploads/", push=True)
            location = started.headers.get("Location", "") if started is not None else ""
            if not location:
                raise RegistryError(f"registry {target.domain} did not start an upload")
            if location.startswith("/"):
                location = f"{self.endpoint(target.domain)}{location}"
            separator = "&" if "?" in location else "?"
            done = self._request(
                "PUT",
                target,
                f"{location}{separator}digest={digest}",
                push=True,
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            if done is None:
                raise RegistryError(f"registry {target.domain} lost the upload of {digest}")
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    # -- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def endpoint(domain: str) -> str:
        if is_docker_hub(domain):
            return f"https://{DOCKER_HUB_ENDPOINT}"
        scheme = "http" if is_loopback(domain) else "https"
        return f"{scheme}://{domain}"

    def _base(self, target: _Target) -> str:
        return f"{self.endpoint(target.domain)}/v2/{target.path}"

    def _manifest_url(self, target: _Target) -> str:
        return f"{self._base(target)}/manifests/{target.reference}"

    def _get_json(self, target: _Target, url: str) -> dict[str, Any] | None:
        response = self._request("GET", target, url)
        if response is None:
            return None
        try:
            data = response.json()
        except ValueError:
            raise RegistryError(
                f"registry {target.domain} sent something that is not JSON"
            ) from None
        return data if isinstance(data, dict) else None

    def _request(
        self,
        method: str,
        target: _Target,
        url: str,
        *,
        push: bool = False,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response | None:
        """One request: authenticated on the registry's first 401, retried on passing
        faults with backoff; None for a 404."""
        access = "pull,push" if push else "pull"
        authenticated = False
        for attempt in range(1, self._attempts + 1):
            sent = {"Accept": _ACCEPT, **(headers or {})}
            token = self._tokens.get((target.domain, target.path, access))
            if token:
                sent["Authorization"] = f"Bearer {token}"
            auth = self._basic.get(target.domain)
            try:
                self.requests += 1
                response = self._session.request(
                    method, url, headers=sent, data=data, auth=auth, timeout=self._timeout
                )
            except requests.RequestException as exc:
                if attempt == self._attempts:
                    raise RegistryError(
                        f"cannot reach registry {target.domain}: {_why(exc)}"
                    ) from None
                self._sleep(self._backoff * 2 ** (attempt - 1))
                continue
            if response.status_code == 401 and not authenticated:
                authenticated = True
                self._authenticate(target, access, response.headers.get("WWW-Authenticate", ""))
                continue
            if response.status_code == 404:
                return None
            if response.status_code in _TRANSIENT_STATUS and attempt < self._attempts:
                self._sleep(_retry_after(response) or self._backoff * 2 ** (attempt - 1))
                continue
            if response.status_code in (401, 403):
                raise RegistryError(
                    f"registry {target.domain} refused access to {target.path} "
                    f"({response.status_code})",
                    hint="check the credentials and that the repository exists",
                )
            if response.status_code >= 400:
                raise RegistryError(
                    f"registry {target.domain} answered {response.status_code} for {url}"
                )
            return response
        raise RegistryError(f"registry {target.domain} kept failing for {url}")

    def _credentials(self, domain: str) -> tuple[str, str] | None:
        """The run's login when it is for `domain`, else what `docker login` stored."""
        if self._login is not None and _same_registry(self._login.registry, domain):
            return self._login.username, self._login.password
        if domain not in self._stored:
            self._stored[domain] = _stored_login(self._docker_config, domain)
        return self._stored[domain]

    def _authenticate(self, target: _Target, access: str, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        credentials = self._credentials(target.domain)
        if scheme.lower() == "basic":
            if credentials is None:
                raise RegistryError(
                    f"registry {target.domain} wants a login",
                    hint="set BUILDER_REGISTRY_USER/BUILDER_REGISTRY_PASSWORD or docker login",
                )
            self._basic[target.domain] = credentials
            return
        if scheme.lower() != "bearer":
            raise RegistryError(f"registry {target.domain} wants {scheme or 'unknown'} auth")
        fields = {
            k.strip(): v.strip().strip('"')
            for k, _, v in (part.partition("=") for part in params.split(","))
        }
        query = {
            "service": fields.get("service", ""),
            "scope": f"repository:{target.path}:{access}",
        }
        try:
            self.requests += 1
            response = self._session.get(
                fields.get("realm", ""), params=query, auth=credentials, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise RegistryError(f"cannot get a token from {target.domain}: {_why(exc)}") from None
        if response.status_code != 200:
            raise RegistryError(
                f"registry {target.domain} refused a token ({response.status_code})"
            )
        data = response.json()
        token = data.get("token") or data.get("access_token") or ""
        self._tokens[(target.domain, target.path, access)] = token


def _predicate_type(layer: Mapping[str, Any]) -> str:
    return str((layer.get("annotations") or {}).get(PREDICATE_ANNOTATION, ""))


def _same_registry(a: str, b: str) -> bool:
    return a == b or (is_docker_hub(a) and is_docker_hub(b))


def _stored_login(docker_config: Path | None, domain: str) -> tuple[str, str] | None:
    """What `docker login` stored for `domain` (credential helpers included), if anything."""
    if docker_config is None:
        return None
    try:
        config = docker.auth.load_config(str(docker_config / "config.json"))
        found = config.resolve_authconfig("docker.io" if is_docker_hub(domain) else domain)
    except (docker.errors.DockerException, OSError, ValueError):
        return None
    if not found:
        return None
    username, password = (
        found.get("Username") or found.get("username"),
        found.get("Password") or found.get("password"),
    )
    return (str(username), str(password)) if username and password else None


def _digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 30.0) if value.isdigit() else None


def _why(exc: requests.RequestException) -> str:
    """requests' errors nest urllib3's; people need the last word, not the stack of them."""
    text = str(exc)
    for reason in ("Connection refused", "Name or service not known", "No route to host"):
        if reason in text:
            return reason.lower()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    return text if len(text) <= 120 else text[:119] + "…"
