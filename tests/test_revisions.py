"""Choosing base and head: flags, GitHub Actions events, new branches, shallow and bad clones."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.context import compute_context
from builder.errors import GitError
from builder.git import NULL_SHA, Git
from builder.repo import Overrides
from builder.reports import Selection
from builder.workspace import select
from tests.conftest import commit, git, invoke

MakeRepo = Callable[..., Path]
ALL = ("api", "cli", "worker")
TREE = {
    "builder.yaml": "namespace: acme\n",
    "images/api/Dockerfile": "FROM python:3.12\nCOPY app.py /\n",
    "images/api/app.py": "\n",
    "images/worker/Dockerfile": "FROM acme/api\nCOPY job.py /\n",
    "images/worker/job.py": "\n",
    "images/cli/Dockerfile": "FROM alpine\nCOPY main.sh /\n",
    "images/cli/main.sh": "\n",
}


def actions_env(tmp_path: Path, event_name: str, event: object) -> dict[str, str]:
    path = tmp_path / f"event-{event_name}.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(path),
    }


def select_in(repo: Path, environ: dict[str, str], **flags: str) -> Selection:
    ctx = compute_context(repo, {**os.environ, **environ}, head=flags.get("head"))
    return select(ctx, base=flags.get("base"), overrides=Overrides())


@pytest.fixture
def history(make_repo: MakeRepo) -> tuple[Path, list[str]]:
    """main: initial, cli changed, worker changed, api changed (newest last)."""
    repo = make_repo(TREE)
    shas = [git(repo, "rev-parse", "HEAD")]
    shas.append(commit(repo, {"images/cli/main.sh": "1\n"}))
    shas.append(commit(repo, {"images/worker/job.py": "2\n"}))
    shas.append(commit(repo, {"images/api/app.py": "3\n"}))
    return repo, shas


def test_push_event_compares_before_with_head(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, shas = history
    env = actions_env(tmp_path, "push", {"before": shas[1], "after": shas[3]})
    selection = select_in(repo, env)
    assert selection.affected.names == ("api", "worker")
    assert (selection.range.base, selection.range.head) == (shas[1], shas[3])
    assert selection.range.base_label == shas[1][:12]
    assert selection.warnings == ()


def test_push_event_spanning_several_commits(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, shas = history
    env = actions_env(tmp_path, "push", {"before": shas[0], "after": shas[3]})
    assert select_in(repo, env).affected.names == ALL


def test_pull_request_event_uses_the_base_sha(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, shas = history
    event = {"pull_request": {"base": {"sha": shas[2]}, "head": {"sha": shas[3]}}}
    selection = select_in(repo, actions_env(tmp_path, "pull_request", event))
    assert selection.affected.names == ("api", "worker")
    assert selection.range.base == shas[2]


@pytest.mark.parametrize(
    ("event_name", "event"),
    [
        ("workflow_dispatch", {}),
        ("schedule", {"before": "ignored"}),
        ("push", {"before": 42}),
        ("push", ["not", "a", "mapping"]),
        ("pull_request", {"pull_request": "odd"}),
    ],
)
def test_other_events_fall_back_to_the_last_commit(
    history: tuple[Path, list[str]], tmp_path: Path, event_name: str, event: object
) -> None:
    repo, shas = history
    selection = select_in(repo, actions_env(tmp_path, event_name, event))
    assert selection.affected.names == ("api", "worker")
    assert selection.range.base == shas[2]


def test_unreadable_event_falls_back_to_the_last_commit(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, shas = history
    env = actions_env(tmp_path, "push", {})
    env["GITHUB_EVENT_PATH"] = str(tmp_path / "missing.json")
    assert select_in(repo, env).range.base == shas[2]


def test_event_ignored_outside_github_actions(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, shas = history
    env = actions_env(tmp_path, "push", {"before": shas[0]})
    del env["GITHUB_ACTIONS"]
    assert select_in(repo, env).range.base == shas[2]


def test_base_flag_beats_the_event(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    env = actions_env(tmp_path, "push", {"before": shas[0]})
    assert select_in(repo, env, base=shas[2]).affected.names == ("api", "worker")


class TestNewBranch:
    """A push that creates a branch has `before` = 40 zeros."""

    def test_merge_base_with_the_default_branch(
        self, history: tuple[Path, list[str]], tmp_path: Path
    ) -> None:
        repo, shas = history
        git(repo, "switch", "--quiet", "-c", "feature", shas[1])
        commit(repo, {"images/worker/job.py": "feature\n"})
        selection = select_in(repo, actions_env(tmp_path, "push", {"before": NULL_SHA}))
        assert selection.affected.names == ("worker",)
        assert selection.range.base == shas[1]
        assert selection.range.base_label == "merge-base(main)"
        assert selection.warnings == ("new branch: comparing with its merge base with main",)

    def test_a_branch_made_at_mains_tip_changed_nothing(
        self, history: tuple[Path, list[str]], tmp_path: Path
    ) -> None:
        repo, shas = history
        git(repo, "switch", "--quiet", "-c", "feature")
        selection = select_in(repo, actions_env(tmp_path, "push", {"before": NULL_SHA}))
        assert selection.affected.names == ()
        assert selection.range.base == shas[3]

    def test_the_default_branchs_first_push_builds_everything(
        self, history: tuple[Path, list[str]], tmp_path: Path
    ) -> None:
        repo, _ = history
        selection = select_in(repo, actions_env(tmp_path, "push", {"before": NULL_SHA}))
        assert selection.affected.names == ALL
        assert selection.range.base is None

    def test_default_branch_comes_from_builder_yaml(
        self, make_repo: MakeRepo, tmp_path: Path
    ) -> None:
        repo = make_repo({**TREE, "builder.yaml": "namespace: acme\ndefault_branch: trunk\n"})
        git(repo, "branch", "-m", "trunk")
        git(repo, "switch", "--quiet", "-c", "feature")
        commit(repo, {"images/cli/main.sh": "feature\n"})
        selection = select_in(repo, actions_env(tmp_path, "push", {"before": NULL_SHA}))
        assert selection.affected.names == ("cli",)
        assert selection.range.base_label == "merge-base(trunk)"

    def test_remote_default_branch_is_preferred(
        self, history: tuple[Path, list[str]], tmp_path: Path
    ) -> None:
        origin, shas = history
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "--quiet", f"file://{origin}", str(clone))
        git(clone, "switch", "--quiet", "-c", "feature")
        git(clone, "branch", "-D", "main")  # only origin/main is left
        commit(clone, {"images/cli/main.sh": "feature\n"})
        selection = select_in(clone, actions_env(tmp_path, "push", {"before": NULL_SHA}))
        assert selection.affected.names == ("cli",)
        assert selection.range.base == shas[3]
        assert selection.range.base_label == "merge-base(origin/main)"

    def test_no_default_branch_means_everything_with_a_warning(
        self, make_repo: MakeRepo, tmp_path: Path
    ) -> None:
        repo = make_repo(TREE)
        git(repo, "branch", "-m", "feature")
        commit(repo, {"images/cli/main.sh": "feature\n"})
        selection = select_in(repo, actions_env(tmp_path, "push", {"before": NULL_SHA}))
        assert selection.affected.names == ALL
        assert selection.range.base is None
        assert selection.warnings == (
            "new branch with no merge base with main: treating every image as affected",
        )
        reasons = {r.render() for i in selection.affected.images for r in i.reasons}
        assert reasons == {"new branch with no merge base with main", "parent api is affected"}


def test_base_missing_from_the_clone_means_everything(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, _ = history
    gone = "1234567890" * 4
    env = actions_env(tmp_path, "push", {"before": gone})
    selection = select_in(repo, env)
    assert selection.affected.names == ALL
    assert selection.warnings == (
        (
            "base 123456789012 from the push event is not in this clone (force push or shallow "
            "clone): treating every image as affected"
        ),
    )
    result = invoke("affected", "--repo", repo, "--format", "names", env=env)
    assert result.exit_code == 0
    assert result.stdout.split() == list(ALL)
    assert "warning: base 123456789012 from the push event is not in this clone" in result.stderr
    assert "::warning::base 123456789012" in result.stderr


def test_full_sha_base_flag_missing_from_the_clone_means_everything(
    history: tuple[Path, list[str]],
) -> None:
    repo, _ = history
    selection = select_in(repo, {}, base="ab" * 20)
    assert selection.affected.names == ALL
    assert "from --base is not in this clone" in selection.warnings[0]


class TestShallowClone:
    @pytest.fixture
    def clone(self, history: tuple[Path, list[str]], tmp_path: Path) -> Path:
        origin, _ = history
        clone = tmp_path / "shallow"
        git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{origin}", str(clone))
        assert git(clone, "rev-parse", "--is-shallow-repository") == "true"
        return clone

    def test_before_is_fetched_by_deepening(
        self, clone: Path, history: tuple[Path, list[str]], tmp_path: Path
    ) -> None:
        _, shas = history
        assert not Git(clone).has_commit(shas[1])
        selection = select_in(clone, actions_env(tmp_path, "push", {"before": shas[1]}))
        assert selection.affected.names == ("api", "worker")
        assert selection.warnings == ()

    def test_parent_of_head_is_fetched_by_deepening(
        self, clone: Path, history: tuple[Path, list[str]]
    ) -> None:
        _, shas = history
        selection = select_in(clone, {"CI": "true"})
        assert selection.affected.names == ("api", "worker")
        assert selection.range.base == shas[2]

    def test_force_pushed_before_means_everything(self, clone: Path, tmp_path: Path) -> None:
        env = actions_env(tmp_path, "push", {"before": "f" * 40})
        selection = select_in(clone, env)
        assert selection.affected.names == ALL
        assert len(selection.warnings) == 1
        assert "is not in this clone" in selection.warnings[0]


def test_resolve_rejects_option_like_revisions(make_repo: MakeRepo) -> None:
    with pytest.raises(GitError) as info:
        Git(make_repo(TREE)).resolve("--output=/tmp/x")
    assert str(info.value) == (
        "invalid git revision '--output=/tmp/x' (a revision cannot start with '-')"
    )


@pytest.mark.parametrize(
    ("option", "revision"),
    [("--base", "nope"), ("--head", "nope"), ("--base", "abcdef1"), ("--base", "HEAD~10")],
)
def test_unknown_revision_exits_2(
    history: tuple[Path, list[str]], option: str, revision: str
) -> None:
    repo, _ = history
    result = invoke("affected", "--repo", repo, option, revision)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: unknown git revision {revision!r} "
        "(check the name, or fetch more history with git fetch --unshallow)\n"
    )


def test_not_a_git_repository_exits_2(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for command in ("affected", "graph"):
        result = invoke(command, "--repo", plain)
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: {plain} is not inside a git repository "
            "(run builder from a git checkout, or `git init` one)\n"
        )


def test_missing_repo_directory_exits_2(tmp_path: Path) -> None:
    result = invoke("affected", "--repo", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nowhere'} is not a directory (check --repo)\n"
