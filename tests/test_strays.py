"""Files git ignores but the disk holds: a build from the disk sends them, so the preview
names them and a push refuses them (real repos, the real CLI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from builder.changes import compute_strays
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
