"""The door to registries through the Docker daemon: the only module importing the docker SDK."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

import docker
import docker.errors

from builder.errors import RegistryError

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
