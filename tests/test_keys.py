"""Content keys: deterministic, and changed by exactly the inputs a build reads."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from builder import keys as keys_module
from builder.git import Git, RevisionSnapshot
from builder.inputs import Inputs
from builder.keys import compute_keys, key_tag
from builder.repo import load_repo
from tests.conftest import Files, commit, git, load_files, write_files

PY_1 = "sha256:" + "1" * 64
PY_2 = "sha256:" + "2" * 64

TREE = {
    "builder.yaml": "namespace: acme\nbuild_args: {PIP_INDEX: 'https://pypi.org/simple'}\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\nCOPY requirements.txt /\n",
    "base-images/base/requirements.txt": "requests\n",
    "images/api/Dockerfile": "ARG PIP_INDEX\nFROM acme/base\nCOPY . /app\n",
    "images/api/.dockerignore": "*.md\ntests\n",
    "images/api/app.py": "print('api')\n",
    "images/api/README.md": "# api\n",
    "images/api/tests/test_api.py": "\n",
    "images/api-extra/notes.txt": "a sibling directory sharing api's prefix\n",
    "images/api2/notes.txt": "another one\n",
    "images/worker/Dockerfile": "FROM acme/api\nCOPY . /worker\n",
    "images/worker/job.py": "\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\nCOPY main.sh /\n",
    "images/cli/main.sh": "echo hi\n",
    "images/cli/image.yaml": "depends_on: [base]\nwatch: ['libs/common/**']\n",
    "libs/common/util.py": "\n",
    "libs/other/x.py": "\n",
    "docs/index.md": "docs\n",
}
NAMES = ("api", "base", "cli", "worker")


def oid(text: str) -> str:
    """A stand-in for git's blob id: any function of the content will do."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def keys_of(
    files: Mapping[str, str],
    *,
    base_digests: Mapping[str, str] | None = None,
    platforms: tuple[str, ...] | None = None,
) -> dict[str, str]:
    repo = load_files(files)
    ids = {path: oid(text) for path, text in files.items()}
    return compute_keys(repo.graph, ids, base_digests=base_digests, platforms=platforms)


def changed(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(sorted(n for n in before if before[n] != after.get(n)))


def edit(files: Mapping[str, str], changes: Files) -> dict[str, str]:
    result = dict(files)
    for path, text in changes.items():
        if text is None:
            del result[path]
        else:
            result[path] = text
    return result


def test_keys_are_deterministic_hex() -> None:
    first = keys_of(TREE)
    assert set(first) == set(NAMES)
    assert all(re.fullmatch(r"[0-9a-f]{64}", k) for k in first.values())
    assert keys_of(dict(reversed(list(TREE.items())))) == first
    assert len(set(first.values())) == len(NAMES)


def test_key_tag() -> None:
    assert key_tag("0123456789abcdef" + "f" * 48) == "key-0123456789abcdef"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"images/api/app.py": "x\n"}, ("api", "worker"), id="context-file"),
        pytest.param({"images/api/new.py": "x\n"}, ("api", "worker"), id="added-file"),
        pytest.param({"images/api/app.py": None}, ("api", "worker"), id="deleted-file"),
        pytest.param({"images/api/README.md": "x\n"}, (), id="dockerignored-file"),
        pytest.param({"images/api/tests/test_api.py": "x\n"}, (), id="dockerignored-dir"),
        pytest.param({"images/api/docs/x.md": "x\n"}, ("api", "worker"), id="star-md-root-only"),
        pytest.param({"images/api-extra/notes.txt": "x\n"}, (), id="prefix-sibling-dash"),
        pytest.param({"images/api2/notes.txt": "x\n"}, (), id="prefix-sibling-digit"),
        pytest.param({"docs/index.md": "x\n"}, (), id="outside-every-context"),
        pytest.param(
            {"images/api/Dockerfile": "ARG PIP_INDEX\nFROM acme/base\nCOPY . /srv\n"},
            ("api", "worker"),
            id="dockerfile",
        ),
        pytest.param({"images/api/.dockerignore": "*.md\n"}, ("api", "worker"), id="dockerignore"),
        pytest.param(
            {"images/api/Dockerfile.dockerignore": "*.md\ntests\n"},
            ("api", "worker"),
            id="per-dockerfile-ignore-takes-over",
        ),
        pytest.param(
            {
                "builder.yaml": "namespace: acme\n"
                "build_args: {PIP_INDEX: 'https://mirror.example/simple'}\n"
            },
            ("api", "worker"),
            id="declared-build-arg",
        ),
        pytest.param(
            {
                "builder.yaml": "namespace: acme\n"
                "build_args: {PIP_INDEX: 'https://pypi.org/simple', OTHER: x}\n"
            },
            (),
            id="undeclared-build-arg",
        ),
        pytest.param(
            {"images/worker/image.yaml": "platforms: [linux/amd64]\n"},
            ("worker",),
            id="platforms",
        ),
        pytest.param(
            {
                "images/worker/Dockerfile": "FROM acme/api AS app\nFROM app AS test\n",
                "images/worker/image.yaml": "target: app\n",
            },
            ("worker",),
            id="target-and-dockerfile",
        ),
        pytest.param({"libs/common/util.py": "x\n"}, ("cli",), id="watched-file"),
        pytest.param({"libs/common/new.py": "x\n"}, ("cli",), id="watched-file-added"),
        pytest.param({"libs/other/x.py": "x\n"}, (), id="unwatched-file"),
        pytest.param(
            {"base-images/base/requirements.txt": "httpx\n"},
            ("api", "base", "cli", "worker"),
            id="parent-key-propagates-incl-depends-on",
        ),
    ],
)
def test_what_changes_a_key(changes: Files, expected: tuple[str, ...]) -> None:
    assert changed(keys_of(TREE), keys_of(edit(TREE, changes))) == expected


