"""The door to registries through the Docker daemon: the only module importing the docker SDK."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import docker
import docker.errors
import requests
import requests.adapters

from builder.errors import RegistryError
from builder.refs import DOCKER_HUB_ENDPOINT, is_docker_hub

_ATTEMPTS = 3


class Registry:
    """Reads what a registry holds (digests, platforms) through the daemon's distribution API."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        credentials: tuple[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        env = dict(os.environ if environ is None else environ)
        try:
            self._client = docker.DockerClient(base_url=env.get("DOCKER_HOST"), version="auto")
        except docker.errors.DockerException as exc:
            raise RegistryError(f"cannot reach the Docker daemon: {exc}") from None
        self._auth = (
            {"username": credentials[0], "password": credentials[1]} if credentials else None
        )
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def digest(self, reference: str) -> str:
        """The digest a tag points at now."""
        try:
            data = self._client.images.get_registry_data(reference, auth_config=self._auth)
        except docker.errors.NotFound:
            raise RegistryError(f"{reference} is not in the registry") from None
        except docker.errors.DockerException as exc:
            raise RegistryError(f"cannot inspect {reference}: {exc}") from None
        return str(data.id)

    def platforms(self, reference: str) -> tuple[str, ...]:
        """The platforms of the manifest list at `reference`, retrying passing faults only."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                data = self._client.images.get_registry_data(reference, auth_config=self._auth)
            except docker.errors.NotFound:
                raise RegistryError(f"{reference} is not in the registry") from None
            except docker.errors.APIError as exc:
                if attempt == _ATTEMPTS or (exc.status_code and exc.status_code < 500):
                    raise RegistryError(f"cannot inspect {reference}: {exc.explanation}") from None
            except docker.errors.DockerException as exc:
                if attempt == _ATTEMPTS:
                    raise RegistryError(f"cannot inspect {reference}: {exc}") from None
            else:
                found = []
                for platform in data.attrs.get("Platforms") or []:
                    text = f"{platform.get('os')}/{platform.get('architecture')}"
                    if platform.get("variant"):
                        text += f"/{platform['variant']}"
                    if platform.get("os") != "unknown":  # attestation manifests
                        found.append(text)
                return tuple(sorted(set(found)))
            self._sleep(2 ** (attempt - 1))
        raise RegistryError(f"cannot inspect {reference}")


_MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_LOOPBACK = ("localhost", "127.", "[::1]")


class RegistryHTTP:
    """Manifest HEAD requests straight to a registry: cheap, and free of Docker Hub's pull
    limits. Speaks the token dance of the distribution spec (WWW-Authenticate: Bearer)."""

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        timeout: float = 15.0,
        session: requests.Session | None = None,
    ) -> None:
        self._credentials = credentials
        self._timeout = timeout
        self._session = session or requests.Session()
        # Lookups run on a thread pool: keep a connection per worker instead of re-dialing.
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._tokens: dict[str, str] = {}
        self.requests = 0  # how many HTTP requests were made, for the benchmark report

    def close(self) -> None:
        self._session.close()

    @staticmethod
    def endpoint(domain: str) -> str:
        if is_docker_hub(domain):
            return f"https://{DOCKER_HUB_ENDPOINT}"
        scheme = "http" if domain.startswith(_LOOPBACK) else "https"
        return f"{scheme}://{domain}"

    def head_manifest(self, domain: str, path: str, reference: str) -> str | None:
        """The digest `reference` points at, or None when the registry has no such tag."""
        url = f"{self.endpoint(domain)}/v2/{path}/manifests/{reference}"
        response = self._request("HEAD", domain, path, url)
        return None if response is None else response.headers.get("Docker-Content-Digest") or ""

    def _request(self, method: str, domain: str, path: str, url: str) -> requests.Response | None:
        """One request, authenticated on the registry's first 401; None for a 404."""
        headers = {"Accept": _MANIFEST_ACCEPT}
        for attempt in range(2):
            token = self._tokens.get(f"{domain}/{path}")
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                self.requests += 1
                response = self._session.request(
                    method, url, headers=headers, timeout=self._timeout
                )
            except requests.RequestException as exc:
                raise RegistryError(f"cannot reach registry {domain}: {_why(exc)}") from None
            if response.status_code == 401 and attempt == 0:
                self._authenticate(domain, path, response.headers.get("WWW-Authenticate", ""))
                continue
            if response.status_code == 404:
                return None
            if response.status_code >= 400:
                raise RegistryError(f"registry {domain} answered {response.status_code} for {url}")
            return response
        raise RegistryError(f"registry {domain} refused access to {path}")

    def _authenticate(self, domain: str, path: str, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() != "bearer":
            if scheme.lower() == "basic" and self._credentials:
                self._session.auth = self._credentials
                self._tokens[f"{domain}/{path}"] = ""
                return
            raise RegistryError(f"registry {domain} wants {scheme or 'unknown'} auth")
        fields = {
            k.strip(): v.strip().strip('"')
            for k, _, v in (part.partition("=") for part in params.split(","))
        }
        query = {"service": fields.get("service", ""), "scope": f"repository:{path}:pull"}
        try:
            self.requests += 1
            response = self._session.get(
                fields.get("realm", ""),
                params=query,
                auth=self._credentials,
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise RegistryError(f"cannot get a token from {domain}: {_why(exc)}") from None
        if response.status_code != 200:
            raise RegistryError(f"registry {domain} refused a token ({response.status_code})")
        data = response.json()
        self._tokens[f"{domain}/{path}"] = data.get("token") or data.get("access_token") or ""

    def fetch_labels(self, domain: str, path: str, reference: str) -> dict[str, str]:
        """The config labels of an image (its first platform's), {} when it is not there."""
        base = f"{self.endpoint(domain)}/v2/{path}"
        index = self._get_json(domain, path, f"{base}/manifests/{reference}")
        if index is None:
            return {}
        manifests = [
            m
            for m in index.get("manifests", [])
            if (m.get("platform") or {}).get("os") not in (None, "unknown")
        ]
        manifest = (
            self._get_json(domain, path, f"{base}/manifests/{manifests[0]['digest']}")
            if manifests
            else index
        )
        config_digest = ((manifest or {}).get("config") or {}).get("digest")
        if not config_digest:
            return {}
        config = self._get_json(domain, path, f"{base}/blobs/{config_digest}") or {}
        labels = (config.get("config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    def _get_json(self, domain: str, path: str, url: str) -> dict[str, Any] | None:
        response = self._request("GET", domain, path, url)
        data = response.json() if response is not None else None
        return data if isinstance(data, dict) else None


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
