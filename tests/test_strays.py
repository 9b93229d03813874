"""Files git ignores but the disk holds: a build from the disk sends them, so the preview
names them and a push refuses them (real repos, the real CLI)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from builder.changes import compute_strays
from builder.context import compute_context
from builder.errors import RegistryError, UserError
from builder.pipeline import Guards, KeyUse, Output, Prepared, Scope, prepare
from builder.registry import Registry
from tests.conftest import invoke, load_files

MakeRepo = Callable[..., Path]

TREE = {
    "builder.yaml": "registry: 127.0.0.1:9\nnamespace: acme\n",
    ".gitignore": "dist/\nnode_modules/\n*.log\n",
    "images/api/Dockerfile": "FROM python:3.12\nCOPY . /app\n",
    "images/api/.dockerignore": "node_modules\n*.log\n",
    "images/api/app.py": "\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\nCOPY . /cli\n",
    "images/cli/main.sh": "\n",
}


def with_artifacts(repo: Path) -> Path:
    (repo / "images/api/dist").mkdir()
    (repo / "images/api/dist/app.js").write_text("built\n")
    (repo / "images/api/node_modules/left-pad").mkdir(parents=True)
    (repo / "images/api/node_modules/left-pad/index.js").write_text("\n")
    (repo / "images/api/debug.log").write_text("\n")
    (repo / "images/cli/run.log").write_text("\n")
    return repo


def test_compute_strays_keeps_what_each_dockerignore_keeps() -> None:
    graph = load_files(TREE).graph
    paths = [
        "images/api/dist/app.js",
        "images/api/node_modules/left-pad/index.js",
        "images/api/debug.log",
        "images/cli/run.log",
        "docs/notes.txt",
    ]
    assert compute_strays(graph, paths) == {
        "api": ("images/api/dist/app.js",),
        "cli": ("images/cli/run.log",),
    }


def test_the_preview_names_ignored_files_a_build_would_send(make_repo: MakeRepo) -> None:
    repo = with_artifacts(make_repo(TREE))
    result = invoke("affected", "-C", repo, "--base", "HEAD")
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if "git ignores" in line]
    said = "git ignores are in its build context and a build from this checkout sends them"
    assert lines == [
        f"warning: api: 1 file(s) {said}: images/api/dist/app.js",
        f"warning: cli: 1 file(s) {said}: images/cli/run.log",
    ]


def test_a_clean_checkout_has_nothing_to_say(make_repo: MakeRepo) -> None:
    result = invoke("affected", "-C", make_repo(TREE), "--base", "HEAD")
    assert (result.exit_code, result.stderr) == (0, "")


def test_a_push_refuses_them_before_any_work(make_repo: MakeRepo) -> None:
    repo = with_artifacts(make_repo(TREE))
    result = invoke("build", "-C", repo, "--all", "--push", env={"CI": "true"})
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "error: 2 file(s) git ignores are in the build contexts of api, cli: "
        "images/api/dist/app.js, images/cli/run.log; refusing to push images that no commit "
        "describes (delete them, or pass --include-ignored to send them (their content then "
        "counts in the content key, so CI's clean checkout never mistakes it for its own))"
    )


def test_a_dry_run_only_warns(make_repo: MakeRepo) -> None:
    repo = with_artifacts(make_repo(TREE))
    result = invoke("build", "-C", repo, "--all", "--push", "--dry-run", env={"CI": "true"})
    assert result.exit_code == 0
    assert "images/api/dist/app.js" in result.stderr


def test_only_ignored_files_the_build_reads_are_strays() -> None:
    graph = load_files(
        {**TREE, "images/cli/Dockerfile": "FROM alpine:3.20\nCOPY main.sh bin/ /cli/\n"}
    ).graph
    paths = ["images/cli/run.log", "images/cli/bin/tool", "images/api/dist/app.js"]
    assert compute_strays(graph, paths) == {
        "api": ("images/api/dist/app.js",),
        "cli": ("images/cli/bin/tool",),
    }


# -- ONBUILD triggers in an upstream base, learned by reconcile ------------------------------
# The app's Dockerfile reads nothing from its context; its base's config carries
# `ONBUILD COPY . /app/`, which the registry tells reconcile about.

UPSTREAM = "vendor.example/up/base:1"
UPSTREAM_DIGEST = "sha256:" + "b" * 64
TRIGGERED = {
    "builder.yaml": "registry: 127.0.0.1:9\nnamespace: acme\n",
    ".gitignore": "*.log\n",
    "images/app/Dockerfile": f"FROM {UPSTREAM}\nLABEL job=app\n",
    "images/app/data.txt": "v1\n",
}


class TriggerRegistry:
    """The registry as prepare() asks it: the upstream base has a digest and a config with
    `answers` (one per read, the last repeated); the repo's own images are not there."""

    def __init__(self, *answers: tuple[str, ...]) -> None:
        self.answers = list(answers)
        self.requests = 0
        self._lock = threading.Lock()

    def use_login(self, login: object) -> None:
        pass

    def head(self, text: str) -> str | None:
        with self._lock:
            self.requests += 1
        return UPSTREAM_DIGEST if text == UPSTREAM else None

    def triggers(self, text: str) -> tuple[str, ...] | None:
        with self._lock:
            self.requests += 1
            answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        assert text == f"vendor.example/up/base@{UPSTREAM_DIGEST}"
        return answer

    def read_artifact(self, reference: str) -> bytes | None:  # noqa: ARG002
        return None  # no state yet