def test_target_alone_changes_the_key() -> None:
    files = {
        **TREE,
        "images/worker/Dockerfile": "FROM acme/api AS app\nFROM app AS test\n",
        "images/worker/image.yaml": "target: app\n",
        # The context ignores image.yaml, so only the resolved target can tell them apart.
        "images/worker/.dockerignore": "image.yaml\n",
    }
    other = edit(files, {"images/worker/image.yaml": "target: test\n"})
    assert changed(keys_of(files), keys_of(other)) == ("worker",)


def test_platform_override_changes_keys_but_not_its_order() -> None:
    default = keys_of(TREE)
    assert keys_of(TREE, platforms=("linux/arm64", "linux/amd64")) == default
    assert changed(default, keys_of(TREE, platforms=("linux/amd64",))) == NAMES


def test_external_base_digests() -> None:
    unknown = keys_of(TREE)
    first = keys_of(TREE, base_digests={"python:3.12-slim": PY_1})
    second = keys_of(TREE, base_digests={"python:3.12-slim": PY_2})
    assert changed(unknown, first) == ("api", "base", "cli", "worker")
    assert changed(first, second) == ("api", "base", "cli", "worker")
    # Only the bases an image names count: a digest for anything else changes nothing.
    assert keys_of(TREE, base_digests={"python:3.12-slim": PY_1, "ubuntu:24.04": PY_2}) == first
    alpine = keys_of(TREE, base_digests={"alpine:3.20": PY_1})
    assert changed(unknown, alpine) == ("cli",)


def test_the_oid_not_the_path_list_is_hashed() -> None:
    repo = load_files(TREE)
    ids = {path: oid(text) for path, text in TREE.items()}
    other = {**ids, "images/worker/job.py": "0" * 40}
    assert changed(compute_keys(repo.graph, ids), compute_keys(repo.graph, other)) == ("worker",)


def test_undecodable_file_names_are_hashed() -> None:
    repo = load_files(TREE)
    ids = {path: oid(text) for path, text in TREE.items()}
    odd = {**ids, "images/worker/\udcff.bin": "0" * 40}  # os.fsdecode of a non-UTF-8 name
    assert changed(compute_keys(repo.graph, ids), compute_keys(repo.graph, odd)) == ("worker",)


