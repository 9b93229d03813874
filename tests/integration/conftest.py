"""Real-engine fixtures: dockerd + buildx + QEMU + the loopback registry (scripts/engine)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.registry_api import BlobReader, RegistryAPI

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass(frozen=True)
class Engine:
    registry: str  # host:port of the loopback registry
    env: Mapping[str, str]  # DOCKER_HOST and friends for child processes

    @property
    def api(self) -> RegistryAPI:
        return RegistryAPI(self.registry)

    def busybox(self) -> str:
        return f"{self.registry}/upstream/busybox:latest"


def _engine_problem(env: Mapping[str, str], registry: str) -> str | None:
    checks = (["docker", "buildx", "version"], ["docker", "info", "--format", "{{.ServerVersion}}"])
    for argv in checks:
        try:
            done = subprocess.run(argv, env=dict(env), capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(argv)}: {exc}"
        if done.returncode != 0:
            return f"{' '.join(argv)}: {done.stderr.decode(errors='replace').strip()[:300]}"
    try:
        urllib.request.urlopen(f"http://{registry}/v2/", timeout=10).close()
    except OSError as exc:
        return f"registry {registry}: {exc}"
    api = RegistryAPI(registry)
    if not api.tags("upstream/busybox"):
        return "upstream/busybox is not seeded (run scripts/engine seed --only busybox)"
    return None


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The real engine, or a loud failure under CI=true (a skip only on a developer's box)."""
    env = dict(os.environ)
    registry = env.get("BUILDER_TEST_REGISTRY", "127.0.0.1:5000")
    problem = _engine_problem(env, registry)
    if problem is not None:
        message = f"engine not available: {problem}; start it with scripts/engine up && seed"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)  # only outside CI: CI=true fails above
    return Engine(registry=registry, env=env)


@dataclass
class Repo:
    path: Path
    namespace: str
    engine: Engine

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            check=True,
        )
        return done.stdout.decode().strip()

    def write(self, files: Mapping[str, str | None]) -> None:
        for name, text in files.items():
            target = self.path / name
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def commit(self, files: Mapping[str, str | None], message: str = "change") -> str:
        self.write(files)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def repository(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    def builder(
        self, *args: str, env: Mapping[str, str] | None = None, check_exit: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI in a child process, as a user or CI would."""
        full_env = {**self.engine.env, **GIT_ENV, "CI": "true", **(env or {})}
        # The code of this checkout, whatever checkout the interpreter was installed from.
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        for key in ("GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_EVENT_NAME"):
            if env is None or key not in env:
                full_env.pop(key, None)
        done = subprocess.run(
            [sys.executable, "-m", "builder", *args],
            cwd=self.path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if check_exit is not None:
            assert done.returncode == check_exit, (
                f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def metadata(self, path: Path) -> dict[str, dict[str, object]]:
        return dict(json.loads(path.read_text(encoding="utf-8"))["images"])


MakeRepo = Callable[[Mapping[str, str]], Repo]


@pytest.fixture
def make_build_repo(engine: Engine, tmp_path: Path) -> MakeRepo:
    """A git repo whose builder.yaml pushes to a fresh namespace of the loopback registry."""

    def make(files: Mapping[str, str]) -> Repo:
        namespace = f"t{uuid.uuid4().hex[:10]}"
        path = tmp_path / "repo"
        path.mkdir()
        repo = Repo(path=path, namespace=namespace, engine=engine)
        repo.git("init", "-q", "-b", "main")
        config = (
            f"registry: {engine.registry}\nnamespace: {namespace}\n"
            f"build_args:\n  BUSYBOX_IMAGE: {engine.busybox()}\n"
        )
        repo.commit({"builder.yaml": config, **files}, "initial")
        return repo

    return make


# -- Additions for the fault tests (tests/integration/test_faults.py) -----------------------
# A private docker-registry process per test, on a free loopback port, optionally behind
# htpasswd basic auth: one the tests may kill (by its pid) and restart on the same storage,
# never the shared registry on :5000.

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalRegistry:
    root: Path  # config, htpasswd, log and storage live here
    port: int
    users: Mapping[str, str] = field(default_factory=dict)  # user -> password; empty: no auth
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    def api(self, auth: tuple[str, str] | None = None) -> BlobReader:
        return BlobReader(self.address, auth=auth)

    def _config(self) -> Path:
        import bcrypt  # dev extra: htpasswd bcrypt hashes

        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.address}",
            "  secret: builder-fault-tests",  # the same across restarts
        ]
        if self.users:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
                    for user, pw in self.users.items()
                ),
                encoding="utf-8",
            )
            lines += ["auth:", "  htpasswd:", "    realm: builder-tests", f"    path: {htpasswd}"]
        config = self.root / "config.yml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2).close()
        except urllib.error.HTTPError as exc:
            return exc.code == 401 and bool(self.users)
        except OSError:
            return False
        return not self.users  # 200 without credentials only when auth is off

    def start(self) -> LocalRegistry:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.storage.mkdir(parents=True, exist_ok=True)
        config = self._config()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"docker-registry exited with {self.process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"docker-registry did not answer on {self.address} within 30 s")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL, by pid: the registry dies wherever it is."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # by its pid
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


StartRegistry = Callable[..., LocalRegistry]


@pytest.fixture
def local_registry(engine: Engine, tmp_path: Path) -> Iterator[StartRegistry]:
    """`local_registry(users={"ci": "pw"})`: a private registry, stopped by pid at teardown."""
    started: list[LocalRegistry] = []

    def start(users: Mapping[str, str] | None = None) -> LocalRegistry:
        root = tmp_path / f"registry{len(started)}"
        root.mkdir()
        registry = LocalRegistry(root=root, port=free_port(), users=dict(users or {}))
        started.append(registry)
        return registry.start()

    yield start
    for registry in started:
        registry.stop()