def prepare_push(
    repo: Path,
    registry: TriggerRegistry,
    *,
    real_run: bool = True,
    include: bool = False,
    reconcile: bool | None = None,
) -> tuple[Prepared, list[str]]:
    logs: list[str] = []
    prepared = prepare(
        compute_context(repo, {"CI": "false", "HOME": str(repo)}),
        cast(Registry, registry),
        scope=Scope(everything="--all"),
        output=Output(push=True),
        keys=KeyUse(reconcile=reconcile),
        guards=Guards(real_run=real_run, include_ignored=include),
        log=logs.append,
    )
    return prepared, logs


def test_a_push_refuses_ignored_files_an_upstream_trigger_would_send(
    make_repo: MakeRepo,
) -> None:
    repo = make_repo(TRIGGERED)
    (repo / "images/app/debug.log").write_text("local\n")
    # Without triggers the Dockerfile reads nothing: no stray, and the push may go on.
    prepared, _ = prepare_push(repo, TriggerRegistry(()))
    assert dict(prepared.selection.strays) == {}
    with pytest.raises(UserError) as refused:
        prepare_push(repo, TriggerRegistry(("COPY . /app/",)))
    assert str(refused.value).startswith(
        "1 file(s) git ignores are in the build contexts of app: images/app/debug.log; "
        "refusing to push images that no commit describes"
    )
    # A dry run says so instead, when it asks the registry (outside CI: --reconcile).
    prepared, logs = prepare_push(
        repo, TriggerRegistry(("COPY . /app/",)), real_run=False, reconcile=True
    )
    assert dict(prepared.selection.strays) == {"app": ("images/app/debug.log",)}
    said = (
        "warning: app: 1 file(s) git ignores are in its build context and a build from this "
        "checkout sends them: images/app/debug.log"
    )
    assert [line for line in logs if "git ignores" in line] == [said]


def test_sent_with_include_ignored_they_count_in_the_key(make_repo: MakeRepo) -> None:
    repo = make_repo(TRIGGERED)
    clean, _ = prepare_push(repo, TriggerRegistry(("COPY . /app/",)))
    (repo / "images/app/debug.log").write_text("local\n")
    sent, _ = prepare_push(repo, TriggerRegistry(("COPY . /app/",)), include=True)
    assert dict(sent.selection.strays) == {"app": ("images/app/debug.log",)}
    assert sent.keys is not None
    assert clean.keys is not None
    # CI's clean checkout computes another key, so it never takes this image for its own.
    assert sent.keys.keys["app"] != clean.keys.keys["app"]
    (repo / "images/app/debug.log").write_text("changed\n")
    again, _ = prepare_push(repo, TriggerRegistry(("COPY . /app/",)), include=True)
    assert again.keys is not None
    assert again.keys.keys["app"] != sent.keys.keys["app"]


def test_a_registry_that_changes_its_answer_mid_run_stops_the_push(
    make_repo: MakeRepo,
) -> None:
    repo = make_repo(TRIGGERED)
    (repo / "images/app/debug.log").write_text("local\n")
    with pytest.raises(RegistryError, match="changed its answer"):
        prepare_push(repo, TriggerRegistry(("COPY . /app/",), ()), include=True)
