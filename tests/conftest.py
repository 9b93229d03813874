"""Shared fixtures: real git repositories in temp dirs, and an environment free of CI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from builder.cli import app
from builder.repo import Overrides, Repo, load_repo

# Pinned so commits (and their ids) do not depend on who runs the tests, or when.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Builder Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_NAME": "Builder Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
}
# What CI or the user's shell may set that would change what builder decides.
CLEARED = (
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_EVENT_PATH",
    "GITHUB_EVENT_NAME",
    "GITHUB_SHA",
    "GITHUB_REF",
    "GITLAB_CI",
    "JENKINS_URL",
    "JENKINS_HOME",
    "BUILDER_REGISTRY",
    "BUILDER_NAMESPACE",
    "BUILDER_DEBUG",
)

Files = Mapping[str, str | None]


@pytest.fixture(autouse=True)
def clean_environ(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    if "integration" in request.node.path.parts:
        yield  # the engine tests manage their own environment
        return
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("GIT_"):  # e.g. GIT_DIR when run from a git hook
            monkeypatch.delenv(name)
    config = tmp_path_factory.getbasetemp() / "gitconfig"
    if not config.exists():
        config.write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    yield


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its stdout; a failure fails the test loudly."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def write_files(repo: Path, files: Files) -> None:
    """Write each file (creating directories); None deletes the file."""
    for relative, text in files.items():
        path = repo / relative
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


def commit(repo: Path, files: Files | None = None, message: str = "change") -> str:
    """Write `files`, stage everything and commit; returns the new commit's id."""
    write_files(repo, files or {})
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "--message", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """`make_repo({"images/api/Dockerfile": "FROM python:3.12"})`: a repo with one commit."""
    count = 0

    def make(files: Files, *, committed: bool = True) -> Path:
        nonlocal count
        count += 1
        repo = tmp_path / f"repo{count}"
        repo.mkdir()
        git(repo, "init", "--quiet")
        write_files(repo, files)
        if committed:
            commit(repo, message="initial")
        return repo

    return make


class DictSnapshot:
    """A repo snapshot held in memory, for loading repos without git."""

    label = "in memory"

    def __init__(self, files: Mapping[str, str | bytes]) -> None:
        self.files = {p: t.encode() if isinstance(t, str) else t for p, t in files.items()}

    def list_files(self, roots: Sequence[str]) -> tuple[str, ...]:
        return tuple(sorted(p for p in self.files if any(p.startswith(f"{r}/") for r in roots)))

    def read(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        return {p: self.files.get(p) for p in paths}

    def symlinks(self, paths: Sequence[str]) -> frozenset[str]:  # noqa: ARG002 - none here
        return frozenset()

    def linked_directories(self, directories: Sequence[str]) -> frozenset[str]:  # noqa: ARG002
        return frozenset()

    def link_targets(self, paths: Sequence[str]) -> dict[str, str]:  # noqa: ARG002 - none here
        return {}

    def gitlinks(self, paths: Sequence[str]) -> frozenset[str]:  # noqa: ARG002 - none here
        return frozenset()


def load_files(files: Mapping[str, str | bytes], **overrides: str) -> Repo:
    """Load a repo from `{path: text}`, as builder would from a commit."""
    return load_repo(DictSnapshot(files), Overrides(**overrides))


def invoke(*args: str | Path, env: Mapping[str, str] | None = None) -> Result:
    """Run the CLI in-process; stdout and stderr stay apart."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    # A bug, not a user error, would surface as a traceback: never acceptable.
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), result.exception
    return result
