"""The rule content keys keep, in real repos with every kind of tree entry: whenever git's
diff says an image is affected because of a file its build reads, its key changes; an image
no change reaches keeps its key; and the working tree predicts the commit's keys. Some
images read their whole context (`COPY .`), one only some of its files (narrowed inputs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from builder.changes import compute_affected
from builder.git import Git, RevisionSnapshot
from builder.keys import compute_keys
from builder.reconcile import State, _file_ids_for, reusable_keys
from builder.repo import load_repo
from tests.conftest import commit, git

TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\nCOPY . /base\n",
    "base-images/base/setup.sh": "echo base\n",
    "images/api/Dockerfile": "FROM acme/base\nCOPY . /app\n",
    "images/api/.dockerignore": "*.md\n",
    "images/api/run.sh": "echo api\n",
    "images/api/notes.md": "not sent\n",
    "images/api/link": "placeholder\n",
    "images/api/other.txt": "only api's COPY . reads it\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\nCOPY . /cli\n",
    "images/cli/main.sh": "echo cli\n",
    # Narrowed: api's context, of which it reads one file and one inside the submodule.
    "images/narrow/Dockerfile": "FROM alpine:3.20\nCOPY run.sh vendor/lib.sh /bin/\n",
    "images/narrow/image.yaml": "context: ../api\n",
}
# Reasons that say "a file this build reads changed": the key must change with them.
FILE_REASONS = frozenset({"dockerfile", "dockerignore", "context", "watch"})


def make_submodule_source(tmp_path: Path) -> Path:
    source = tmp_path / "vendored"
    source.mkdir()
    git(source, "init", "--quiet")
    commit(source, {"lib.sh": "echo v1\n"}, "v1")
    return source


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """TREE, with `images/api/link` a symbolic link and `images/api/vendor` a submodule."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "--quiet")
    commit(path, TREE, "initial")
    (path / "images/api/link").unlink()
    (path / "images/api/link").symlink_to("run.sh")
    source = make_submodule_source(tmp_path)
    git(
        path,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "--quiet",
        str(source),
        "images/api/vendor",
    )
    commit(path, message="link and submodule")
    return path


def chmod(path: Path, mode: int) -> None:
    path.chmod(mode)


def relink(path: Path, target: str) -> None:
    path.unlink()
    path.symlink_to(target)


def bump_submodule(repo: Path) -> None:
    vendor = repo / "images/api/vendor"
    source = Path(git(vendor, "remote", "get-url", "origin"))
    commit(source, {"lib.sh": "echo v2\n"}, "v2")
    git(vendor, "-c", "protocol.file.allow=always", "pull", "--quiet", "origin", "HEAD")


Change = Callable[[Path], None]
CHANGES: dict[str, tuple[Change, frozenset[str]]] = {
    "edit a context file": (
        lambda r: (r / "images/api/run.sh").write_text("echo api 2\n"),
        frozenset({"api", "narrow"}),
    ),
    "edit a file only a whole-context read reads": (
        lambda r: (r / "images/api/other.txt").write_text("changed\n"),
        frozenset({"api"}),
    ),
    "chmod +x a context file": (
        lambda r: chmod(r / "images/api/run.sh", 0o755),
        frozenset({"api", "narrow"}),
    ),
    "chmod +x a base file reaches the child": (
        lambda r: chmod(r / "base-images/base/setup.sh", 0o755),
        frozenset({"base", "api"}),
    ),
    "retarget a symbolic link": (
        lambda r: relink(r / "images/api/link", "notes.md"),
        frozenset({"api"}),
    ),
    "a file becomes a symbolic link": (
        lambda r: relink(r / "images/cli/main.sh", "Dockerfile"),
        frozenset({"cli"}),
    ),
    "bump a submodule": (bump_submodule, frozenset({"api", "narrow"})),
    "add a file": (
        lambda r: (r / "images/cli/extra.sh").write_text("x\n"),
        frozenset({"cli"}),
    ),
    "delete a file": (lambda r: (r / "images/cli/main.sh").unlink(), frozenset({"cli"})),
    "edit a file .dockerignore drops": (
        lambda r: (r / "images/api/notes.md").write_text("still not sent\n"),
        frozenset(),
    ),
    "edit the .dockerignore": (
        lambda r: (r / "images/api/.dockerignore").write_text("*.md\n*.txt\n"),
        frozenset({"api", "narrow"}),
    ),
}