SHARED = {
    "builder.yaml": "namespace: acme\n",
    ".dockerignore": "docs\n",
    "src/app.py": "\n",
    "docs/guide.md": "\n",
    "images/one/Dockerfile": "FROM python:3.12\nCOPY . /src\n",
    "images/one/image.yaml": "context: ../..\n",
    "images/two/Dockerfile": "FROM python:3.12\nCOPY src /src\n",
    "images/two/image.yaml": "context: ../..\n",
    "images/three/Dockerfile": "FROM python:3.12\nCOPY . /src\n",
    "images/three/image.yaml": "context: ../..\n",
    "images/three/Dockerfile.dockerignore": "*\n!src\n",
    "images/four/Dockerfile": "FROM python:3.13\nCOPY . /app\n",
    "images/four/image.yaml": "context: ../..\n",
}


def count_context_hashes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, tuple[str, ...]]]:
    calls: list[tuple[str, str, tuple[str, ...]]] = []
    original = keys_module._context_hash

    def counting(
        paths: Sequence[str],
        file_ids: Mapping[str, str],
        context: str,
        ignore_text: str,
        inputs: Inputs,
    ) -> str:
        calls.append((context, ignore_text, inputs.patterns))
        return original(paths, file_ids, context, ignore_text, inputs)

    monkeypatch.setattr(keys_module, "_context_hash", counting)
    return calls


def test_one_context_hash_per_context_ignore_and_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_context_hashes(monkeypatch)
    keys = keys_of(SHARED)
    # one and four share the repo root, its .dockerignore and `COPY .`; two reads only src;
    # three has its own ignore file.
    assert sorted(calls) == [
        (".", "*\n!src\n", (".",)),
        (".", "docs\n", (".",)),
        (".", "docs\n", ("src",)),
    ]
    assert len(set(keys.values())) == 4  # the Dockerfiles still tell them apart


def test_repo_root_context_honours_its_dockerignore_and_the_reads() -> None:
    before = keys_of(SHARED)
    assert changed(before, keys_of(edit(SHARED, {"docs/guide.md": "x\n"}))) == ()
    assert changed(before, keys_of(edit(SHARED, {"src/app.py": "x\n"}))) == (
        "four",
        "one",
        "three",
        "two",
    )
    # two reads only src/; three's ignore file keeps only src.
    assert changed(before, keys_of(edit(SHARED, {"images/one/x.py": "x\n"}))) == ("four", "one")


@pytest.mark.parametrize(
    ("watch", "path", "hit"),
    [
        ("['libs/common/**']", "libs/common/deep/x.py", True),
        ("['libs/common/**']", "libs/commonx/x.py", False),
        ("['libs/common']", "libs/common/x.py", True),  # a directory: everything beneath
        ("['/libs/common/']", "libs/common/x.py", True),
        ("['*.sql']", "anywhere/deep/q.sql", True),
        ("['**/schema.sql']", "db/schema.sql", True),
        ("['common/']", "libs/common/x.py", True),  # no inner slash: floats to any depth
        ("['common/']", "libs/other/x.py", False),
        ("['libs/*/sql/**']", "libs/etl/sql/a.sql", True),
        ("['libs/[ce]*/**']", "libs/etl/a.py", True),
        ("['libs/[ce]*/**']", "libs/other/a.py", False),
        ("['libs/**', '!libs/*.md']", "libs/README.md", False),
        ("['libs/**', '!libs/*.md']", "libs/x/README.md", True),
        ("['sql/**', 'libs/common/**']", "libs/common/x.py", True),  # two anchored prefixes
        ("['sql/**', 'libs/common/**']", "libs/other/x.py", False),
        ("['sql/**', '*.cfg']", "etc/app.cfg", True),  # one floating glob: every path counts
    ],
)
def test_watch_globs(watch: str, path: str, hit: bool) -> None:
    files = {
        **TREE,
        "images/cli/image.yaml": f"watch: {watch}\n",
        path: "before\n",
    }
    before, after = keys_of(files), keys_of(edit(files, {path: "after\n"}))
    assert changed(before, after) == (("cli",) if hit else ())


