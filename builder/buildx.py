"""The door to docker buildx: the only module that imports python-on-whales."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import python_on_whales
import python_on_whales.exceptions

from builder import proc
from builder.context import EngineOptions
from builder.errors import EngineError, RegistryError
from builder.refs import DOCKER_HUB_LOGIN_SERVER, is_docker_hub
from builder.reports import TestOutcome

# Push failures worth another try: the network or the registry hiccupped, nothing we sent
# was wrong. Auth and "not found" are final (jupyter/docker-stacks tagging does the same).
_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|\btimeout\b|\bEOF\b|"
    r"status: 5\d\d|\b50[0234]\b|too many requests|\b429\b|temporary failure|TLS handshake",
    re.IGNORECASE,
)
# `docker run` exits 125 when docker itself failed (no such image, a bad option); 126 and
# 127 are the container's command that could not be run or found: the test's verdict.
_DOCKER_RUN_FAILED = 125
TEST_LABEL = "dev.builder.test-of"  # on every test container: what it tests
_OUTPUT_TAIL_LINES = 60
_OUTPUT_TAIL_CHARS = 8_000
_PULL_TIMEOUT = 900.0  # seconds: a registry that stops answering must not hang the run
_REMOVE_WAIT = 30.0  # seconds a killed test container may take to disappear


@dataclass(frozen=True, slots=True, kw_only=True)
class BakeResult:
    ok: bool
    metadata: dict[str, Any]
    log: str
    error: str = ""

    @property
    def transient(self) -> bool:
        # A RUN step's own failure is the Dockerfile's verdict, whatever words its command
        # holds.
        if self.ok or "did not complete successfully" in self.error:
            return False
        return bool(_TRANSIENT.search(self.error))


@dataclass(frozen=True, slots=True, kw_only=True)
class Driver:
    """What the selected buildx builder can do, decided from the driver it reports."""

    name: str  # docker, docker-container, remote, kubernetes, cloud...
    # The docker driver's engine keeps images in the containerd image store (multi-platform
    # images, attestations); meaningless for the other drivers, which run BuildKit itself.
    containerd_store: bool = False

    @property
    def attestations(self) -> bool:
        """Provenance and SBOM attestations can be attached: BuildKit's own drivers always,
        the docker driver only over the containerd image store (buildx refuses otherwise)."""
        return self.name != "docker" or self.containerd_store

    @property
    def pushes_by_digest(self) -> bool:
        """The docker driver exports into the engine's image store, which cannot push an
        untagged image: per-platform builds push under a staging tag there instead."""
        return self.name != "docker"

    @property
    def loads(self) -> bool:
        """Results without a push land in the engine's image store (runnable, and findable
        by name for a dependant's bake); elsewhere they stay in the build cache."""
        return self.name == "docker"