def keys_at(repository: Git, sha: str) -> dict[str, str]:
    graph = load_repo(RevisionSnapshot(repository, sha)).graph
    return compute_keys(graph, repository.file_ids(sha))


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_git_affected_means_a_new_key(repo: Path, name: str) -> None:
    change, expected = CHANGES[name]
    repository = Git(repo)
    base = repository.head()
    assert base is not None
    change(repo)
    predicted = repository.file_ids(None)  # the working tree, before the commit
    head = commit(repo, message=name)
    assert predicted == repository.file_ids(head), "the working tree mispredicts the commit"

    graph = load_repo(RevisionSnapshot(repository, head)).graph
    changes = repository.changed_paths(base, head)
    affected = compute_affected(graph, [c.path for c in changes])
    by_file = {i.name for i in affected.images if any(r.kind in FILE_REASONS for r in i.reasons)}
    before, after = keys_at(repository, base), keys_at(repository, head)
    moved = {n for n in after if before.get(n) != after[n]}
    assert set(affected.names) == expected
    assert by_file <= moved, f"git says {sorted(by_file)} changed, keys moved for {sorted(moved)}"
    assert moved == expected, "a key moved that no change reaches, or stayed where one does"


def test_a_dirty_submodule_is_not_its_commit(repo: Path) -> None:
    """Uncommitted edits inside a submodule are sent by a local build: the working tree's
    id for it must differ from the commit's, never claim to be that commit."""
    repository = Git(repo)
    clean = repository.file_ids(None)["images/api/vendor"]
    (repo / "images/api/vendor/lib.sh").write_text("echo local edit\n")
    dirty = repository.file_ids(None)["images/api/vendor"]
    assert clean.startswith("160000 ")
    assert dirty == clean + "-dirty"


def test_modes_and_links_are_recorded_as_git_records_them(repo: Path) -> None:
    ids = Git(repo).file_ids(git(repo, "rev-parse", "HEAD"))
    assert ids["images/api/run.sh"].startswith("100644 ")
    assert ids["images/api/link"] == "120000 " + git(repo, "rev-parse", "HEAD:images/api/link")
    assert ids["images/api/vendor"].startswith("160000 ")
    assert (repo / "images/api/link").readlink() == Path("run.sh")


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_keys_reused_from_the_last_push_equal_keys_computed_afresh(repo: Path, name: str) -> None:
    """Reconcile reuses the keys the state recorded at its commit for every image the
    diff since cannot reach, and lists only the other images' inputs: the result must be
    exactly the keys a full computation gives."""
    change, expected = CHANGES[name]
    repository = Git(repo)
    base = repository.head()
    assert base is not None
    state = State(revision=base, keys=keys_at(repository, base))
    change(repo)
    head = commit(repo, message=name)
    graph = load_repo(RevisionSnapshot(repository, head)).graph
    reused = reusable_keys(repository, graph, head, state, {})
    assert set(graph.images) - set(reused) == set(expected) | {
        n for n in graph.images if n not in state.keys
    }
    partial = _file_ids_for(repository, graph, head, reused)
    assert compute_keys(graph, partial, known=reused) == keys_at(repository, head)


def test_nothing_is_reused_across_a_change_of_builder_yaml(repo: Path) -> None:
    repository = Git(repo)
    base = repository.head()
    assert base is not None
    state = State(revision=base, keys=keys_at(repository, base))
    head = commit(repo, {"builder.yaml": "namespace: other\n"}, "settings")
    graph = load_repo(RevisionSnapshot(repository, head)).graph
    assert reusable_keys(repository, graph, head, state, {}) == {}
