"""Change detection on real git repositories: which images a commit affects, and why."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from builder.context import compute_context
from builder.repo import Overrides
from builder.reports import Selection
from builder.workspace import select
from tests.conftest import Files, commit, git, invoke, write_files

MakeRepo = Callable[..., Path]

TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\nCOPY requirements.txt /\n",
    "base-images/base/requirements.txt": "requests\n",
    "images/api/Dockerfile": "FROM acme/base\nCOPY . /app\n",
    "images/api/.dockerignore": "*.md\ntests\n!tests/fixtures\ndata files/*.tmp\n",
    "images/api/app.py": "print('api')\n",
    "images/api/README.md": "# api\n",
    "images/api/docs/guide.md": "guide\n",
    "images/api/tests/test_api.py": "\n",
    "images/api/tests/fixtures/data.json": "{}\n",
    "images/api/data files/ünï ☃.txt": "snow\n",
    "images/worker/Dockerfile": "FROM acme/api\nCOPY . /worker\n",
    "images/worker/job.py": "\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\nCOPY . /cli\n",
    "images/cli/main.sh": "echo hi\n",
    "docs/index.md": "docs\n",
    ".gitignore": "*.log\n",
}


def select_in(
    repo: Path,
    *,
    base: str | None = None,
    head: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Selection:
    ctx = compute_context(repo, {**os.environ, **(environ or {})}, head=head)
    return select(ctx, base=base, overrides=Overrides())


def names_after(repo: Path, files: Files) -> tuple[str, ...]:
    commit(repo, files)
    return select_in(repo, base="HEAD~1", head="HEAD").affected.names


def reasons(selection: Selection) -> dict[str, list[str]]:
    return {i.name: [r.render() for r in i.reasons] for i in selection.affected.images}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"base-images/base/requirements.txt": "httpx\n"},
            ("api", "base", "worker"),
            id="context-file-affects-all-dependants",
        ),
        pytest.param({"images/api/app.py": "x\n"}, ("api", "worker"), id="context-file"),
        pytest.param({"images/worker/job.py": "x\n"}, ("worker",), id="leaf"),
        pytest.param({"images/cli/main.sh": "x\n"}, ("cli",), id="unrelated"),
        pytest.param({"images/api/README.md": "x\n"}, (), id="dockerignored"),
        pytest.param(
            {"images/api/docs/guide.md": "x\n"}, ("api", "worker"), id="star-md-is-root-only"
        ),
        pytest.param({"images/api/tests/test_api.py": "x\n"}, (), id="ignored-directory"),
        pytest.param(
            {"images/api/tests/fixtures/data.json": "[]\n"},
            ("api", "worker"),
            id="negation-re-includes",
        ),
        pytest.param(
            {"images/api/Dockerfile": "FROM acme/base\nCOPY . /srv\n"},
            ("api", "worker"),
            id="dockerfile",
        ),
        pytest.param({"images/api/.dockerignore": "*.md\n"}, ("api", "worker"), id="dockerignore"),
        pytest.param(
            {"images/api/image.yaml": "platforms: [linux/amd64]\n"},
            ("api", "worker"),
            id="image-yaml",
        ),
        pytest.param({"images/worker/new.py": "x\n"}, ("worker",), id="added-file"),
        pytest.param({"images/worker/job.py": None}, ("worker",), id="deleted-file"),
        pytest.param({"images/new/Dockerfile": "FROM acme/cli\n"}, ("new",), id="new-image"),
        pytest.param({"docs/index.md": "x\n"}, (), id="outside-every-context"),
        pytest.param(
            {"images/api/data files/ünï ☃.txt": "melted\n"},
            ("api", "worker"),
            id="space-and-unicode",
        ),
        pytest.param(
            {"images/api/data files/scratch.tmp": "x\n"}, (), id="space-in-ignore-pattern"
        ),
        pytest.param({"images/api/new\nline.txt": "x\n"}, ("api", "worker"), id="newline-in-name"),
        pytest.param(
            {"images/cli/main.sh": "x\n", "images/api/README.md": "x\n"},
            ("cli",),
            id="several-files",
        ),
    ],
)
def test_changes(make_repo: MakeRepo, changes: Files, expected: tuple[str, ...]) -> None:
    assert names_after(make_repo(TREE), changes) == expected


def test_reasons_name_the_file_and_the_parent(make_repo: MakeRepo) -> None:
    repo = make_repo(TREE)
    commit(
        repo, {"images/api/app.py": "x\n", "images/api/Dockerfile": "FROM acme/base\nCOPY . /\n"}
    )
    selection = select_in(repo, base="HEAD~1", head="HEAD")
    assert reasons(selection) == {
        "api": [
            "context file changed: images/api/app.py",
            "Dockerfile changed: images/api/Dockerfile",
        ],
        "worker": ["parent api is affected"],
    }
    assert [i.name for i in selection.affected.images] == ["api", "worker"]  # build order


def test_watch_globs(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            **TREE,
            "libs/common/util.py": "\n",
            "libs/common/README.md": "\n",
            "libs/other/x.py": "\n",
            "images/cli/image.yaml": "watch: ['libs/common/**', '!libs/common/*.md']\n",
        }
    )
    assert names_after(repo, {"libs/common/util.py": "x\n"}) == ("cli",)
    assert names_after(repo, {"libs/common/README.md": "x\n"}) == ()
    assert names_after(repo, {"libs/other/x.py": "x\n"}) == ()
    selection = select_in(repo, base="HEAD~3", head="HEAD")
    assert reasons(selection) == {"cli": ["watched file changed: libs/common/util.py"]}


MONO = {
    **TREE,
    ".dockerignore": "docs\n**/*.md\nimages/cli\n",
    "libs/shared.py": "\n",
    "README.md": "\n",
    "images/mono/Dockerfile": "FROM python:3.12\nCOPY . /src\n",
    "images/mono/image.yaml": "context: ../..\n",
}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"libs/shared.py": "x\n"}, ("mono",)),
        ({"docs/index.md": "x\n"}, ()),
        ({"README.md": "x\n"}, ()),
        ({"images/api/README.md": "x\n"}, ()),
        ({"images/cli/main.sh": "x\n"}, ("cli",)),
        ({"images/worker/job.py": "x\n"}, ("mono", "worker")),
        ({".dockerignore": "docs\n"}, ("mono",)),
        ({"images/mono/Dockerfile": "FROM python:3.13\nCOPY . /src\n"}, ("mono",)),
        ({"builder.yaml": "namespace: acme\n# a comment\n"}, ("mono",)),
    ],
)
def test_repo_root_context(make_repo: MakeRepo, changes: Files, expected: tuple[str, ...]) -> None:
    assert names_after(make_repo(MONO), changes) == expected


SETTINGS = {
    "builder.yaml": "namespace: acme\nbuild_args: {PY: '3.12'}\n",
    "images/a/Dockerfile": "ARG PY\nFROM python:$PY\n",
    "images/b/Dockerfile": "FROM python:3.12\n",
    "images/c/Dockerfile": "FROM acme/a\n",
    "images/d/Dockerfile": "FROM python:3.12\n",
    "images/d/image.yaml": "platforms: [linux/amd64]\n",
}


@pytest.mark.parametrize(
    ("builder_yaml", "expected"),
    [
        pytest.param(
            "namespace: acme\nbuild_args: {PY: '3.13'}\n", ("a", "c"), id="declared-build-arg"
        ),
        pytest.param(
            "namespace: acme\nbuild_args: {PY: '3.12', OTHER: x}\n", (), id="undeclared-build-arg"
        ),
        pytest.param(
            "namespace: acme\nbuild_args: {PY: '3.12'}\nplatforms: [linux/arm64]\n",
            ("a", "b", "c"),
            id="platforms-unless-overridden",
        ),
        pytest.param(
            "namespace: other\nbuild_args: {PY: '3.12'}\n",
            ("a", "b", "c", "d"),
            id="namespace",
        ),
        pytest.param(
            "namespace: acme\nbuild_args: {PY: '3.12'}\ncache: false\ndefault_branch: trunk\n",
            (),
            id="no-image-setting",
        ),
        pytest.param(
            "# reformatted\nbuild_args:\n  PY: '3.12'\nnamespace: acme\n", (), id="same-settings"
        ),
    ],
)
def test_builder_yaml_affects_images_whose_settings_changed(
    make_repo: MakeRepo, builder_yaml: str, expected: tuple[str, ...]
) -> None:
    assert names_after(make_repo(SETTINGS), {"builder.yaml": builder_yaml}) == expected


def test_builder_yaml_reason(make_repo: MakeRepo) -> None:
    repo = make_repo(SETTINGS)
    commit(repo, {"builder.yaml": "namespace: acme\nbuild_args: {PY: '3.13'}\n"})
    assert reasons(select_in(repo, base="HEAD~1", head="HEAD")) == {
        "a": ["resolved settings changed: builder.yaml"],
        "c": ["parent a is affected"],
    }


def test_rename_counts_at_both_paths(make_repo: MakeRepo) -> None:
    repo = make_repo(TREE)
    git(repo, "mv", "images/api/app.py", "images/cli/app.py")
    commit(repo)
    selection = select_in(repo, base="HEAD~1", head="HEAD")
    assert selection.affected.names == ("api", "cli", "worker")
    assert reasons(selection)["api"] == ["context file changed: images/api/app.py"]
    assert reasons(selection)["cli"] == ["context file changed: images/cli/app.py"]


def test_renamed_image_directory(make_repo: MakeRepo) -> None:
    repo = make_repo(TREE)
    git(repo, "mv", "images/cli", "images/tool")
    commit(repo)
    selection = select_in(repo, base="HEAD~1", head="HEAD")
    assert selection.affected.names == ("tool",)
    assert selection.affected.removed == ("cli",)


@pytest.mark.parametrize(
    ("changes", "affected", "removed"),
    [
        pytest.param(
            {"images/cli/Dockerfile": None, "images/cli/main.sh": None}, (), ("cli",), id="leaf"
        ),
        pytest.param({"images/worker/Dockerfile": None}, (), ("worker",), id="dockerfile-only"),
        pytest.param(
            {
                "images/api/Dockerfile": None,
                "images/api/app.py": None,
                "images/worker/Dockerfile": "FROM acme/base\n",
            },
            ("worker",),
            ("api",),
            id="with-a-dependant-moved-on",
        ),
    ],
)
def test_deleted_image_is_removed_never_affected(
    make_repo: MakeRepo, changes: Files, affected: tuple[str, ...], removed: tuple[str, ...]
) -> None:
    repo = make_repo(TREE)
    commit(repo, changes)
    selection = select_in(repo, base="HEAD~1", head="HEAD")
    assert selection.affected.names == affected
    assert selection.affected.removed == removed


def test_image_removed_by_image_yaml_rename(make_repo: MakeRepo) -> None:
    repo = make_repo(TREE)
    commit(repo, {"images/cli/image.yaml": "name: tool\n"})
    selection = select_in(repo, base="HEAD~1", head="HEAD")
    assert (selection.affected.names, selection.affected.removed) == (("tool",), ("cli",))


@pytest.mark.parametrize("environ", [{}, {"CI": "true"}])
def test_first_commit_affects_everything(make_repo: MakeRepo, environ: dict[str, str]) -> None:
    repo = make_repo(TREE)
    selection = select_in(repo, environ=environ)
    assert selection.affected.names == ("api", "base", "cli", "worker")
    assert selection.range.base_label == "(first commit: empty tree)"
    assert selection.warnings == ()


def test_repository_without_commits(make_repo: MakeRepo) -> None:
    repo = make_repo(TREE, committed=False)
    selection = select_in(repo)
    assert selection.affected.names == ("api", "base", "cli", "worker")
    assert selection.range.base_label == "(empty repository)"


def test_merge_commit_is_compared_with_its_first_parent(make_repo: MakeRepo) -> None:
    repo = make_repo(TREE)
    git(repo, "switch", "--quiet", "-c", "feature")
    commit(repo, {"images/cli/main.sh": "feature\n"})
    git(repo, "switch", "--quiet", "main")
    commit(repo, {"images/worker/job.py": "main\n"})
    git(repo, "merge", "--quiet", "--no-ff", "--no-edit", "feature")
    assert len(git(repo, "rev-parse", "HEAD^2")) == 40  # really a merge
    for environ in ({}, {"CI": "true"}):
        assert select_in(repo, environ=environ).affected.names == ("cli",)
    assert select_in(repo, base="HEAD~1", head="HEAD").affected.names == ("cli",)
    assert select_in(repo, base="HEAD^2", head="HEAD").affected.names == ("worker",)


def test_paths_with_spaces_and_unicode_in_image_dirs(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            **TREE,
            "images/my app/Dockerfile": "FROM acme/base\nCOPY src /src\n",
            "images/my app/image.yaml": "name: my-app\n",
            "images/my app/src/fïlé nämé.py": "\n",
            "images/ünï/Dockerfile": "FROM acme/my-app\nCOPY . /\n",
            "images/ünï/image.yaml": "name: uni\n",
        }
    )
    assert names_after(repo, {"images/my app/src/fïlé nämé.py": "x\n"}) == ("my-app", "uni")
    assert names_after(repo, {"images/ünï/new file": "x\n"}) == ("uni",)


class TestWorkingTree:
    """Locally the head is the working tree; in CI it is HEAD."""

    @pytest.fixture
    def repo(self, make_repo: MakeRepo) -> Path:
        repo = make_repo(TREE)
        commit(repo, {"images/worker/job.py": "committed\n"})
        return repo

    @pytest.mark.parametrize(
        ("files", "local"),
        [
            pytest.param({"images/cli/main.sh": "edited\n"}, ("cli", "worker"), id="modified"),
            pytest.param({"images/cli/new.sh": "new\n"}, ("cli", "worker"), id="untracked"),
            pytest.param({"images/cli/debug.log": "x\n"}, ("worker",), id="gitignored"),
            pytest.param({"images/api/README.md": "x\n"}, ("worker",), id="dockerignored"),
            pytest.param({"images/cli/main.sh": None}, ("cli", "worker"), id="deleted-file"),
        ],
    )
    def test_local_head_is_the_working_tree(
        self, repo: Path, files: Files, local: tuple[str, ...]
    ) -> None:
        write_files(repo, files)
        selection = select_in(repo)
        assert selection.affected.names == local
        assert (selection.range.base_label, selection.range.head_label) == (
            "HEAD~1",
            "working tree",
        )
        assert select_in(repo, environ={"CI": "true"}).affected.names == ("worker",)

    def test_staged_changes_count(self, repo: Path) -> None:
        write_files(repo, {"images/cli/main.sh": "staged\n"})
        git(repo, "add", "images/cli/main.sh")
        assert select_in(repo).affected.names == ("cli", "worker")

    def test_explicit_head_ignores_the_working_tree(self, repo: Path) -> None:
        write_files(repo, {"images/cli/main.sh": "edited\n"})
        assert select_in(repo, head="HEAD").affected.names == ("worker",)
        assert select_in(repo, base="HEAD~1", head="HEAD").affected.names == ("worker",)

    def test_image_deleted_from_disk_only(self, repo: Path) -> None:
        shutil.rmtree(repo / "images/cli")  # no `git rm`: the index still lists it
        selection = select_in(repo)
        assert selection.affected.names == ("worker",)
        assert selection.affected.removed == ("cli",)

    def test_new_image_in_the_working_tree(self, repo: Path) -> None:
        write_files(repo, {"images/new/Dockerfile": "FROM acme/api\n"})
        assert select_in(repo).affected.names == ("new", "worker")


ALLOW_LIST = {
    "images/cli/.dockerignore": "*\n!main.sh\n",  # image.yaml is not in the context
    "images/cli/Dockerfile": "ARG V=3.20\nFROM alpine:${V}\nCOPY main.sh /\n",
    "images/cli/image.yaml": "build_args: {V: '3.19'}\n",
}


@pytest.mark.parametrize(
    "change",
    [
        {"images/cli/image.yaml": None},
        {"images/cli/image.yaml": "build_args: {V: '3.18'}\n"},
    ],
    ids=["deleted", "edited"],
)
def test_image_yaml_counts_whatever_the_dockerignore_says(
    make_repo: MakeRepo, change: Files
) -> None:
    repo = make_repo({**TREE, **ALLOW_LIST})
    assert names_after(repo, change) == ("cli",)


def test_adding_image_yaml_counts(make_repo: MakeRepo) -> None:
    files = {k: v for k, v in ALLOW_LIST.items() if not k.endswith("image.yaml")}
    repo = make_repo({**TREE, **files})
    assert names_after(repo, {"images/cli/image.yaml": "platforms: [linux/amd64]\n"}) == ("cli",)


def link(repo: Path, path: str, target: str) -> None:
    (repo / path).unlink()
    (repo / path).symlink_to(target)


@pytest.mark.parametrize("head", ["HEAD", None], ids=["commit", "working-tree"])
def test_a_change_to_what_a_linked_dockerfile_names_counts(
    make_repo: MakeRepo, head: str | None
) -> None:
    repo = make_repo(
        {**TREE, "shared/Dockerfile.common": "FROM alpine:3.20\nRUN echo 1\n"}, committed=False
    )
    link(repo, "images/cli/Dockerfile", "../../shared/Dockerfile.common")
    link(repo, "images/worker/Dockerfile", "../../shared/Dockerfile.common")
    commit(repo, message="initial")
    write_files(repo, {"shared/Dockerfile.common": "FROM alpine:3.20\nRUN echo 2\n"})
    if head is not None:
        commit(repo)
    selection = select_in(repo, base="HEAD" if head is None else "HEAD~1", head=head)
    assert reasons(selection) == {
        "cli": ["Dockerfile changed: shared/Dockerfile.common"],
        "worker": ["Dockerfile changed: shared/Dockerfile.common"],
    }


def test_a_linked_dockerignore_target_counts(make_repo: MakeRepo) -> None:
    repo = make_repo({**TREE, "shared/ignore": "*.md\n"}, committed=False)
    (repo / "images/api/.dockerignore").unlink()
    (repo / "images/api/.dockerignore").symlink_to("../../shared/ignore")
    commit(repo, message="initial")
    assert "api" in names_after(repo, {"shared/ignore": "*.md\ntests\n"})


def test_an_image_left_on_a_removed_parent_is_warned_about(make_repo: MakeRepo) -> None:
    repo = make_repo(TREE)
    commit(repo, {"images/api/Dockerfile": None, "images/api/app.py": None})
    selection = select_in(repo, base="HEAD~1", head="HEAD")
    assert selection.affected.removed == ("api",)
    warning = (
        "worker still uses acme/api, but image api was removed from the repo: "
        "it builds on the last pushed one"
    )
    assert selection.warnings == (warning,)


# -- precise inputs: what the build reads, not everything in its context ----------------------
# One image per layout the narrowing handles (builder/inputs.py); each change below is
# read by exactly the images listed.

NARROW = {
    "builder.yaml": "namespace: acme\n",
    # a file and a folder, beside docs and tests the build never reads
    "images/api/Dockerfile": (
        "FROM python:3.12\nWORKDIR /app\nCOPY requirements.txt .\nCOPY src/ /app/src\n"
    ),
    "images/api/requirements.txt": "flask\n",
    "images/api/src/app.py": "\n",
    "images/api/docs/guide.md": "\n",
    "images/api/tests/test_app.py": "\n",
    # a glob
    "images/web/Dockerfile": "FROM nginx\nCOPY *.conf /etc/nginx/\n",
    "images/web/site.conf": "\n",
    "images/web/sub/inner.conf": "\n",
    "images/web/index.html": "\n",
    # an ARG-expanded source, its default and builder's own build arg
    "images/theme/Dockerfile": (
        "ARG FLAVOUR=blue\nFROM alpine\nARG FLAVOUR\nARG SIZE\nCOPY assets/${FLAVOUR}/ /a/\n"
        "COPY sizes/${SIZE}.txt /s\n"
    ),
    "images/theme/image.yaml": "build_args: {SIZE: large}\n",
    "images/theme/assets/blue/x.css": "\n",
    "images/theme/assets/red/x.css": "\n",
    "images/theme/sizes/large.txt": "\n",
    "images/theme/sizes/small.txt": "\n",
    # a bind mount
    "images/mnt/Dockerfile": (
        "FROM alpine\nRUN --mount=type=bind,source=data,target=/d cp -r /d /out\n"
    ),
    "images/mnt/data/seed.csv": "\n",
    "images/mnt/other.txt": "\n",
    # several Dockerfiles in one folder, each image reading its own files
    "docker/Dockerfile.pilot": "FROM alpine\nCOPY pilot /usr/local/bin/\n",
    "docker/Dockerfile.proxy": "FROM alpine\nCOPY envoy /usr/local/bin/\n",
    "docker/pilot": "\n",
    "docker/envoy": "\n",
    "images/pilot/image.yaml": "dockerfile: ../../docker/Dockerfile.pilot\ncontext: ../../docker\n",
    "images/proxy/image.yaml": "dockerfile: ../../docker/Dockerfile.proxy\ncontext: ../../docker\n",
    # a parent-folder context with narrow COPYs
    "images/ctrl/Dockerfile": "FROM golang\nCOPY common/ /src/common/\nCOPY ctrl/ /src/ctrl/\n",
    "images/ctrl/image.yaml": "context: ../../components\n",
    "components/common/lib.go": "\n",
    "components/ctrl/main.go": "\n",
    "components/other/main.go": "\n",
    # a fallback: an ARG without a value
    "images/fb/Dockerfile": "FROM alpine\nARG SRC\nCOPY ${SRC} /x\n",
    "images/fb/anything.txt": "\n",
    # nothing read from the context at all
    "images/none/Dockerfile": "FROM alpine\nRUN true\n",
    "images/none/notes.txt": "\n",
}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"images/api/src/app.py": "x\n"}, ("api",), id="in-a-copied-folder"),
        pytest.param({"images/api/requirements.txt": "x\n"}, ("api",), id="a-copied-file"),
        pytest.param({"images/api/docs/guide.md": "x\n"}, (), id="beside-the-copies"),
        pytest.param({"images/api/tests/new.py": "x\n"}, (), id="a-new-file-beside"),
        pytest.param({"images/api/src/new.py": "x\n"}, ("api",), id="a-new-file-inside"),
        pytest.param({"images/web/site.conf": "x\n"}, ("web",), id="glob-match"),
        pytest.param({"images/web/sub/inner.conf": "x\n"}, (), id="glob-stops-at-slash"),
        pytest.param({"images/web/index.html": "x\n"}, (), id="glob-miss"),
        pytest.param({"images/theme/assets/blue/x.css": "x\n"}, ("theme",), id="arg-default"),
        pytest.param({"images/theme/assets/red/x.css": "x\n"}, (), id="arg-other-value"),
        pytest.param({"images/theme/sizes/large.txt": "x\n"}, ("theme",), id="build-arg"),
        pytest.param({"images/theme/sizes/small.txt": "x\n"}, (), id="build-arg-other"),
        pytest.param({"images/mnt/data/seed.csv": "x\n"}, ("mnt",), id="bind-mount"),
        pytest.param({"images/mnt/other.txt": "x\n"}, (), id="beside-the-mount"),
        pytest.param({"docker/pilot": "x\n"}, ("pilot",), id="one-folder-pilot"),
        pytest.param({"docker/envoy": "x\n"}, ("proxy",), id="one-folder-proxy"),
        pytest.param(
            {"docker/Dockerfile.pilot": "FROM alpine:3\nCOPY pilot /usr/local/bin/\n"},
            ("pilot",),
            id="a-sibling-dockerfile-is-no-input",
        ),
        pytest.param({"components/ctrl/main.go": "x\n"}, ("ctrl",), id="parent-folder-read"),
        pytest.param({"components/other/main.go": "x\n"}, (), id="parent-folder-unread"),
        pytest.param({"images/fb/anything.txt": "x\n"}, ("fb",), id="fallback-counts-all"),
        pytest.param({"images/none/notes.txt": "x\n"}, (), id="reads-nothing"),
        pytest.param(
            {"images/theme/image.yaml": "build_args: {SIZE: small}\n"},
            ("theme",),
            id="a-new-build-arg-redefines",
        ),
    ],
)
def test_only_what_the_build_reads_counts(
    make_repo: MakeRepo, changes: Files, expected: tuple[str, ...]
) -> None:
    assert names_after(make_repo(NARROW), changes) == expected


def test_explain_names_the_instruction_that_read_the_file(make_repo: MakeRepo) -> None:
    repo = make_repo(NARROW)
    commit(repo, {"images/api/src/app.py": "x\n", "images/fb/anything.txt": "x\n"})
    result = invoke("affected", "-C", repo, "--base", "HEAD~1", "--head", "HEAD", "--explain")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert (
        "context file changed: images/api/src/app.py, read by "
        "images/api/Dockerfile:4 COPY src/ /app/src"
    ) in rows["api"]
    assert "reads requirements.txt, src" in rows["api"]
    assert (
        "context file changed: images/fb/anything.txt, read by "
        "images/fb/Dockerfile:3 COPY ${SRC} /x (ARG SRC has no value)"
    ) in rows["fb"]
    assert (
        "whole context: images/fb/Dockerfile:3 COPY ${SRC} /x (ARG SRC has no value)" in rows["fb"]
    )
    assert rows["none"].split()[1:5] == ["no", "no", "rule", "fired"]
    assert rows["none"].endswith("reads nothing from its context")
    data = json.loads(
        invoke("affected", "-C", repo, "--base", "HEAD~1", "--head", "HEAD", "-f", "json").stdout
    )
    sources = {i["name"]: [r.get("source") for r in i["reasons"]] for i in data["affected"]}
    assert sources == {
        "api": ["images/api/Dockerfile:4 COPY src/ /app/src"],
        "fb": ["images/fb/Dockerfile:3 COPY ${SRC} /x (ARG SRC has no value)"],
    }


@pytest.mark.parametrize("head", ["HEAD", None], ids=["commit", "working-tree"])
def test_a_read_through_a_symbolic_link_counts_the_whole_context(
    make_repo: MakeRepo, head: str | None
) -> None:
    repo = make_repo(
        {
            "builder.yaml": "namespace: acme\n",
            "images/lnk/Dockerfile": "FROM alpine\nCOPY lib/ /lib/\n",
            "images/lnk/target/x.py": "\n",
            "images/lnk/notes.txt": "\n",
            "images/plain/Dockerfile": "FROM alpine\nCOPY src/ /src/\n",
            "images/plain/src/x.py": "\n",
            "images/plain/notes.txt": "\n",
        },
        committed=False,
    )
    (repo / "images/lnk/lib").symlink_to("target")  # BuildKit follows it to target/
    (repo / "images/plain/link").symlink_to("notes.txt")  # on no read's way
    commit(repo, message="initial")
    write_files(repo, {"images/lnk/target/x.py": "x\n", "images/plain/notes.txt": "x\n"})
    if head is not None:
        commit(repo)
    selection = select_in(repo, base="HEAD" if head is None else "HEAD~1", head=head)
    assert selection.affected.names == ("lnk",)
    whole = selection.repo.graph.images["lnk"].inputs.whole
    assert whole is not None
    assert whole.describe() == (
        "images/lnk/Dockerfile:2 COPY lib/ /lib/ "
        "(images/lnk/lib is a symbolic link, which BuildKit follows)"
    )
    assert selection.repo.graph.images["plain"].inputs.whole is None


def test_an_in_repo_parents_onbuild_reads_the_childs_whole_context(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            "builder.yaml": "namespace: acme\n",
            "base-images/base/Dockerfile": "FROM node:20\nONBUILD COPY . /app\n",
            "images/web/Dockerfile": "FROM acme/base\nCOPY main.js /\n",
            "images/web/notes.txt": "\n",
        }
    )
    commit(repo, {"images/web/notes.txt": "x\n"})
    [image] = select_in(repo, base="HEAD~1", head="HEAD").affected.images
    assert image.name == "web"
    assert image.reasons[0].source == (
        "base-images/base/Dockerfile:2 ONBUILD COPY . /app "
        "(the trigger of in-repo parent base runs in this image's context)"
    )
