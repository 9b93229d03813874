"""What reaches buildx and docker login, and how their failures are read: no engine needed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import python_on_whales.exceptions

from builder import proc
from builder.buildx import BakeResult, Buildx, _error_of
from builder.ci import compute_ci_facts
from builder.context import EngineOptions, compute_credentials
from builder.context import check_secret_sources as check_secrets
from builder.errors import ConfigError, RegistryError, UserError
from builder.pipeline import compute_source

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def docker_error(
    stderr: str | None = None, code: int = 1
) -> python_on_whales.exceptions.DockerException:
    return python_on_whales.exceptions.DockerException(
        ["docker", "buildx", "bake"], code, None, stderr.encode() if stderr is not None else None
    )


# -- which failures are worth another try ------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        (
            "ERROR: failed to push docker.io/acme/api:git-0123456: failed to do request: Head "
            '"http://127.0.0.1:5000/v2/acme/api/blobs/sha256:abc": dial tcp 127.0.0.1:5000: '
            "connect: connection refused"
        ),
        (
            "ERROR: failed to push 127.0.0.1:5000/acme/api:git-0123456: unexpected status from PUT "
            "request to http://127.0.0.1:5000/v2/acme/api/manifests/git-0123456: "
            "500 Internal Server Error"
        ),
        (
            "ERROR: failed to copy: httpReadSeeker: failed open: unexpected status code "
            "https://registry-1.docker.io/v2/library/python/manifests/3.12: 429 Too Many Requests"
        ),
        (
            "ERROR: failed to solve: python:3.12: failed to resolve source metadata: "
            "read tcp 10.0.0.2:41234->104.18.1.1:443: i/o timeout"
        ),
        "ERROR: failed to push: write tcp 10.0.0.2:1->10.0.0.3:2: write: broken pipe",
        "ERROR: failed to push: read: connection reset by peer",
        "ERROR: failed to push: unexpected EOF",
        "ERROR: failed to push: 502 Bad Gateway",
        "ERROR: failed to push: 503 Service Unavailable",
        "ERROR: failed to push: 504 Gateway Timeout",
        "ERROR: failed to solve: net/http: TLS handshake timeout",
        "ERROR: dial tcp: lookup registry-1.docker.io: Temporary failure in name resolution",
        "ERROR: failed to push: unexpected status: 503",
    ],
)
def test_transient(error: str) -> None:
    assert BakeResult(ok=False, metadata={}, log="", error=error).transient


@pytest.mark.parametrize(
    "error",
    [
        (
            "ERROR: failed to push docker.io/acme/api:git-0123456: unauthorized: "
            "authentication required"
        ),
        "ERROR: failed to push: denied: requested access to the resource is denied",
        "ERROR: failed to solve: docker.io/library/nope:latest: not found",
        (
            'ERROR: failed to solve: process "/bin/sh -c exit 1" did not complete successfully: '
            "exit code: 1"
        ),
        'ERROR: failed to solve: failed to compute cache key: "/missing.txt": not found',
        "ERROR: failed to solve: dockerfile parse error on line 3: unknown instruction: RUNN",
        "ERROR: failed to push: 401 Unauthorized",
        "ERROR: failed to push: 403 Forbidden",
        "ERROR: failed to push: 404 Not Found",
        "",
        pytest.param(
            f"ERROR: failed to solve: docker.io/acme/base@{EMPTY_SHA256}: not found",
            id="not-found-digest-holding-429",
        ),
        pytest.param(
            'ERROR: failed to solve: process "/bin/sh -c timeout 60 pytest" did not complete '
            "successfully: exit code: 124",
            id="run-command-mentions-timeout",
        ),
    ],
)
def test_not_transient(error: str) -> None:
    assert not BakeResult(ok=False, metadata={}, log="", error=error).transient


def test_a_success_is_never_transient() -> None:
    assert not BakeResult(ok=True, metadata={}, log="", error="connection refused").transient


# -- the error line ----------------------------------------------------------------------------


def test_error_of_picks_buildkits_summary_line() -> None:
    lines = [
        "#1 [internal] load build definition from Dockerfile",
        "#5 [2/2] RUN false",
        '#5 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1',
        "------",
        "ERROR: failed to solve: exit code: 1 (the summary)",
        "some trailing chatter",
    ]
    assert _error_of(lines, docker_error("stderr words")) == (
        "ERROR: failed to solve: exit code: 1 (the summary)"
    )


def test_error_of_takes_the_last_error_line() -> None:
    lines = ["error: first", "ERROR: second"]
    assert _error_of(lines, docker_error()) == "ERROR: second"


def test_error_of_skips_a_steps_own_error_line() -> None:
    lines = ['#5 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1']
    assert _error_of(lines, docker_error("ERROR: failed to solve: summary\n")) == (
        "ERROR: failed to solve: summary"
    )


def test_error_of_falls_back_to_stderr_then_the_exit_code() -> None:
    assert _error_of(["#1 done"], docker_error("a\nlast words\n\n")) == ("last words")
    assert _error_of([], docker_error(None, code=17)) == "buildx exited with 17"


# -- bake and imagetools through a fake python-on-whales client ---------------------------------


class FakeBake:
    """`client.buildx.bake(...)`: records the call and the bake file, then streams lines."""

    def __init__(
        self,
        lines: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        error: Exception | None = None,
    ) -> None:
        self.lines = lines
        self.metadata = metadata
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def __call__(self, targets: list[str], **kwargs: Any) -> Iterator[str]:
        files: list[Path] = kwargs["files"]
        self.calls.append(
            {
                "targets": targets,
                "definition": json.loads(files[0].read_text(encoding="utf-8")),
                "file_name": files[0].name,
                **{k: v for k, v in kwargs.items() if k != "files"},
            }
        )
        return self.stream(kwargs["metadata_file"])

    def stream(self, metadata_file: Path) -> Iterator[str]:
        for line in self.lines:
            yield f"{line}\n"
        if self.error is not None:
            raise self.error
        if self.metadata is not None:
            metadata_file.write_text(json.dumps(self.metadata), encoding="utf-8")


class FakeImagetools:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[list[str], list[str]]] = []

    def create(self, *, sources: list[str], tags: list[str]) -> None:
        self.calls.append((sources, tags))
        if self.error is not None:
            raise self.error


class FakeBuildxCommands:
    def __init__(self, bake: FakeBake, imagetools: FakeImagetools) -> None:
        self.bake = bake
        self.imagetools = imagetools


class FakeClient:
    def __init__(self, bake: FakeBake | None = None, imagetools: FakeImagetools | None = None):
        self.buildx = FakeBuildxCommands(bake or FakeBake(), imagetools or FakeImagetools())


def wired(client: FakeClient, environ: Mapping[str, str] | None = None) -> Buildx:
    """A Buildx whose python-on-whales client is `client`."""

    class Wired(Buildx):
        def _make_client(self) -> Any:
            return client

    return Wired(EngineOptions(environ={} if environ is None else environ))


DEFINITION = {"target": {"api": {"context": "/src/images/api", "output": ["type=registry"]}}}


def test_bake_hands_buildx_a_bake_file_and_reads_the_metadata() -> None:
    meta = {"api": {"containerimage.digest": EMPTY_SHA256}}
    bake = FakeBake(lines=["#1 load", "#2 push"], metadata=meta)
    seen: list[str] = []
    result = wired(FakeClient(bake)).bake(DEFINITION, ["api"], on_line=seen.append)
    assert result == BakeResult(ok=True, metadata=meta, log="#1 load\n#2 push")
    assert seen == ["#1 load", "#2 push"]
    [call] = bake.calls
    assert call["targets"] == ["api"]
    assert call["definition"] == DEFINITION
    assert call["file_name"] == "docker-bake.json"
    assert call["progress"] == "plain"
    assert call["stream_logs"] is True
    assert call["metadata_file"].name == "metadata.json"
    assert not call["metadata_file"].parent.exists()  # the temp dir is gone


def test_bake_without_metadata_is_still_ok() -> None:
    result = wired(FakeClient(FakeBake())).bake(DEFINITION, ["api"])
    assert result == BakeResult(ok=True, metadata={}, log="")


def test_a_failed_bake_returns_its_error_line_and_never_raises() -> None:
    bake = FakeBake(
        lines=["#3 RUN false", "ERROR: failed to solve: exit code: 1"],
        error=docker_error("ERROR: ignored, the log has a better line"),
    )
    result = wired(FakeClient(bake)).bake(DEFINITION, ["api"])
    assert result == BakeResult(
        ok=False,
        metadata={},
        log="#3 RUN false\nERROR: failed to solve: exit code: 1",
        error="ERROR: failed to solve: exit code: 1",
    )


def test_imagetools_create() -> None:
    tools = FakeImagetools()
    buildx = wired(FakeClient(imagetools=tools))
    assert buildx.imagetools_create(["r/a@sha256:1", "r/a@sha256:2"], ["r/a:git-1"]) is None
    assert tools.calls == [(["r/a@sha256:1", "r/a@sha256:2"], ["r/a:git-1"])]


def test_imagetools_create_returns_the_first_error_line() -> None:
    tools = FakeImagetools(docker_error("\nERROR: unauthorized\nmore\n"))
    assert wired(FakeClient(imagetools=tools)).imagetools_create(["a"], ["b"]) == (
        "ERROR: unauthorized"
    )


# -- docker login ------------------------------------------------------------------------------


class FakeRun:
    def __init__(self, returncode: int = 0, stderr: bytes = b"") -> None:
        self.returncode = returncode
        self.stderr = stderr
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kw: Any
    ) -> proc.Result:
        config = Path((env or {})["DOCKER_CONFIG"]) / "config.json"
        self.calls.append(
            {"argv": tuple(argv), "env": dict(env or {}), "config": json.loads(config.read_text())}
        )
        self.calls[-1].update(kw)
        return proc.Result(
            argv=tuple(argv), returncode=self.returncode, stdout=b"", stderr=self.stderr
        )


def private_buildx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run: FakeRun) -> Buildx:
    """A Buildx whose `docker login` is `run`, over an existing config with a creds helper."""
    monkeypatch.setattr(proc, "run", run)
    existing = tmp_path / "docker"
    existing.mkdir()
    (existing / "config.json").write_text(
        json.dumps({"credsStore": "desktop", "auths": {"other.io": {}}}), encoding="utf-8"
    )
    return wired(FakeClient(), {"DOCKER_CONFIG": str(existing), "PATH": "/usr/bin"})


def test_login_sends_the_password_on_stdin_into_a_private_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = FakeRun()
    with private_buildx(monkeypatch, tmp_path, run) as buildx:
        buildx.login("docker.io", "acme-bot", "s3cret-token")
        [call] = run.calls
        private = Path(call["env"]["DOCKER_CONFIG"])
        assert private.is_dir()
    assert call["argv"] == (
        "docker",
        "login",
        "--username",
        "acme-bot",
        "--password-stdin",
        "https://index.docker.io/v1/",
    )
    assert call["stdin"] == b"s3cret-token"
    assert all("s3cret" not in arg for arg in call["argv"])
    assert private != tmp_path / "docker"
    assert call["env"]["PATH"] == "/usr/bin"
    assert "credsStore" not in call["config"]  # no helper may take the token elsewhere
    assert call["config"]["auths"] == {"other.io": {}}
    assert str(tmp_path / "docker" / "cli-plugins") in call["config"]["cliPluginsExtraDirs"]
    assert not private.exists()  # the credentials go with the run


def test_login_to_another_registry_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = FakeRun()
    with private_buildx(monkeypatch, tmp_path, run) as buildx:
        buildx.login("ghcr.io", "acme-bot", "s3cret-token")
    assert run.calls[0]["argv"][-1] == "ghcr.io"


def test_a_refused_login_is_a_registry_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = FakeRun(1, b"Error response from daemon: Get: unauthorized: bad s3cret-token\n")
    with private_buildx(monkeypatch, tmp_path, run) as buildx, pytest.raises(RegistryError) as info:
        buildx.login("docker.io", "acme-bot", "s3cret-token")
    assert info.value.message == (
        "login to docker.io as 'acme-bot' failed: Get: unauthorized: bad ***"
    )
    assert info.value.hint == "check the username and token/password"


# -- credentials, source label and secrets (the inputs the engine is handed) -------------------


def credentials_for(registry: str, environ: dict[str, str]) -> tuple[str, str] | None:
    found = compute_credentials(registry, environ)
    return (found.username, found.password) if found is not None else None


HUB = {"DOCKERHUB_USERNAME": "hub-user", "DOCKERHUB_TOKEN": "hub-token"}
ANY = {"BUILDER_REGISTRY_USER": "reg-user", "BUILDER_REGISTRY_PASSWORD": "reg-pass"}


@pytest.mark.parametrize(
    ("registry", "environ", "expected"),
    [
        ("docker.io", {}, None),
        ("docker.io", HUB, ("hub-user", "hub-token")),
        ("index.docker.io", HUB, ("hub-user", "hub-token")),
        ("registry-1.docker.io", HUB, ("hub-user", "hub-token")),
        ("docker.io", ANY, ("reg-user", "reg-pass")),
        ("docker.io", {**HUB, **ANY}, ("hub-user", "hub-token")),
        ("ghcr.io", HUB, None),
        ("ghcr.io", ANY, ("reg-user", "reg-pass")),
        ("ghcr.io", {**HUB, **ANY}, ("reg-user", "reg-pass")),
        ("localhost:5000", ANY, ("reg-user", "reg-pass")),
        ("ghcr.io", {"DOCKERHUB_USERNAME": "half"}, None),  # Hub's vars mean nothing here
        ("docker.io", {"DOCKERHUB_USERNAME": "", "DOCKERHUB_TOKEN": ""}, None),
    ],
)
def test_credentials_for(
    registry: str, environ: dict[str, str], expected: tuple[str, str] | None
) -> None:
    assert credentials_for(registry, environ) == expected


@pytest.mark.parametrize(
    ("registry", "environ", "message"),
    [
        (
            "docker.io",
            {"DOCKERHUB_USERNAME": "u"},
            "DOCKERHUB_TOKEN is not set but DOCKERHUB_USERNAME is",
        ),
        (
            "docker.io",
            {"DOCKERHUB_TOKEN": "t", **ANY},
            "DOCKERHUB_USERNAME is not set but DOCKERHUB_TOKEN is",
        ),
        (
            "ghcr.io",
            {"BUILDER_REGISTRY_PASSWORD": "p"},
            "BUILDER_REGISTRY_USER is not set but BUILDER_REGISTRY_PASSWORD is",
        ),
        (
            "ghcr.io",
            {"BUILDER_REGISTRY_USER": "u", "BUILDER_REGISTRY_PASSWORD": ""},
            "BUILDER_REGISTRY_PASSWORD is not set but BUILDER_REGISTRY_USER is",
        ),
    ],
)
def test_credentials_half_set_are_a_config_error(
    registry: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        credentials_for(registry, environ)
    assert info.value.message == message


GITHUB = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/mono"}


@pytest.mark.parametrize(
    ("environ", "remote", "expected"),
    [
        ({}, "git@github.com:acme/mono.git", "https://github.com/acme/mono"),
        ({}, "git@gitlab.example.com:group/sub/mono", "https://gitlab.example.com/group/sub/mono"),
        ({}, "https://github.com/acme/mono.git", "https://github.com/acme/mono"),
        ({}, "https://github.com/acme/mono", "https://github.com/acme/mono"),
        ({}, "https://user:token@github.com/acme/mono.git", "https://github.com/acme/mono"),
        (
            {},
            "https://x-access-token:ghs_abc123@github.com/acme/mono",
            "https://github.com/acme/mono",
        ),
        ({}, "https://p%40ss@gitea.local:3000/acme/mono.git", "https://gitea.local:3000/acme/mono"),
        ({}, "http://token@127.0.0.1:8080/acme/mono.git", "http://127.0.0.1:8080/acme/mono"),
        ({}, None, None),
        ({}, "", None),
        ({}, "/srv/git/mono.git", None),
        ({}, "file:///srv/git/mono.git", None),
        ({}, "./mono", None),
        ({}, "../mono.git", None),
        ({}, "other-repo", None),  # a bare relative remote is a path, not a web address
        ({}, "ssh://git@github.com/acme/mono.git", "https://github.com/acme/mono"),
        ({}, "deploy@git.acme.io:team/mono", "https://git.acme.io/team/mono"),
        (GITHUB, "git@gitlab.example.com:other/repo.git", "https://github.com/acme/mono"),
        (GITHUB, None, "https://github.com/acme/mono"),
        (
            {**GITHUB, "GITHUB_SERVER_URL": "https://ghe.example.com"},
            None,
            "https://ghe.example.com/acme/mono",
        ),
        (
            {"GITHUB_REPOSITORY": "acme/mono"},
            "https://github.com/acme/fork.git",
            "https://github.com/acme/fork",
        ),
    ],
)
def test_compute_source(environ: dict[str, str], remote: str | None, expected: str | None) -> None:
    ci = compute_ci_facts({**environ, "GITHUB_ACTIONS": "true"} if environ else {})
    assert compute_source(ci, remote) == expected


def test_check_secrets_accepts_present_sources(tmp_path: Path) -> None:
    src = tmp_path / "pip.conf"
    src.write_text("[global]\n", encoding="utf-8")
    check_secrets(("id=npm,env=NPM_TOKEN", f"id=pip,src={src}"), {"NPM_TOKEN": "t"})
    check_secrets((), {})


@pytest.mark.parametrize(
    ("spec", "environ", "message"),
    [
        (
            "id=npm,env=NPM_TOKEN",
            {},
            "--secret id=npm,env=NPM_TOKEN: environment variable NPM_TOKEN is not set or empty",
        ),
        (
            "id=npm,env=NPM_TOKEN",
            {"NPM_TOKEN": ""},
            "--secret id=npm,env=NPM_TOKEN: environment variable NPM_TOKEN is not set or empty",
        ),
        (
            "id=pip,src={tmp}/missing.conf",
            {},
            "--secret id=pip,src={tmp}/missing.conf: file {tmp}/missing.conf does not exist",
        ),
        (
            "id=pip,src={tmp}",  # a directory is no secret file
            {},
            "--secret id=pip,src={tmp}: file {tmp} does not exist",
        ),
    ],
)
def test_check_secrets_stops_on_missing_sources(
    tmp_path: Path, spec: str, environ: dict[str, str], message: str
) -> None:
    fill: Callable[[str], str] = lambda text: text.format(tmp=tmp_path)  # noqa: E731
    with pytest.raises(UserError) as info:
        check_secrets((fill(spec),), environ)
    assert info.value.message == fill(message)


def test_scp_remotes_read_as_the_backtracking_pattern_read_them() -> None:
    import random
    import re

    from builder.pipeline import _SCP_REMOTE_RE

    before = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+\.[\w.-]+):(?!//)(?P<path>.+)$")
    rng = random.Random(3)  # noqa: S311 - a fixed seed, not a secret
    alphabet = ["a", ".", "-", "_", "@", ":", "/", "x", "\u00e9", " "]
    for _ in range(30000):
        remote = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        old, new = before.match(remote), _SCP_REMOTE_RE.match(remote)
        assert (old and old.groupdict()) == (new and new.groupdict()), remote
    # The pattern before took seconds on this one.
    assert _SCP_REMOTE_RE.match("a." * 16_000) is None