def test_a_linked_dockerfile_is_keyed_by_what_it_names(tmp_path: Path) -> None:
    """In a real repo: the link's own blob never changes, the file it names does."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    write_files(repo, {**TREE, "shared/Dockerfile": "FROM alpine:3.20\nRUN echo 1\n"})
    (repo / "images/cli/Dockerfile").unlink()
    (repo / "images/cli/Dockerfile").symlink_to("../../shared/Dockerfile")
    first = commit(repo, message="initial")
    second = commit(repo, {"shared/Dockerfile": "FROM alpine:3.20\nRUN echo 2\n"})

    def keys_at(sha: str) -> dict[str, str]:
        repository = Git(repo)
        graph = load_repo(RevisionSnapshot(repository, sha)).graph
        return compute_keys(graph, repository.file_ids(sha))

    assert changed(keys_at(first), keys_at(second)) == ("cli",)


# -- narrowed inputs: only the context files the build reads ----------------------------------

NARROW = {
    "builder.yaml": "namespace: acme\n",
    "images/api/Dockerfile": "FROM python:3.12\nCOPY src/ /app/src\nCOPY *.txt /app/\n",
    "images/api/src/app.py": "\n",
    "images/api/req.txt": "\n",
    "images/api/docs/guide.md": "\n",
    "images/api/sub/x.txt": "\n",
    "images/bin/Dockerfile": "FROM alpine\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/app /app\n",
    "images/bin/image.yaml": "platforms: [linux/amd64, linux/arm64]\n",
    "images/bin/bin/amd64/app": "\n",
    "images/bin/bin/riscv64/app": "\n",
    "images/root/Dockerfile": "FROM alpine\nCOPY shared/conf/ /conf/\nCOPY images/root/run.sh /\n",
    "images/root/image.yaml": "context: ../..\n",
    "images/root/run.sh": "\n",
    "shared/conf/a.yaml": "\n",
    "shared/other/b.yaml": "\n",
}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"images/api/src/app.py": "x\n"}, ("api",)),
        ({"images/api/src/new.py": "x\n"}, ("api",)),
        ({"images/api/req.txt": "x\n"}, ("api",)),
        ({"images/api/docs/guide.md": "x\n"}, ()),
        ({"images/api/sub/x.txt": "x\n"}, ()),
        ({"images/bin/bin/amd64/app": "x\n"}, ("bin",)),
        ({"images/bin/bin/riscv64/app": "x\n"}, ()),
        ({"shared/conf/a.yaml": "x\n"}, ("root",)),
        ({"shared/other/b.yaml": "x\n"}, ()),
        ({"images/root/run.sh": "x\n"}, ("root",)),
    ],
)
def test_a_key_counts_only_the_files_the_build_reads(changes: Files, expected: tuple[str]) -> None:
    assert changed(keys_of(NARROW), keys_of(edit(NARROW, changes))) == expected


def test_a_platform_the_dockerfile_was_not_read_for_counts_the_whole_context() -> None:
    riscv = ("linux/riscv64",)
    before = keys_of(NARROW, platforms=riscv)
    after = keys_of(edit(NARROW, {"images/bin/bin/riscv64/app": "x\n"}), platforms=riscv)
    assert changed(before, after) == ("bin",)
    # A subset of the platforms it was read for reads nothing new.
    amd64 = ("linux/amd64",)
    before = keys_of(NARROW, platforms=amd64)
    after = keys_of(edit(NARROW, {"images/bin/bin/riscv64/app": "x\n"}), platforms=amd64)
    assert changed(before, after) == ()


def test_input_paths_follow_the_reads() -> None:
    images = load_files(
        {
            **NARROW,
            "images/glob/Dockerfile": "FROM alpine\nCOPY *.txt /\n",
            "images/glob/image.yaml": "context: ../..\n",
            "images/whole/Dockerfile": "FROM alpine\nCOPY . /\n",
        }
    ).graph.images
    assert keys_module.input_paths(images["api"]) == (
        "images/api",  # `*.txt` may match anywhere in the context's top folder
        "images/api/Dockerfile",
        "images/api/Dockerfile.dockerignore",
        "images/api/.dockerignore",
    )
    assert keys_module.input_paths(images["root"]) == (
        "images/root/run.sh",
        "shared/conf",
        "images/root/Dockerfile",
        "images/root/Dockerfile.dockerignore",
        ".dockerignore",
    )
    assert keys_module.input_paths(images["bin"])[0] == "images/bin"  # per platform
    assert keys_module.input_paths(images["glob"]) is None  # anywhere at the repo root
    assert keys_module.input_paths(images["whole"])[0] == "images/whole"