class Buildx:
    """docker buildx for one run: an isolated docker config when we log in ourselves."""

    def __init__(self, options: EngineOptions) -> None:
        self._options = options
        self._environ = dict(self._options.environ)
        self._builder = self._options.builder
        self._context: str | None = None  # a docker context to run docker in, see _connect
        self._config_dir: tempfile.TemporaryDirectory[str] | None = None
        self._client = self._make_client()
        self.driver: Driver | None = None  # known after connect()
        self._connected: tuple[str, Any] | None = None

    def _make_client(self) -> python_on_whales.DockerClient:
        config = self._config_dir.name if self._config_dir is not None else None
        if self._context is not None:
            return python_on_whales.DockerClient(config=config, context=self._context)
        return python_on_whales.DockerClient(config=config, host=self._options.host)

    def close(self) -> None:
        if self._config_dir is not None:
            self._config_dir.cleanup()  # the credentials we wrote go with it
            self._config_dir = None

    def __enter__(self) -> Buildx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _builder_arg(self) -> dict[str, Any]:
        """`--builder NAME` when one was chosen; otherwise buildx uses its current one."""
        return {"builder": self._builder} if self._builder else {}

    # -- checks ----------------------------------------------------------------------------

    def check(self, platforms: tuple[str, ...]) -> str:
        """Fail before any work when the engine cannot do the build; returns buildx's version."""
        version, builder = self.connect()
        supported = {str(p) for node in (builder.nodes or []) for p in (node.platforms or [])}
        missing = [p for p in platforms if supported and p not in supported]
        if missing:
            raise EngineError(
                f"the buildx builder {builder.name!r} cannot build {', '.join(missing)} "
                f"(it supports {', '.join(sorted(supported))})",
                hint="register QEMU (scripts/engine up does) or pass --platform",
            )
        if len(platforms) > 1 and builder.driver == "docker" and not self._containerd_store():
            raise EngineError(
                "the docker buildx driver cannot build multi-platform images without "
                "the containerd image store",
                hint='set {"features": {"containerd-snapshotter": true}} in daemon.json '
                "or use a docker-container builder",
            )
        return version

    def connect(self) -> tuple[str, Any]:
        """The CLI, the daemon and a bootstrapped builder, asked once per run."""
        if self._connected is None:
            self._connected = self._connect()
            name = str(self._connected[1].driver)
            self.driver = Driver(
                name=name, containerd_store=name == "docker" and self._containerd_store()
            )
        return self._connected

    def _connect(self) -> tuple[str, Any]:
        host = self._options.host or "the default socket"
        if shutil.which("docker", path=self._environ.get("PATH")) is None:
            raise EngineError(
                "the docker CLI is not installed", hint="install Docker, or run scripts/engine up"
            )
        try:
            version = str(self._client.buildx.version())
        except python_on_whales.exceptions.DockerException as exc:
            raise EngineError(
                f"docker buildx is not available: {_first_line(exc.stderr)}",
                hint="install the buildx plugin, or run scripts/engine up",
            ) from None
        except FileNotFoundError:
            raise EngineError(
                "the docker CLI is not installed", hint="install Docker, or run scripts/engine up"
            ) from None
        try:
            self._client.info()
        except python_on_whales.exceptions.DockerException as exc:
            raise EngineError(
                f"cannot reach the Docker daemon at {host}: {_first_line(exc.stderr)}",
                hint="start Docker, check DOCKER_HOST, or run scripts/engine up",
            ) from None
        try:
            builder = self._client.buildx.inspect(self._builder, bootstrap=True)
        except python_on_whales.exceptions.DockerException as exc:
            if self._builder is not None:
                raise EngineError(
                    f"buildx builder {self._builder!r} is not usable: {_first_line(exc.stderr)}",
                    hint="docker buildx ls lists the builders; check --builder or 'builder:'",
                ) from None
            raise EngineError(f"buildx has no usable builder: {_first_line(exc.stderr)}") from None
        endpoint = str(builder.nodes[0].endpoint) if builder.nodes else "default"
        if self._builder is not None and builder.driver == "docker" and endpoint != "default":
            # A docker-driver builder is another engine's own BuildKit: buildx only drives
            # it from inside that docker context, so docker runs there, builder unnamed.
            self._context, self._builder = endpoint, None
            self._client = self._make_client()
        return version, builder

    def _containerd_store(self) -> bool:
        try:
            info = self._client.info()
        except python_on_whales.exceptions.DockerException:
            return False
        status = json.dumps(getattr(info, "driver_status", None) or [])
        return "containerd" in status or "snapshotter" in status

    # -- registry auth ---------------------------------------------------------------------

    @property
    def docker_config(self) -> Path:
        """The docker config directory holding this run's registry logins, for other tools
        that push (cosign): the private one `login` wrote, else the user's."""
        if self._config_dir is not None:
            return Path(self._config_dir.name)
        return self._options.docker_config

    def login(self, registry: str, username: str, password: str) -> None:
        """Log in for this run only: credentials go to a private config dir via stdin."""
        if self._config_dir is None:
            self._config_dir = tempfile.TemporaryDirectory(prefix="builder-docker-config-")
            existing = self._options.docker_config
            source = existing / "config.json"
            data: dict[str, Any] = {}
            if source.is_file():
                try:
                    data = json.loads(source.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = {}
            # Keep plugins findable; drop helpers that would store our token elsewhere.
            data.pop("credsStore", None)
            data.setdefault("cliPluginsExtraDirs", []).extend(
                [str(existing / "cli-plugins"), "/usr/libexec/docker/cli-plugins"]
            )
            config_path = Path(self._config_dir.name) / "config.json"
            config_path.write_text(json.dumps(data), encoding="utf-8")
            self._client = self._make_client()
        server = DOCKER_HUB_LOGIN_SERVER if is_docker_hub(registry) else registry
        # Not python-on-whales' login: it lets docker's own chatter ("Login Succeeded", the
        # unencrypted-storage warning) through to our output. The password goes on stdin.
        env = dict(self._environ)
        env["DOCKER_CONFIG"] = self._config_dir.name
        result = proc.run(
            ["docker", "login", "--username", username, "--password-stdin", server],
            env=env,
            stdin=password.encode(),
        )
        if not result.ok:
            reason = _first_line(result.err_text()).replace(password, "***")
            reason = reason.removeprefix("Error response from daemon: ")
            raise RegistryError(
                f"login to {registry} as {username!r} failed: {reason}",
                hint="check the username and token/password",
            )

    # -- building --------------------------------------------------------------------------

    def bake(
        self,
        definition: dict[str, Any],
        targets: list[str],
        *,
        on_line: Callable[[str], None] | None = None,
    ) -> BakeResult:
        """Run one bake invocation from an in-memory definition; never raises for a failed build."""
        with tempfile.TemporaryDirectory(prefix="builder-bake-") as tmp:
            bake_file = Path(tmp) / "docker-bake.json"
            bake_file.write_text(json.dumps(definition, indent=2), encoding="utf-8")
            metadata_file = Path(tmp) / "metadata.json"
            lines: list[str] = []
            try:
                stream = self._client.buildx.bake(
                    targets,
                    **self._builder_arg(),
                    files=[bake_file],
                    progress="plain",
                    metadata_file=metadata_file,
                    stream_logs=True,
                )
                for line in stream:
                    text = line.rstrip("\n")
                    lines.append(text)
                    if on_line is not None:
                        on_line(text)
            except python_on_whales.exceptions.DockerException as exc:
                log = "\n".join(lines)
                return BakeResult(ok=False, metadata={}, log=log, error=_error_of(lines, exc))
            metadata: dict[str, Any] = {}
            if metadata_file.is_file():
                metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
            return BakeResult(ok=True, metadata=metadata, log="\n".join(lines))

    # -- testing ---------------------------------------------------------------------------

    def _docker(self) -> tuple[list[str], dict[str, str]]:
        """`docker` as the client runs it: this run's login config, its engine or context."""
        argv, env = ["docker"], dict(self._environ)
        if self._config_dir is not None:
            argv += ["--config", self._config_dir.name]
        if self._context is not None:
            argv += ["--context", self._context]
            env.pop("DOCKER_HOST", None)  # the context names the engine
        return argv, env

    def pull(self, reference: str, platform: str) -> str | None:
        """Bring one platform of an image into the engine's store; the error line, or None."""
        docker, env = self._docker()
        result = proc.run(
            [*docker, "pull", "--quiet", "--platform", platform, reference],
            env=env,
            timeout=_PULL_TIMEOUT,
        )
        if result.timed_out:
            return f"pulling {reference} for {platform} took more than {_PULL_TIMEOUT:.0f}s"
        if not result.ok:
            return _first_line(result.err_text()).removeprefix("Error response from daemon: ")
        return None

    def default_command(self, reference: str) -> tuple[str, ...]:
        """What `docker run IMAGE` runs (ENTRYPOINT then CMD), for an image in the store."""
        docker, env = self._docker()
        template = "{{json .Config.Entrypoint}}\t{{json .Config.Cmd}}"
        result = proc.run([*docker, "image", "inspect", "--format", template, reference], env=env)
        if not result.ok:
            raise EngineError(f"cannot inspect {reference}: {_first_line(result.err_text())}")
        entrypoint, _, cmd = result.stdout.decode("utf-8", "replace").strip().partition("\t")
        return tuple(json.loads(entrypoint) or ()) + tuple(json.loads(cmd or "null") or ())

    def run_test(
        self,
        reference: str,
        platform: str,
        argv: Sequence[str],
        *,
        env: Sequence[tuple[str, str]] = (),
        network: str = "none",
        timeout: float,
    ) -> TestOutcome:
        """Run `argv` (its first word as the entrypoint) in a fresh container of the image,
        already in the engine's store, for `platform` (arm64 under QEMU on an amd64 host).
        At `timeout` the container is killed by its unique name, never left running."""
        docker, environ = self._docker()
        name = f"builder-test-{uuid.uuid4().hex[:12]}"
        command = [
            *docker,
            "run",
            "--rm",
            "--name",
            name,
            "--label",
            f"{TEST_LABEL}={reference}",
            "--pull",
            "never",  # pulled first, or loaded by the build: never another image
            "--platform",
            platform,
            "--network",
            network,
            *(f"--env={k}={v}" for k, v in env),
            "--entrypoint",
            argv[0],
            reference,
            *argv[1:],
        ]
        started = time.monotonic()
        result = proc.run(command, env=environ, timeout=timeout, interleave=True)
        seconds = time.monotonic() - started
        output = _tail(result.stdout.decode("utf-8", "replace"))
        if result.timed_out:
            # The CLI is gone, the container is not: kill it by name, and see it gone.
            self._remove(docker, environ, name)
            return TestOutcome(exit_code=None, output=output, seconds=seconds, timed_out=True)
        if result.returncode == _DOCKER_RUN_FAILED:
            error = _first_line(output).removeprefix("docker: ")
            error = error.removeprefix("Error response from daemon: ")
            return TestOutcome(exit_code=None, output=output, seconds=seconds, error=error)
        return TestOutcome(exit_code=result.returncode, output=output, seconds=seconds)

    @staticmethod
    def _remove(docker: list[str], environ: dict[str, str], name: str) -> None:
        """Kill and remove a container by name; --rm removes it too, asynchronously, so
        `rm` may answer "already in progress": wait until the daemon no longer knows it."""
        proc.run([*docker, "kill", name], env=environ, timeout=60)
        proc.run([*docker, "rm", "--force", name], env=environ, timeout=60)
        deadline = time.monotonic() + _REMOVE_WAIT
        while time.monotonic() < deadline:
            seen = proc.run([*docker, "container", "inspect", name], env=environ, timeout=60)
            if not seen.ok:
                return
            time.sleep(0.2)

    def imagetools_create(self, sources: list[str], tags: list[str]) -> str | None:
        """Join per-platform pushes into one multi-arch tag set; the error line, or None."""
        try:
            self._client.buildx.imagetools.create(sources=sources, tags=tags, **self._builder_arg())
        except python_on_whales.exceptions.DockerException as exc:
            return _first_line(exc.stderr)
        return None


def _tail(text: str) -> str:
    """The end of a test's output: where a failure says why."""
    lines = text.rstrip("\n").splitlines()[-_OUTPUT_TAIL_LINES:]
    return "\n".join(lines)[-_OUTPUT_TAIL_CHARS:]


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return "no details"


def _error_of(lines: list[str], exc: python_on_whales.exceptions.DockerException) -> str:
    """The line that says why: BuildKit's `ERROR:` summary, else the last words."""
    for line in reversed(lines):
        if line.startswith(("ERROR:", "error:")):
            return line
    stderr = (exc.stderr or "").strip().splitlines()
    return stderr[-1] if stderr else f"buildx exited with {exc.return_code}"
