"""A catalogue of bad inputs, each through the real CLI in a real git repo.

Every case asserts the one-line message (with file:line where there is a file), exit code
2, no traceback, and that no engine or registry was touched: `docker` on PATH is a shim
that records its calls, DOCKER_HOST names no socket and pushing cases aim at a closed
port. A few inputs look bad but must work (a detached HEAD, odd file names, a shallow
clone without the base); those assert the result instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import Result

from tests.conftest import commit, git, invoke

FileMap = dict[str, str | bytes | None]
Setup = Callable[[Path], Path]  # tmp_path -> the directory to run in

BASE: FileMap = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": "FROM acme/base\nCOPY . /app\n",
    "images/api/app.py": "print('hi')\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\nCOPY . /cli\n",
}
IGNORE_HINT = "Docker refuses the whole file, so every build of this context would fail"
CYCLE_HINT = " (an image cannot be built on itself, directly or through others)"
PLATFORM_HINT = " (expected os/arch[/variant], e.g. linux/arm64)"
NAME_HINT = " (lowercase letters, digits, '.', '_' and '-'; set 'name' in image.yaml)"
REVISION_HINT = " (check the name, or fetch more history with git fetch --unshallow)"
CLOSED_REGISTRY = "127.0.0.1:9"  # nothing listens on the discard port
# Pushing for real, minus the engine: the input error must come before any engine check.
PUSH = ("build", "--registry", CLOSED_REGISTRY)


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # the command and its options; `-C <repo>` is added
    error: str  # stderr's one line after "error: "; "{repo}" is the directory run in
    files: FileMap = field(default_factory=dict)  # laid over BASE; None deletes
    setup: Setup | None = None
    env: dict[str, str] = field(default_factory=dict)  # laid over the test's environment


def write(repo: Path, files: FileMap) -> None:
    for relative, content in files.items():
        path = repo / relative
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def new_repo(tmp_path: Path, files: FileMap, *, committed: bool = True) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    write(repo, {**BASE, **files})
    if committed:
        commit(repo, message="initial")
    return repo


@pytest.fixture
def no_engine(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment where any docker call is recorded and fails, and no socket exists."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls"
    shim = bin_dir / "docker"
    shim.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n', encoding="utf-8")
    shim.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DOCKER_HOST": "unix:///nonexistent.sock",
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
    }
    return env, calls


# -- setups that need more than files ---------------------------------------------------


def plain_directory(tmp_path: Path) -> Path:
    plain = tmp_path / "x"
    plain.mkdir()
    return plain


def missing_directory(tmp_path: Path) -> Path:
    return tmp_path / "nowhere"


def no_commits(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")
    write(empty, BASE)
    return empty


def outside_dir(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "Dockerfile").write_text("FROM alpine:3.20\n", encoding="utf-8")
    (outside / "secret.txt").write_text("not yours\n", encoding="utf-8")
    return outside


def symlinked_context(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, {})
    (repo / "images/cli/ctx").symlink_to(outside_dir(tmp_path), target_is_directory=True)
    commit(repo, {"images/cli/image.yaml": "context: ctx\n"})
    return repo


def symlinked_context_parent(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, {})
    (repo / "images/cli/ctx").symlink_to(outside_dir(tmp_path), target_is_directory=True)
    commit(repo, {"images/cli/image.yaml": "context: ctx/sub\n"})
    return repo


def not_owned(tmp_path: Path) -> Path:
    """A checkout someone else owns: git refuses it (safe.directory) unless told to trust it."""
    repo = new_repo(tmp_path, {})
    for path in (repo, *repo.rglob("*")):
        os.lchown(path, 65534, 65534)
    return repo


def bare_repository(tmp_path: Path) -> Path:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    return bare


def inside_dot_git(tmp_path: Path) -> Path:
    return new_repo(tmp_path, {}) / ".git"


def gitlink(repo: Path, path: str) -> None:
    """Record a submodule at `path`: a commit of another repository, no files."""
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")
    git(repo, "commit", "--quiet", "--message", "submodule")


def no_images(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, {})
    git(repo, "rm", "--quiet", "-r", "base-images", "images")
    commit(repo)
    return repo


def settings_directory(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, {})
    git(repo, "rm", "--quiet", "builder.yaml")
    commit(repo, {"builder.yaml/settings.yaml": "namespace: acme\n"})
    return repo


def dockerfile_directory(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, {})
    git(repo, "rm", "--quiet", "images/cli/Dockerfile")
    commit(repo, {"images/cli/Dockerfile/Dockerfile": "FROM alpine:3.20\n"})
    return repo


def submodule_image(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, {})
    gitlink(repo, "images/vendored")
    return repo


def submodule_root(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, {"builder.yaml": "namespace: acme\nimage_roots: [images, vendor]\n"})
    gitlink(repo, "vendor")
    return repo


def symlinked_dockerfile(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, {})
    (repo / "images/cli/Dockerfile").unlink()
    (repo / "images/cli/Dockerfile").symlink_to(outside_dir(tmp_path) / "Dockerfile")
    commit(repo)
    return repo


# -- builder pin: a repo with one Argo consumer and the metadata file of a push -----------

PIN_SHA = "sha256:" + "a" * 64


def pin_metadata(**statuses: str) -> str:
    images = {}
    for name in ("base", "api", "cli"):
        status = statuses.get(name, "built")
        pushed = status == "built"
        images[name] = {
            "status": status,
            "reason": "boom" if status == "failed" else "",
            "repository": f"docker.io/acme/{name}",
            "digest": PIN_SHA if pushed else None,
            "pinned": f"docker.io/acme/{name}@{PIN_SHA}" if pushed else None,
        }
    return json.dumps({"revision": "1" * 40, "push": True, "images": images})


PIN_FILES: FileMap = {
    "builder.yaml": "namespace: acme\nconsumers:\n  - deploy/*.yaml\n",
    "deploy/wf.yaml": (
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        "    - container: {image: acme/api:1}\n"
    ),
    "meta.json": pin_metadata(),
}
PIN = ("pin", "--metadata-file", "{repo}/meta.json")


PROMOTE = ("promote", "--to", "prod", "--from", "main")
OWN_TAG = " (promote to a tag of your own, e.g. prod or staging)"
ONE_SOURCE = "give one source: --from TAG or --metadata-file PATH"
ONE_SOURCE += " (e.g. builder promote --from main --to prod)"
PIN_SOURCE = "give one source: --metadata-file PATH or --from-tag TAG"
PIN_SOURCE += " (e.g. builder pin --from-tag main)"
TAG_HINT = " (up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')"


def pin_case(args: tuple[str, ...], error: str, files: FileMap | None = None) -> Case:
    return Case(args, error, {**PIN_FILES, **(files or {})})


def consumers(block: str) -> FileMap:
    return {"builder.yaml": f"namespace: acme\nconsumers:\n{block}"}


def dirty_consumer(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path, PIN_FILES)
    (repo / "deploy/wf.yaml").write_text("# edited\n" + str(PIN_FILES["deploy/wf.yaml"]))
    return repo


def P(case: Case, id: str) -> object:  # noqa: N802 - reads like pytest.param
    return pytest.param(case, id=id)


# -- hostile inputs: each once hung builder or ended in a traceback ---------------------

# The "billion laughs": nine aliases of nine aliases of ..., 400 bytes for 10**9 values.
LAUGHS = "namespace: acme\nlol0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)
# Each anchor holds the one before: two levels in the text, a hundred through the aliases.
ALIAS_CHAIN = "name: cli\nx0: &x0 [a]\n" + "".join(
    f"x{i}: &x{i} [*x{i - 1}]\n" for i in range(1, 100)
)
ALIASES_HINT = " (aliases may add at most 10000 values; write the values out)"


CASES = [
    # -- Dockerfiles ----------------------------------------------------------------------
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile: cannot parse Dockerfile: file with no instructions",
            {"images/cli/Dockerfile": ""},
        ),
        "dockerfile-empty",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile: cannot parse Dockerfile: file with no instructions",
            {"images/cli/Dockerfile": "# nothing but a comment\n\n"},
        ),
        "dockerfile-comments-only",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: cannot parse Dockerfile: unterminated heredoc",
            {"images/cli/Dockerfile": "FROM alpine:3.20\nRUN <<EOF\necho hi\n"},
        ),
        "dockerfile-unterminated-heredoc",
    ),
    P(
        Case(
            ("affected",),
            "images/cli/Dockerfile:3: cannot parse Dockerfile: ENV must have two arguments",
            {"images/cli/Dockerfile": "FROM alpine:3.20\nRUN true\nENV ONLY_A_NAME\n"},
        ),
        "dockerfile-unparsable-instruction",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile: no FROM instruction (add a FROM line)",
            {"images/cli/Dockerfile": "ARG VERSION=1\n"},
        ),
        "dockerfile-no-from",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: RUN before the first FROM "
            "(a Dockerfile must start with FROM; only ARG may precede it)",
            {"images/cli/Dockerfile": "RUN echo hi\nFROM alpine:3.20\n"},
        ),
        "dockerfile-instruction-before-from",
    ),
    P(
        Case(
            ("plan",),
            "images/cli/Dockerfile:1: FROM names no image (expected FROM IMAGE [AS NAME])",
            {"images/cli/Dockerfile": "FROM\n"},
        ),
        "dockerfile-from-nothing",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: malformed FROM 'alpine AS' (expected FROM IMAGE [AS NAME])",
            {"images/cli/Dockerfile": "FROM alpine AS\n"},
        ),
        "dockerfile-malformed-from",
    ),
    P(
        Case(
            ("affected",),
            "images/cli/Dockerfile:2: '${BASE}' expands to an empty image name "
            "(give the ARG a default or set it in build_args)",
            {"images/cli/Dockerfile": "ARG BASE\nFROM ${BASE}\n"},
        ),
        "dockerfile-arg-expands-to-empty-from",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: cannot expand '${BASE': missing '}'",
            {"images/cli/Dockerfile": "FROM ${BASE\n"},
        ),
        "dockerfile-bad-substitution",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: invalid image reference 'Alpine:3.20' "
            "(repository names must be lowercase)",
            {"images/cli/Dockerfile": "FROM Alpine:3.20\n"},
        ),
        "dockerfile-uppercase-reference",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: invalid tag '-rc' in image reference 'alpine:-rc'",
            {"images/cli/Dockerfile": "FROM alpine:-rc\n"},
        ),
        "dockerfile-invalid-tag",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: invalid digest in image reference 'alpine@sha256:beef'",
            {"images/cli/Dockerfile": "FROM alpine@sha256:beef\n"},
        ),
        "dockerfile-invalid-digest",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: invalid image reference 'Tools' "
            "(repository names must be lowercase)",
            {"images/cli/Dockerfile": "FROM alpine\nRUN --mount=from=Tools,target=/t true\n"},
        ),
        "dockerfile-invalid-mount-from",
    ),
    P(
        Case(
            ("plan",),
            "images/cli/image.yaml:2: 'target' 'prod' is not a stage of images/cli/Dockerfile "
            "(named stages: build)",
            {
                "images/cli/Dockerfile": "FROM alpine AS build\nFROM build\n",
                "images/cli/image.yaml": "platforms: [linux/amd64]\ntarget: prod\n",
            },
        ),
        "dockerfile-target-undefined",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: contains a NUL character (is it a text file?)",
            {"images/cli/Dockerfile": b"FROM alpine\nRUN true\x00\n"},
        ),
        "dockerfile-nul-byte",
    ),
    P(
        Case(
            ("affected",),
            "images/cli/Dockerfile:2: is not UTF-8 text (save it as UTF-8)",
            {"images/cli/Dockerfile": b"FROM alpine\nLABEL note=caf\xe9\n"},
        ),
        "dockerfile-not-utf8",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: Dockerfile images/cli/Dockerfile.prod does not exist "
            "(add it, or point 'dockerfile' in image.yaml at the right file)",
            {"images/cli/image.yaml": "dockerfile: Dockerfile.prod\n"},
        ),
        "dockerfile-missing",
    ),
    # -- supply chain (issue 14) --------------------------------------------------------------
    P(
        Case(
            PUSH,
            "builder.yaml:2: 'provenance' must be max, min or off, got a string "
            "(max records the build's inputs and arguments; min only its materials)",
            {"builder.yaml": "namespace: acme\nprovenance: full\n"},
        ),
        "provenance-unknown-mode",
    ),
    P(
        Case(
            PUSH,
            "builder.yaml:3: 'sbom.generator': invalid image reference 'Scanner' (repository "
            "names must be lowercase) (an image that follows BuildKit's SBOM generator "
            "protocol, e.g. docker/buildkit-syft-scanner)",
            {"builder.yaml": "namespace: acme\nsbom:\n  generator: Scanner\n"},
        ),
        "sbom-generator-invalid",
    ),
    P(
        Case(
            PUSH,
            "builder.yaml:3: unknown key 'public_key' in 'signing' "
            "(known keys: key, identity, issuer, tlog)",
            {"builder.yaml": "namespace: acme\nsigning:\n  public_key: cosign.pub\n"},
        ),
        "signing-unknown-key",
    ),
    P(
        Case(
            ("verify",),
            "builder.yaml: builder verify needs to know who signs: builder.yaml names no "
            "signing key or identity (add `signing: {key: cosign.pub}`, or `signing: "
            "{identity: REGEXP, issuer: URL}` for keyless signatures)",
        ),
        "verify-without-a-signer",
    ),
    P(
        Case(
            ("verify", "--all", "--metadata-file", "meta.json"),
            "--metadata-file and --all name different sets of images; pick one",
        ),
        "verify-two-selections",
    ),
    # -- YAML syntax ----------------------------------------------------------------------
    P(
        Case(
            ("graph",),
            "builder.yaml:3: invalid YAML: while parsing a flow sequence started on line 2, "
            "expected ',' or ']', but got '<stream end>'",
            {"builder.yaml": "namespace: acme\nplatforms: [linux/amd64\n"},
        ),
        "builder-yaml-unclosed-list",
    ),
    P(
        Case(
            ("affected",),
            "builder.yaml:2: invalid YAML: found character '\\t' that cannot start any token",
            {"builder.yaml": "namespace: acme\n\tregistry: ghcr.io\n"},
        ),
        "builder-yaml-tab",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: invalid YAML: mapping values are not allowed here",
            {"builder.yaml": "namespace: acme\n  registry: ghcr.io\n"},
        ),
        "builder-yaml-bad-indent",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:1: expected a mapping of settings at the top level",
            {"builder.yaml": "- namespace: acme\n"},
        ),
        "builder-yaml-not-a-mapping",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: duplicate key 'namespace'",
            {"builder.yaml": "namespace: acme\nnamespace: other\n"},
        ),
        "builder-yaml-duplicate-key",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:1: invalid YAML: found undefined alias 'x'",
            {"builder.yaml": "namespace: *x\n"},
        ),
        "builder-yaml-undefined-alias",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: invalid value for 'cache': could not determine a constructor "
            "for the tag 'tag:yaml.org,2002:python/object/apply:os.system'",
            {"builder.yaml": "namespace: acme\ncache: !!python/object/apply:os.system [id]\n"},
        ),
        "builder-yaml-python-tag",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: is not UTF-8 text (save it as UTF-8)",
            {"builder.yaml": b"namespace: acme\ndefault_branch: ma\xefn\n"},
        ),
        "builder-yaml-not-utf8",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:2: invalid YAML: while scanning a quoted scalar "
            "started on line 1, "
            "found unexpected end of stream",
            {"images/cli/image.yaml": "name: 'cli\n"},
        ),
        "image-yaml-unclosed-quote",
    ),
    P(
        Case(
            ("plan",),
            "images/cli/image.yaml:2: invalid YAML: expected a single document in the stream, "
            "but found another document",
            {"images/cli/image.yaml": "name: cli\n---\nname: other\n"},
        ),
        "image-yaml-two-documents",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: expected a mapping of settings at the top level",
            {"images/cli/image.yaml": "just some words\n"},
        ),
        "image-yaml-not-a-mapping",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: is not UTF-8 text (save it as UTF-8)",
            {"images/cli/image.yaml": b"name: cl\xff\n"},
        ),
        "image-yaml-not-utf8",
    ),
    # -- wrong types: every key of builder.yaml --------------------------------------------
    P(
        Case(
            ("graph",),
            "builder.yaml:1: 'registry' must be a non-empty string, got a list",
            {"builder.yaml": "registry: [ghcr.io]\n"},
        ),
        "builder-registry-type",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:1: 'namespace' must be a non-empty string, got int 42",
            {"builder.yaml": "namespace: 42\n"},
        ),
        "builder-namespace-type",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: 'image_roots' must be a list of non-empty strings, got a string",
            {"builder.yaml": "namespace: acme\nimage_roots: images\n"},
        ),
        "builder-image-roots-type",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: 'platforms' must be a list of non-empty strings, got a string",
            {"builder.yaml": "namespace: acme\nplatforms: linux/amd64\n"},
        ),
        "builder-platforms-type",
    ),
    P(
        Case(
            ("affected",),
            "builder.yaml:2: 'default_branch' must be a non-empty string, got a list",
            {"builder.yaml": "namespace: acme\ndefault_branch: [main]\n"},
        ),
        "builder-default-branch-type",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: 'build_args' must be a mapping of NAME: value, got a list",
            {"builder.yaml": "namespace: acme\nbuild_args: [A=1]\n"},
        ),
        "builder-build-args-type",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: build arg 'A' must be a string or number, got a list",
            {"builder.yaml": "namespace: acme\nbuild_args: {A: [1]}\n"},
        ),
        "builder-build-arg-value-type",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: 'cache' must be true or false, got int 1",
            {"builder.yaml": "namespace: acme\ncache: 1\n"},
        ),
        "builder-cache-type",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: image root '../elsewhere' must be a directory inside the repository",
            {"builder.yaml": "namespace: acme\nimage_roots: [../elsewhere]\n"},
        ),
        "builder-image-root-escapes",
    ),
    # -- wrong types: every key of image.yaml ----------------------------------------------
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'name' must be a non-empty string, got int 42",
            {"images/cli/image.yaml": "name: 42\n"},
        ),
        "image-name-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'dockerfile' must be a non-empty string, got a list",
            {"images/cli/image.yaml": "dockerfile: [Dockerfile]\n"},
        ),
        "image-dockerfile-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'context' must be a non-empty string, got a boolean",
            {"images/cli/image.yaml": "context: true\n"},
        ),
        "image-context-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'build_args' must be a mapping of NAME: value, got a string",
            {"images/cli/image.yaml": "build_args: A=1\n"},
        ),
        "image-build-args-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'platforms' must be a list of non-empty strings, "
            "got a mapping",
            {"images/cli/image.yaml": "platforms: {linux: amd64}\n"},
        ),
        "image-platforms-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'target' must be a non-empty string, got int 3",
            {"images/cli/image.yaml": "target: 3\n"},
        ),
        "image-target-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'watch' must be a list of non-empty strings, got a string",
            {"images/cli/image.yaml": "watch: libs/**\n"},
        ),
        "image-watch-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'depends_on' must be a list of non-empty strings, "
            "got a string",
            {"images/cli/image.yaml": "depends_on: base\n"},
        ),
        "image-depends-on-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:2: invalid watch pattern '[z-a]' "
            "(use gitignore-style globs relative to the repo root, e.g. libs/common/**)",
            {"images/cli/image.yaml": "watch:\n  - '[z-a]'\n"},
        ),
        "image-watch-invalid-glob",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: invalid watch pattern '!' "
            "(use gitignore-style globs relative to the repo root, e.g. libs/common/**)",
            {"images/cli/image.yaml": "watch: ['!']\n"},
        ),
        "image-watch-bare-negation",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:1: 'not_images' must be a list of non-empty strings, got a string",
            {"builder.yaml": "not_images: tools/**\n"},
        ),
        "settings-not-images-type",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: invalid not_images pattern '[z-a]' "
            "(use gitignore-style globs relative to the repo root, e.g. libs/common/**)",
            {"builder.yaml": "not_images:\n  - '[z-a]'\n"},
        ),
        "settings-not-images-invalid-glob",
    ),
    # -- image tests (image.yaml test:, builder.yaml smoke_test:): refused before any build --
    P(
        Case(
            PUSH,
            "images/cli/image.yaml:1: 'test' must be a command, a list of commands or a "
            "mapping with 'run', got int 42 (e.g. test: python3 -c 'import job')",
            {"images/cli/image.yaml": "test: 42\n"},
        ),
        "image-test-type",
    ),
    P(
        Case(
            PUSH,
            "images/cli/image.yaml:2: 'test.run' must be a command or a list of commands, "
            "got a mapping",
            {"images/cli/image.yaml": "test:\n  run: {echo: ok}\n"},
        ),
        "image-test-run-type",
    ),
    P(
        Case(
            PUSH,
            "images/cli/image.yaml:4: 'test.run' command 2 is empty",
            {"images/cli/image.yaml": "test:\n  run:\n    - echo ok\n    - ''\n"},
        ),
        "image-test-empty-command",
    ),
    P(
        Case(
            PUSH,
            "images/cli/image.yaml:1: 'test' is an empty command",
            {"images/cli/image.yaml": "test: ' '\n"},
        ),
        "image-test-blank",
    ),
    P(
        Case(
            PUSH,
            "images/cli/image.yaml:5: test platform 'linux/riscv64' is not one of the image's "
            "platforms (linux/amd64, linux/arm64) (test some of the platforms the image is built "
            "for, or leave 'platforms' out to test them all)",
            {
                "images/cli/image.yaml": (
                    "test:\n  run: 'true'\n  platforms:\n    - linux/amd64\n    - linux/riscv64\n"
                )
            },
        ),
        "image-test-unknown-platform",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:3: unknown key 'timout' in 'test' (did you mean 'timeout'?)",
            {"images/cli/image.yaml": "test:\n  run: 'true'\n  timout: 30\n"},
        ),
        "image-test-unknown-key",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:3: 'test.timeout' must be a whole number of seconds, at "
            "least 1, got an empty string",
            {"images/cli/image.yaml": "test:\n  run: 'true'\n  timeout: ''\n"},
        ),
        "image-test-timeout-type",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:3: 'test.network' must be 'none' or 'default', got 'host' "
            "(tests run without a network unless they ask for docker's default one)",
            {"images/cli/image.yaml": "test:\n  run: 'true'\n  network: host\n"},
        ),
        "image-test-network",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:4: test env 'A' must be a string or number, got a list",
            {"images/cli/image.yaml": "test:\n  run: 'true'\n  env:\n    A: [1]\n"},
        ),
        "image-test-env-type",
    ),
    P(
        Case(
            PUSH,
            "builder.yaml:2: 'smoke_test' must be a non-empty string, got a boolean",
            {"builder.yaml": "namespace: acme\nsmoke_test: true\n"},
        ),
        "builder-smoke-test-type",
    ),
    P(
        Case(
            ("test", "--ref", "a:b"),
            "--ref 'a:b' is neither a tag nor a digest "
            "(e.g. --ref git-0123abc or --ref sha256:<64 hex>)",
        ),
        "test-ref-invalid",
    ),
    P(
        Case(
            ("test", "--only", "cli"),
            "cli: no test to run (add test: to the image's image.yaml, or smoke_test: to "
            "builder.yaml)",
        ),
        "test-nothing-to-test",
    ),
    P(
        Case(
            ("test", "--only", "zzz"),
            "--only names unknown image(s): zzz (known: api, base, cli)",
        ),
        "test-only-unknown",
    ),
    # -- unknown keys ---------------------------------------------------------------------
    P(
        Case(
            ("graph",),
            "builder.yaml:2: unknown key 'registy' (did you mean 'registry'?)",
            {"builder.yaml": "namespace: acme\nregisty: ghcr.io\n"},
        ),
        "builder-unknown-key",
    ),
    P(
        Case(
            ("affected",),
            "builder.yaml:2: unknown key 'platform' (did you mean 'platforms'?)",
            {"builder.yaml": "namespace: acme\nplatform: [linux/amd64]\n"},
        ),
        "builder-unknown-key-singular",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: unknown key 'depend_on' (did you mean 'depends_on'?)",
            {"images/cli/image.yaml": "depend_on: [base]\n"},
        ),
        "image-unknown-key",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: unknown key 'zzz' (known keys: name, dockerfile, "
            "context, build_args, platforms, target, watch, depends_on, repository, tag, "
            "tag_prefix, tag_suffix, test)",
            {"images/cli/image.yaml": "zzz: 1\n"},
        ),
        "image-unknown-key-no-match",
    ),
    # -- names, duplicates, the graph -----------------------------------------------------
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: duplicate image name 'api': also used by images/api "
            "(set a distinct 'name' in image.yaml)",
            {"images/cli/image.yaml": "name: api\n"},
        ),
        "duplicate-name",
    ),
    P(
        Case(
            ("affected",),
            "images/base: duplicate image name 'base': also used by base-images/base "
            "(set a distinct 'name' in image.yaml)",
            {"images/base/Dockerfile": "FROM alpine\n"},
        ),
        "duplicate-name-across-roots",
    ),
    P(
        Case(
            ("graph",),
            f"images/Tools: invalid image name 'Tools'{NAME_HINT}",
            {"images/Tools/Dockerfile": "FROM alpine\n"},
        ),
        "image-name-uppercase-dir",
    ),
    P(
        Case(
            ("graph",),
            f"images/my app: invalid image name 'my app'{NAME_HINT}",
            {"images/my app/Dockerfile": "FROM alpine\n"},
        ),
        "image-name-space-in-dir",
    ),
    P(
        Case(
            ("graph",),
            f"images/caf\\udce9: invalid image name 'caf\\udce9'{NAME_HINT}",
            {os.fsdecode(b"images/caf\xe9/Dockerfile"): "FROM alpine\n"},
        ),
        "image-name-dir-not-utf8",
    ),
    P(
        Case(
            ("graph",),
            f"images/cli/image.yaml:1: invalid image name 'team/cli'{NAME_HINT}",
            {"images/cli/image.yaml": "name: team/cli\n"},
        ),
        "image-name-bad-chars",
    ),
    P(
        Case(
            ("graph",),
            f"images/cli/Dockerfile:1: dependency cycle: cli -> cli{CYCLE_HINT}",
            {"images/cli/Dockerfile": "FROM acme/cli:latest\n"},
        ),
        "cycle-of-one",
    ),
    P(
        Case(
            ("affected",),
            f"images/api/Dockerfile:1: dependency cycle: api -> base -> api{CYCLE_HINT}",
            {"base-images/base/Dockerfile": "FROM acme/api\n"},
        ),
        "cycle-of-two",
    ),
    P(
        Case(
            ("plan",),
            f"images/api/Dockerfile:1: dependency cycle: api -> cli -> base -> api{CYCLE_HINT}",
            {
                "base-images/base/Dockerfile": "FROM python:3.12\nCOPY --from=acme/cli / /\n",
                "images/cli/Dockerfile": "ARG P=docker.io/acme\nFROM ${P}/api\n",
            },
        ),
        "cycle-of-three",
    ),
    P(
        Case(
            ("graph",),
            f"images/api/image.yaml:1: dependency cycle: api -> cli -> api{CYCLE_HINT}",
            {
                "images/api/image.yaml": "depends_on: [cli]\n",
                "images/cli/image.yaml": "depends_on: [api]\n",
            },
        ),
        "cycle-through-depends-on",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:2: unknown key 'build_arg' (did you mean 'build_args'?)",
            {"images/cli/image.yaml": "name: cli\nbuild_arg:\n  X: 1\n"},
        ),
        "image-unknown-block-key-names-its-line",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:4: build arg 'Y' must be a string or number, got a list",
            {"images/cli/image.yaml": "build_args:\n  X: 1\n\n  Y: [1]\n"},
        ),
        "image-build-arg-names-its-line",
    ),
    P(
        Case(
            ("affected",),
            "images/cli/.dockerignore:3: invalid pattern 'src/[abc': its character class is "
            f"malformed or not closed ({IGNORE_HINT})",
            {"images/cli/.dockerignore": "# build inputs only\n*.md\nsrc/[abc\n"},
        ),
        "dockerignore-unclosed-class",
    ),
    P(
        Case(
            ("plan",),
            "images/cli/Dockerfile.dockerignore:1: invalid pattern '!': '!' needs a pattern "
            f"after it ({IGNORE_HINT})",
            {"images/cli/Dockerfile.dockerignore": "!\n"},
        ),
        "dockerignore-bare-bang",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/.dockerignore:2: invalid pattern 'tmp\\\\': it ends in an escaping "
            f"backslash ({IGNORE_HINT})",
            {"images/cli/.dockerignore": "*.md\ntmp\\\n"},
        ),
        "dockerignore-trailing-backslash",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: depends_on names unknown image 'nope' "
            "(known images: api, base, cli)",
            {"images/cli/image.yaml": "depends_on: [base, nope]\n"},
        ),
        "depends-on-unknown",
    ),
    # -- escaping the repository ----------------------------------------------------------
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'context' '../../..' points outside the repository",
            {"images/cli/image.yaml": "context: ../../..\n"},
        ),
        "context-dotdot",
    ),
    P(
        Case(
            ("affected",),
            "images/cli/image.yaml:1: 'context' must be relative to the image directory, "
            "got absolute '/etc'",
            {"images/cli/image.yaml": "context: /etc\n"},
        ),
        "context-absolute",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'dockerfile' '../../../Dockerfile' "
            "points outside the repository",
            {"images/cli/image.yaml": "dockerfile: ../../../Dockerfile\n"},
        ),
        "dockerfile-dotdot",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'dockerfile' must be relative to the image directory, "
            "got absolute '/tmp/Dockerfile'",
            {"images/cli/image.yaml": "dockerfile: /tmp/Dockerfile\n"},
        ),
        "dockerfile-absolute",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'context' images/cli/ctx is a symbolic link "
            "(point 'context' at a real directory inside the repository)",
            setup=symlinked_context,
        ),
        "context-symlink-outside",
    ),
    P(
        Case(
            ("affected", "--head", "HEAD"),
            "images/cli/image.yaml:1: 'context' images/cli/ctx/sub is inside images/cli/ctx, "
            "which is a symbolic link (point 'context' at a real directory inside the repository)",
            setup=symlinked_context_parent,
        ),
        "context-under-a-symlink",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile: is a symbolic link to a file outside the repository "
            "(builder reads only what the repository holds; copy the file in)",
            setup=symlinked_dockerfile,
        ),
        "dockerfile-symlink-outside",
    ),
    P(
        Case(
            ("graph", "--rev", "HEAD"),
            "images/cli/Dockerfile: is a symbolic link to a file outside the repository "
            "(builder reads only what the repository holds; copy the file in)",
            setup=symlinked_dockerfile,
        ),
        "dockerfile-symlink-outside-at-a-commit",
    ),
    # -- platforms, registries, namespaces ------------------------------------------------
    P(
        Case(
            ("build", "--dry-run", "--platform", "linux"),
            f"--platform: invalid platform 'linux'{PLATFORM_HINT}",
        ),
        "platform-flag-no-arch",
    ),
    P(
        Case(
            ("plan", "--platform", "linux/amd64,"),
            f"--platform: invalid platform ''{PLATFORM_HINT}",
        ),
        "platform-flag-trailing-comma",
    ),
    P(
        Case(
            ("graph",),
            f"builder.yaml:2: invalid platform 'windows'{PLATFORM_HINT}",
            {"builder.yaml": "namespace: acme\nplatforms: [windows]\n"},
        ),
        "builder-platform-invalid",
    ),
    P(
        Case(
            ("graph",),
            f"images/cli/image.yaml:1: invalid platform 'Linux/AMD64'{PLATFORM_HINT}",
            {"images/cli/image.yaml": "platforms: [Linux/AMD64]\n"},
        ),
        "image-platform-invalid",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: 'platforms' must not be empty",
            {"builder.yaml": "namespace: acme\nplatforms: []\n"},
        ),
        "builder-platforms-empty",
    ),
    P(
        Case(
            ("build", "--dry-run", "--registry", "bad host"),
            "--registry: invalid registry 'bad host' (a host name such as docker.io, ghcr.io "
            "or localhost:5000; put an organisation in 'namespace')",
        ),
        "registry-flag-with-space",
    ),
    P(
        Case(
            ("affected", "--namespace", "Acme"),
            "--namespace: invalid namespace 'Acme' "
            "(lowercase letters, digits and separators, e.g. acme)",
        ),
        "namespace-flag-uppercase",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:1: invalid registry 'acme' (a host name such as docker.io, ghcr.io "
            "or localhost:5000; put an organisation in 'namespace')",
            {"builder.yaml": "registry: acme\nnamespace: team\n"},
        ),
        "builder-registry-not-a-host",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:1: invalid namespace 'acme/' "
            "(lowercase letters, digits and separators, e.g. acme)",
            {"builder.yaml": "namespace: acme/\n"},
        ),
        "builder-namespace-trailing-slash",
    ),
    # -- git: revisions and repositories --------------------------------------------------
    P(
        Case(("affected", "--base", "nope"), f"unknown git revision 'nope'{REVISION_HINT}"),
        "base-unknown",
    ),
    P(
        Case(
            ("affected", "--base", "-x"),
            "invalid git revision '-x' (a revision cannot start with '-')",
        ),
        "base-option-like",
    ),
    P(
        Case(("plan", "--head", "HEAD~999"), f"unknown git revision 'HEAD~999'{REVISION_HINT}"),
        "head-too-far-back",
    ),
    P(
        Case(("graph", "--rev", "v9.9.9"), f"unknown git revision 'v9.9.9'{REVISION_HINT}"),
        "graph-rev-unknown",
    ),
    P(
        Case(
            ("affected", "--base", "HEAD^{tree}"),
            f"unknown git revision 'HEAD^{{tree}}'{REVISION_HINT}",
        ),
        "base-not-a-commit",
    ),
    P(
        Case(
            ("affected",),
            "{repo} is not inside a git repository "
            "(run builder from a git checkout, or `git init` one)",
            setup=plain_directory,
        ),
        "not-a-git-repo",
    ),
    P(
        Case(("graph",), "{repo} is not a directory (check --repo)", setup=missing_directory),
        "repo-missing",
    ),
    P(
        Case(
            ("build", "--dry-run"),
            "the repository has no commits to build (commit first)",
            setup=no_commits,
        ),
        "no-commits-build",
    ),
    P(
        Case(
            ("affected", "--base", "HEAD"),
            f"unknown git revision 'HEAD'{REVISION_HINT}",
            setup=no_commits,
        ),
        "no-commits-base-head",
    ),
    # -- build options --------------------------------------------------------------------
    P(
        Case(
            ("build", "--dry-run", "--only", "nope"),
            "--only names unknown image(s): nope (known: api, base, cli)",
        ),
        "only-unknown",
    ),
    P(
        Case(
            ("build", "--dry-run", "--secret", "token"),
            "invalid --secret 'token' (use id=NAME,env=VARIABLE or id=NAME,src=PATH)",
        ),
        "secret-malformed",
    ),
    P(
        Case(
            ("build", "--dry-run", "--secret", "id=npm,value=hunter2"),
            "invalid --secret 'id=npm,value=hunter2' "
            "(use id=NAME,env=VARIABLE or id=NAME,src=PATH)",
        ),
        "secret-by-value",
    ),
    P(
        Case(("build", "--dry-run", "--jobs", "0"), "--jobs must be at least 1, got 0"),
        "jobs-zero",
    ),
    P(
        Case(("plan", "--max-generations", "0"), "--max-generations must be at least 1, got 0"),
        "max-generations-zero",
    ),
    P(
        Case(("build", "--dry-run", "-j", "-3"), "--jobs must be at least 1, got -3"),
        "jobs-negative",
    ),
    P(
        Case(("refresh", "--dry-run", "--jobs", "0"), "--jobs must be at least 1, got 0"),
        "refresh-jobs-zero",
    ),
    P(
        Case(
            ("build", "--dry-run", "--only", ""),
            "--only '' names no image (give an image name)",
        ),
        "only-empty",
    ),
    P(
        Case(
            ("build", "--dry-run", "--metadata-file", "/nonexistent/metadata.json"),
            "--metadata-file /nonexistent/metadata.json: directory /nonexistent does not exist "
            "(create it first)",
        ),
        "metadata-file-in-missing-directory",
    ),
    P(
        Case(
            ("build", "--dry-run", "--metadata-file", "/"),
            "--metadata-file / is a directory (name a file to write)",
        ),
        "metadata-file-is-a-directory",
    ),
    P(
        Case(
            ("build", "--dry-run", "--digests-dir", "/dev/null"),
            "--digests-dir /dev/null is not a directory",
        ),
        "digests-dir-is-a-file",
    ),
    # -- pushing builds: the input error comes before any engine or registry --------------
    P(
        Case(
            PUSH,
            f"images/cli/Dockerfile:2: dependency cycle: cli -> cli{CYCLE_HINT}",
            # BUILDER_PREFIX follows --registry, so this names the image itself.
            {"images/cli/Dockerfile": "ARG BUILDER_PREFIX\nFROM ${BUILDER_PREFIX}/cli\n"},
        ),
        "push-cycle",
    ),
    P(
        Case(
            PUSH,
            "builder.yaml:2: unknown key 'regsitry' (did you mean 'registry'?)",
            {"builder.yaml": "namespace: acme\nregsitry: ghcr.io\n"},
        ),
        "push-unknown-key",
    ),
    P(
        Case(
            (*PUSH, "--only", "nope"),
            "--only names unknown image(s): nope (known: api, base, cli)",
        ),
        "push-only-unknown",
    ),
    P(
        Case(
            (*PUSH, "--platform", "linux"),
            f"--platform: invalid platform 'linux'{PLATFORM_HINT}",
        ),
        "push-platform",
    ),
    P(
        Case((*PUSH, "--base", "nope"), f"unknown git revision 'nope'{REVISION_HINT}"),
        "push-base-unknown",
    ),
    P(
        Case(
            (*PUSH, "--secret", "id=x"),
            "invalid --secret 'id=x' (use id=NAME,env=VARIABLE or id=NAME,src=PATH)",
        ),
        "push-secret",
    ),
    P(
        Case(
            PUSH,
            "images/cli/Dockerfile: no FROM instruction (add a FROM line)",
            {"images/cli/Dockerfile": "ARG X=1\n"},
        ),
        "push-no-from",
    ),
    # -- builder pin ----------------------------------------------------------------------
    P(
        pin_case(
            PIN,
            "builder.yaml: no 'consumers' to pin (list the files builder pin "
            "rewrites under 'consumers:', e.g. - deploy/**/*.yaml)",
            {"builder.yaml": "namespace: acme\n"},
        ),
        "pin-no-consumers",
    ),
    P(
        pin_case(
            PIN,
            "builder.yaml:3: unknown consumer kind 'argoo' (did you mean 'argo'?)",
            consumers("  - glob: deploy/*.yaml\n    kind: argoo\n"),
        ),
        "pin-unknown-kind",
    ),
    P(
        pin_case(
            PIN,
            "builder.yaml:3: consumer glob 'deploy/*.yml' matches no file in "
            "{repo} (fix the glob, or remove the consumer)",
            consumers("  - deploy/*.yml\n"),
        ),
        "pin-glob-matches-nothing",
    ),
    P(
        pin_case(
            PIN,
            "builder.yaml:3: cannot tell what kind of consumer deploy/notes.txt is "
            "(set its kind: argo, kubernetes, kustomize, helm, airflow or lockfile)",
            {**consumers("  - deploy/*\n"), "deploy/notes.txt": "hi\n"},
        ),
        "pin-kind-not-inferable",
    ),
    P(
        pin_case(
            PIN,
            "builder.yaml:3: helm consumer 'deploy/*.yaml' needs 'paths' (the dotted "
            "keys of its image blocks, e.g. paths: [image, jobs.*.image])",
            consumers("  - {glob: deploy/*.yaml, kind: helm}\n"),
        ),
        "pin-helm-without-paths",
    ),
    P(
        pin_case(
            PIN,
            "deploy/wf.yaml: key path 'jobs.*.image' (builder.yaml:3) matches nothing "
            "(fix the path in builder.yaml's consumers, or the values file)",
            consumers("  - {glob: deploy/*.yaml, kind: helm, paths: [jobs.*.image]}\n"),
        ),
        "pin-helm-path-matches-nothing",
    ),
    P(
        pin_case(
            PIN,
            "deploy/wf.yaml:2: cannot parse YAML: while parsing a flow node, expected the "
            "node content, but found '<stream end>' (fix the file; builder pin writes "
            "nothing until every consumer parses)",
            {"deploy/wf.yaml": "a: [1,\n"},
        ),
        "pin-yaml-unparsable",
    ),
    P(
        pin_case(
            PIN,
            "deploy/values.yaml:1: cannot tell what reads this file: a document "
            "without apiVersion and kind (give this consumer a kind in builder.yaml: helm "
            "(with paths), kustomize, argo or kubernetes)",
            {"deploy/values.yaml": "image: {repository: acme/api}\n"},
        ),
        "pin-yaml-without-kind",
    ),
    P(
        pin_case(
            PIN,
            "deploy/wf.yaml:5: invalid image reference 'acme/API:1' (repository "
            "names must be lowercase)",
            {"deploy/wf.yaml": str(PIN_FILES["deploy/wf.yaml"]).replace("api:", "API:")},
        ),
        "pin-invalid-reference",
    ),
    P(
        pin_case(
            PIN,
            "deploy/dag.py:1: cannot parse Python: invalid syntax",
            {**consumers("  - deploy/*.py\n"), "deploy/dag.py": "def (:\n"},
        ),
        "pin-python-unparsable",
    ),
    P(
        pin_case(
            PIN,
            "deploy/images.lock.json:1: 'web' is not an image of this repository "
            "(known images: api, base, cli)",
            {
                **consumers("  - deploy/images.lock.json\n"),
                "deploy/images.lock.json": '{"web": "acme/web:1"}\n',
            },
        ),
        "pin-lockfile-unknown-image",
    ),
    P(
        pin_case(PIN, "deploy/wf.yaml:1: is not UTF-8 text", {"deploy/wf.yaml": b"\xff\n"}),
        "pin-consumer-not-utf8",
    ),
    P(
        pin_case(
            PIN,
            "{repo}/meta.json: names 'web', not an image of this repository (a "
            "metadata file from another repository? pin with the one this repo's build "
            "wrote)",
            {"meta.json": pin_metadata().replace('"api"', '"web"')},
        ),
        "pin-metadata-from-another-repo",
    ),
    P(
        pin_case(
            PIN,
            "{repo}/meta.json: image 'base' failed to build; its references would "
            "keep old pins beside new ones (rebuild, or pass --partial to pin the rest "
            "and keep the failed images' pins)",
            {"meta.json": pin_metadata(base="failed", api="skipped")},
        ),
        "pin-metadata-failed-image",
    ),
    P(
        pin_case(
            PIN,
            "{repo}/meta.json: records a build that pushed nothing (a dry run or "
            "--no-push): nothing to pin (pin with the metadata file of `builder build "
            "--push`)",
            {"meta.json": pin_metadata(api="planned")},
        ),
        "pin-metadata-dry-run",
    ),
    P(
        pin_case(
            PIN,
            "{repo}/meta.json:1: not a builder metadata file: Expecting value",
            {"meta.json": "nope\n"},
        ),
        "pin-metadata-not-json",
    ),
    P(
        pin_case(
            PIN,
            "{repo}/meta.json: not a builder metadata file: no 'images' object (pass "
            "the file `builder build --metadata-file` wrote)",
            {"meta.json": "{}\n"},
        ),
        "pin-metadata-not-metadata",
    ),
    P(
        pin_case(
            ("pin", "--metadata-file", "{repo}/nope.json"),
            "{repo}/nope.json: cannot read: No such file or directory",
        ),
        "pin-metadata-missing",
    ),
    P(
        pin_case(
            (*PIN, "--push-branch"), "--push-branch needs --commit BRANCH (name the branch to push)"
        ),
        "pin-push-without-commit",
    ),
    P(
        pin_case(
            (*PIN, "--check", "--commit", "b"), "--check writes nothing, so it cannot --commit"
        ),
        "pin-check-with-commit",
    ),
    P(
        pin_case((*PIN, "--commit", "a..b"), "invalid branch name 'a..b' (e.g. builder/pin)"),
        "pin-invalid-branch",
    ),
    P(
        pin_case(
            (*PIN, "--repo-dir", "{repo}/nowhere"), "--repo-dir {repo}/nowhere is not a directory"
        ),
        "pin-repo-dir-missing",
    ),
    P(
        Case(
            (*PIN, "--commit", "builder/pin"),
            "deploy/wf.yaml has uncommitted changes (commit or stash them first: builder pin "
            "commits only its own edits)",
            setup=dirty_consumer,
        ),
        "pin-commit-dirty-consumer",
    ),
    # -- builder promote and pin --from-tag: refused before any registry is asked -------
    P(
        Case(
            PROMOTE[:3],
            ONE_SOURCE,
        ),
        "promote-no-source",
    ),
    P(
        Case(
            (*PROMOTE, "--metadata-file", "{repo}/meta.json"),
            ONE_SOURCE,
            PIN_FILES,
        ),
        "promote-two-sources",
    ),
    P(
        Case(
            ("promote", "--from", "main", "--to", "latest"),
            "--to latest: builder moves latest with every build of the default branch" + OWN_TAG,
        ),
        "promote-to-latest",
    ),
    P(
        Case(
            ("promote", "--from", "main", "--to", "git-1a2b3c4"),
            "--to git-1a2b3c4: builder's git-* tags each name one build and never move" + OWN_TAG,
        ),
        "promote-to-git-tag",
    ),
    P(
        Case(
            ("promote", "--from", "main", "--to", "key-0123456789abcdef"),
            "--to key-0123456789abcdef: builder's key-* tags each name one build and never move"
            + OWN_TAG,
        ),
        "promote-to-key-tag",
    ),
    P(
        Case(
            ("promote", "--from", "main", "--to", "1.2"),
            "--to 1.2: builder gives this tag its own meaning (the build cache, or a vX.Y.Z "
            "release's version tags)" + OWN_TAG,
        ),
        "promote-to-version-tag",
    ),
    P(
        Case(
            ("promote", "--from", "main", "--to", "prod/eu"),
            "--to 'prod/eu' is not a valid tag" + TAG_HINT,
        ),
        "promote-to-invalid-tag",
    ),
    P(
        Case(
            ("promote", "--from", "main", "--to", "main"),
            "--from main and --to main name the same tag",
        ),
        "promote-to-itself",
    ),
    P(
        Case(
            ("promote", "--from", "///", "--to", "prod"),
            "--from '///' names no tag (give a branch name or a tag)",
        ),
        "promote-from-no-tag",
    ),
    P(
        Case(
            (*PROMOTE, "--only", "nosuch"),
            "--only names unknown image(s): nosuch (known: api, base, cli)",
        ),
        "promote-only-unknown",
    ),
    P(
        Case((*PROMOTE, "--only", " "), "--only ' ' names no image (give an image name)"),
        "promote-only-empty",
    ),
    P(
        Case(
            ("promote", "--to", "prod", "--metadata-file", "{repo}/nowhere.json"),
            "{repo}/nowhere.json: cannot read the metadata file: No such file or directory",
        ),
        "promote-metadata-missing",
    ),
    P(
        Case(
            ("promote", "--to", "prod", "--metadata-file", "{repo}/meta.json"),
            "{repo}/meta.json: image 'api' failed in that build; promote a build that pushed "
            "every image (rebuild it first, or promote a branch's tags with --from)",
            {**PIN_FILES, "meta.json": pin_metadata(api="failed")},
        ),
        "promote-metadata-failed-image",
    ),
    P(
        Case(
            ("promote", "--to", "prod", "--metadata-file", "{repo}/meta.json"),
            "{repo}/meta.json: names 'web', not an image of this repository (a metadata file "
            "from another repository? promote one this repo's build wrote)",
            {**PIN_FILES, "meta.json": pin_metadata().replace('"cli"', '"web"')},
        ),
        "promote-metadata-other-repo",
    ),
    P(
        Case(
            (*PROMOTE, "--write-metadata", "{repo}"),
            "--write-metadata {repo} is a directory (name a file to write)",
        ),
        "promote-write-metadata-directory",
    ),
    P(
        pin_case(
            ("pin",),
            PIN_SOURCE,
        ),
        "pin-no-source",
    ),
    P(
        pin_case(
            (*PIN, "--from-tag", "main"),
            PIN_SOURCE,
        ),
        "pin-two-sources",
    ),
    P(
        pin_case(
            ("pin", "--from-tag", "///"),
            "--from-tag '///' names no tag (give a branch name or a tag)",
        ),
        "pin-from-no-tag",
    ),
    P(
        pin_case(
            ("pin", "--from-tag", "main", "--partial"),
            "--partial is for a metadata file with a failed image",
        ),
        "pin-from-tag-partial",
    ),
    # -- hostile input: linear time, bounded depth, one line ----------------------------
    P(
        Case(
            ("graph",),
            "builder.yaml:6: expands to too many values through YAML aliases" + ALIASES_HINT,
            {"builder.yaml": LAUGHS},
        ),
        "builder-yaml-billion-laughs",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: invalid YAML: nested more than 64 levels deep",
            {"images/cli/image.yaml": "name: " + "[" * 1_000_000 + "\n"},
        ),
        "image-yaml-deep-flow",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:65: invalid YAML: nested more than 64 levels deep",
            {"images/cli/image.yaml": "".join(" " * i + f"k{i}:\n" for i in range(2000))},
        ),
        "image-yaml-deep-block",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:65: invalid YAML: nested more than 64 levels deep "
            "through alias *x62",
            {"images/cli/image.yaml": ALIAS_CHAIN},
        ),
        "image-yaml-deep-through-aliases",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: invalid YAML: alias *a is inside the value it names "
            "(a value cannot contain itself)",
            {"images/cli/image.yaml": "watch: &a [*a]\n"},
        ),
        "image-yaml-recursive-alias",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: cannot expand '"
            + "${V:-" * 16
            + "... (600 characters)': '${' nested more than 64 levels deep",
            {"images/cli/Dockerfile": "ARG V=alpine\nFROM " + "${V:-" * 100 + "}" * 100 + "\n"},
        ),
        "dockerfile-nested-substitution",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: cannot expand '${V%\\\\a}': "
            "invalid pattern (\\a) in substitution: invalid escape '\\a'",
            {"images/cli/Dockerfile": "ARG V=alpine\nFROM ${V%\\a}\n"},
        ),
        "dockerfile-pattern-invalid-escape",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2000: cannot parse Dockerfile: ENV must have two arguments",
            {"images/cli/Dockerfile": "FROM alpine\n" + "RUN true\n" * 1998 + "ENV ONLY\n"},
        ),
        "dockerfile-error-on-line-2000",
    ),
    P(
        Case(
            ("graph",),
            # Past 256 KB the line is not searched for: that would parse the file twice.
            "images/cli/Dockerfile: cannot parse Dockerfile: ENV must have two arguments",
            {"images/cli/Dockerfile": "FROM alpine\n" + "RUN true\n" * 30_000 + "ENV ONLY\n"},
        ),
        "dockerfile-error-in-a-file-past-256-kb",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:3: words longer than 4 KiB add up to more than 32 KiB "
            "(20,006 characters in this one); BuildKit's parser slows with the square of a "
            "word's length (keep large data in a file the build copies)",
            {
                "images/cli/Dockerfile": "FROM alpine\n"
                + "".join(f"LABEL blob{i}=" + "b" * 20_000 + "\n" for i in range(16))
            },
        ),
        "dockerfile-long-words-past-64-kib",
    ),
    P(
        Case(
            ("graph",),
            f"images/cli/Dockerfile:1: invalid image reference '{'a' * 80}... (300 characters)': "
            "repository name must not be more than 255 characters",
            {"images/cli/Dockerfile": "FROM " + "a" * 300 + "\n"},
        ),
        "dockerfile-name-too-long",
    ),
    P(
        Case(
            ("graph",),
            "--namespace: invalid namespace 'acme\\n' "
            "(lowercase letters, digits and separators, e.g. acme)",
            env={"BUILDER_NAMESPACE": "acme\n"},
        ),
        "env-namespace-trailing-newline",
    ),
    P(
        Case(
            ("graph",),
            "--registry: invalid registry 'ghcr.io\\n' (a host name such as docker.io, ghcr.io "
            "or localhost:5000; put an organisation in 'namespace')",
            env={"BUILDER_REGISTRY": "ghcr.io\n"},
        ),
        "env-registry-trailing-newline",
    ),
    P(
        Case(
            ("graph",),
            "images/new\\n: invalid image name 'new\\n'" + NAME_HINT,
            {"images/new\n/Dockerfile": "FROM alpine:3.20\n"},
        ),
        "image-directory-trailing-newline",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: invalid tag '3\u00e9' in image reference 'alpine:3\u00e9'",
            {"images/cli/Dockerfile": "FROM alpine:3\u00e9\n"},
        ),
        "dockerfile-non-ascii-tag",
    ),
    P(
        Case(
            ("plan",),
            "cannot write GITHUB_OUTPUT /: is a directory "
            "(the runner sets GITHUB_OUTPUT to a writable file; check the workflow's env)",
            env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "/"},
        ),
        "actions-output-is-a-directory",
    ),
    P(
        Case(
            PUSH,
            "cannot write GITHUB_STEP_SUMMARY /nonexistent/summary.md: No such file or directory "
            "(the runner sets GITHUB_STEP_SUMMARY to a writable file; check the workflow's env)",
            env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "/nonexistent/summary.md"},
        ),
        "actions-summary-unwritable",
    ),
    P(
        Case(
            ("graph",),
            "git: this operation must be run in a work tree "
            "({repo} is a bare repository or inside .git; run builder in a checkout)",
            setup=bare_repository,
        ),
        "git-bare-repository",
    ),
    P(
        Case(
            ("affected",),
            "git: this operation must be run in a work tree "
            "({repo} is a bare repository or inside .git; run builder in a checkout)",
            setup=inside_dot_git,
        ),
        "git-inside-dot-git",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: image root 'imgaes' is not a directory of the repository "
            "(check the name; roots are relative to the repository root)",
            {"builder.yaml": "namespace: acme\nimage_roots: [base-images, imgaes]\n"},
        ),
        "image-roots-typo",
    ),
    P(
        Case(
            ("affected",),
            "builder.yaml:4: image root 'debian/*/*' matches no image folder (a glob names "
            "image folders, one '*' per path component)",
            {"builder.yaml": "namespace: acme\nimage_roots:\n  - images\n  - debian/*/*\n"},
        ),
        "image-roots-glob",
    ),
    P(
        Case(
            ("plan",),
            "builder.yaml:2: image root 'docs' holds no image (an image is a directory right "
            "under a root, with a Dockerfile or image.yaml)",
            {
                "builder.yaml": "namespace: acme\nimage_roots: [images, docs]\n",
                "docs/guide/README.md": "# guide\n",
            },
        ),
        "image-root-without-images",
    ),
    P(
        Case(
            ("graph",),
            "no images: no directory under 'base-images' or 'images' holds a Dockerfile or "
            "image.yaml (add one, or list the directories that hold images in builder.yaml's "
            "image_roots)",
            setup=no_images,
        ),
        "no-images-at-all",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml: is a directory (builder.yaml must be a file)",
            setup=settings_directory,
        ),
        "builder-yaml-is-a-directory",
    ),
    P(
        Case(
            ("affected",),
            "images/cli/Dockerfile: is a directory (an image's Dockerfile must be a file)",
            setup=dockerfile_directory,
        ),
        "dockerfile-is-a-directory",
    ),
    P(
        Case(
            ("graph",),
            "images/vendored: is a git submodule: builder cannot see an image inside it "
            "(build it in its own repository, or move it out of the image roots)",
            setup=submodule_image,
        ),
        "image-is-a-submodule",
    ),
    P(
        Case(
            ("graph",),
            "builder.yaml:2: image root 'vendor' is a git submodule (builder reads only this "
            "repository's files; build those images in the submodule's own repository)",
            setup=submodule_root,
        ),
        "image-root-is-a-submodule",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)",
            {"images/cli/Dockerfile": "FROM alpine:3.20\nCOPPY . /app\n"},
        ),
        "dockerfile-unknown-instruction",
    ),
    P(
        Case(
            ("graph",),
            'images/cli/Dockerfile:1: invalid name for build stage: "acme/tools", name can\'t '
            "start with a number or contain symbols (a stage name is lowercase letters, digits, "
            "'-', '_' and '.')",
            {"images/cli/Dockerfile": "FROM alpine:3.20 AS acme/tools\n"},
        ),
        "dockerfile-stage-named-like-an-image",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: invalid image reference 'Build' "
            "(repository names must be lowercase)",
            {"images/cli/Dockerfile": "FROM alpine:3.20 AS build\nFROM Build\n"},
        ),
        "dockerfile-from-stage-in-other-case",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            {"images/cli/Dockerfile": "FROM alpine:3.20\nONBUILD ONBUILD RUN true\n"},
        ),
        "dockerfile-onbuild-onbuild",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: FROM isn't allowed as an ONBUILD trigger",
            {"images/cli/Dockerfile": "FROM alpine:3.20\nONBUILD FROM alpine:3.20\n"},
        ),
        "dockerfile-onbuild-from",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: unknown flag: platfrom (did you mean platform?)",
            {"images/cli/Dockerfile": "FROM --platfrom=linux/amd64 alpine:3.20\n"},
        ),
        "dockerfile-from-unknown-flag",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:1: failed to parse platform linux/amd64/v2/x: "
            '"linux/amd64/v2/x": cannot parse platform specifier: invalid argument' + PLATFORM_HINT,
            {"images/cli/Dockerfile": "FROM --platform=linux/amd64/v2/x alpine:3.20\n"},
        ),
        "dockerfile-from-platform-invalid",
    ),
    P(
        Case(
            ("graph",),
            'images/cli/Dockerfile:2: cannot copy from stage "b", it needs to be defined '
            'before current stage "a"',
            {
                "images/cli/Dockerfile": "FROM alpine:3.20 AS a\nCOPY --from=b /x /x\n"
                "FROM alpine:3.20 AS b\nFROM a\n"
            },
        ),
        "dockerfile-copy-from-a-later-stage",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: circular dependency detected on stage: a",
            {"images/cli/Dockerfile": "FROM alpine:3.20 AS a\nCOPY --from=a /x /x\n"},
        ),
        "dockerfile-copy-from-itself",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/Dockerfile:2: invalid stage index 3",
            {"images/cli/Dockerfile": "FROM alpine:3.20\nCOPY --from=3 /x /x\n"},
        ),
        "dockerfile-copy-from-missing-index",
    ),
    P(
        Case(
            ("graph",),
            "images/api/.dockerignore:2: invalid pattern 'a\\x01b': contains the control "
            "character '\\x01' (" + IGNORE_HINT + ")",
            {"images/api/.dockerignore": "*.md\na\x01b\n"},
        ),
        "dockerignore-control-character",
    ),
    P(
        Case(
            ("graph",),
            "images/api/.dockerignore:1: invalid pattern '" + "a" * 80 + "...': a line longer "
            "than 64 KiB (bufio.Scanner: token too long) (" + IGNORE_HINT + ")",
            {"images/api/.dockerignore": "a" * 70_000 + "\n"},
        ),
        "dockerignore-line-too-long",
    ),
    P(
        Case(
            ("graph",),
            "images/cli/image.yaml:1: 'watch' lists 1001 patterns, more than 1000 "
            "(watch directories with broader globs, e.g. shared/sql/**)",
            {"images/cli/image.yaml": "watch:\n" + "".join(f"  - a/{i}/**\n" for i in range(1001))},
        ),
        "image-yaml-watch-too-many",
    ),
    pytest.param(
        Case(
            ("graph",),
            "git: detected dubious ownership in repository at '{repo}' (if you trust it, "
            "run: git config --global --add safe.directory {repo})",
            setup=not_owned,
        ),
        id="git-dubious-ownership",
        marks=pytest.mark.skipif(os.geteuid() != 0, reason="only root can chown a checkout"),
    ),
]


def run_case(case: Case, tmp_path: Path, env: dict[str, str]) -> tuple[Result, Path]:
    target = new_repo(tmp_path, case.files) if case.setup is None else case.setup(tmp_path)
    args = [a.replace("{repo}", str(target)) for a in case.args]  # e.g. a metadata file there
    return invoke(*args, "-C", target, env={**env, **case.env}), target


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(
    case: Case, tmp_path: Path, no_engine: tuple[dict[str, str], Path]
) -> None:
    env, docker_calls = no_engine
    result, target = run_case(case, tmp_path, env)
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    expected = case.error.replace("{repo}", str(target))
    assert lines[0] == f"error: {expected}"
    assert "engine" not in lines[0]
    assert not docker_calls.exists(), docker_calls.read_text(encoding="utf-8")


def test_the_catalogue_is_large() -> None:
    assert len(CASES) >= 45


def test_the_same_push_without_the_bad_input_reaches_the_engine(
    tmp_path: Path, no_engine: tuple[dict[str, str], Path]
) -> None:
    """The control for the pushing cases: they stopped early, not because nothing runs."""
    env, docker_calls = no_engine
    result = invoke(*PUSH, "-C", new_repo(tmp_path, {}), env=env)
    assert result.exit_code == 2, result.output
    assert docker_calls.exists()  # the shim was asked, and said no
    assert len(result.stderr.splitlines()) == 1


# -- inputs that look bad but must work -------------------------------------------------


def names(result: Result) -> list[str]:
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout.split()


def test_detached_head_works(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, {})
    commit(repo, {"images/cli/run.sh": "echo\n"})
    git(repo, "checkout", "--quiet", "--detach", "HEAD")
    assert names(invoke("affected", "-C", repo, "-f", "names")) == ["cli"]
    assert names(invoke("affected", "-C", repo, "--base", "HEAD~1", "-f", "names")) == ["cli"]
    plan = invoke("plan", "-C", repo, "--base", "HEAD~1", "--head", "HEAD", "-f", "json")
    assert plan.exit_code == 0, plan.output
    [image] = json.loads(plan.stdout)["images"]
    sha = git(repo, "rev-parse", "HEAD")[:7]
    # No branch, so no branch tag and no `latest`: only the immutable one (and a key tag).
    assert image["name"] == "cli"
    assert f"docker.io/acme/cli:git-{sha}" in image["tags"]
    assert not any(t.endswith((":latest", ":main", ":head")) for t in image["tags"])


def test_shallow_clone_without_the_base_builds_everything_with_a_warning(
    tmp_path: Path,
) -> None:
    origin = new_repo(tmp_path, {})
    commit(origin, {"images/cli/run.sh": "echo\n"})
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", "--depth", "1", origin.as_uri(), str(clone))
    git(clone, "remote", "remove", "origin")  # no history to fetch either
    result = invoke("affected", "-C", clone, "-f", "names")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["api", "base", "cli"]
    assert result.stderr == (
        "warning: shallow clone: the commit before HEAD could not be fetched: "
        "treating every image as affected\n"
    )
    before = git(origin, "rev-parse", "HEAD~1")
    result = invoke("affected", "-C", clone, "--base", before, "-f", "names")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["api", "base", "cli"]
    assert result.stderr == (
        f"warning: base {before[:12]} from --base is not in this clone "
        "(force push or shallow clone): treating every image as affected\n"
    )


ODD_NAMES = (
    "images/api/my file.txt",
    "images/api/naïve-café.txt",
    "images/api/日本語/データ.txt",
    "images/api/new\nline.txt",
    "images/api/tab\there.txt",
    'images/api/"quoted".txt',
    "images/api/back\\slash.txt",
    "images/cli/ leading and trailing space ",
    "images/cli/[brackets]*?.txt",
    "images/cli/:colon-magic",
    "images/cli/-dash-first",
)


@pytest.mark.parametrize("head", ["HEAD", None], ids=["commit", "working-tree"])
def test_odd_file_names_work(tmp_path: Path, head: str | None) -> None:
    repo = new_repo(tmp_path, {})
    write(repo, dict.fromkeys(ODD_NAMES, "x\n"))
    if head is not None:
        commit(repo)
    args = ("--head", head) if head else ("--base", "HEAD")
    data = json.loads(invoke("affected", "-C", repo, *args, "-f", "json").stdout)
    reasons = {i["name"]: {r["path"] for r in i["reasons"]} for i in data["affected"]}
    assert reasons == {
        "api": {p for p in ODD_NAMES if p.startswith("images/api/")},
        "cli": {p for p in ODD_NAMES if p.startswith("images/cli/")},
    }
    # A newline in a name is escaped for people: the table keeps one row per image.
    for flag in ((), ("--explain",)):
        table = invoke("affected", "-C", repo, *args, *flag)
        assert table.exit_code == 0, table.output
        rows = [line.split()[0] for line in table.stdout.splitlines()]
        assert rows.count("api") == rows.count("cli") == 1, table.stdout
    assert "new\\nline.txt" in table.stdout  # --explain lists every rule


def test_non_utf8_file_name_works(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, {})
    (repo / os.fsdecode(b"images/api/caf\xe9.txt")).write_text("x\n", encoding="utf-8")
    commit(repo)
    assert names(invoke("affected", "-C", repo, "--head", "HEAD", "-f", "names")) == ["api"]
    for fmt in ("table", "json"):
        result = invoke("affected", "-C", repo, "--head", "HEAD", "-f", fmt, "--explain")
        assert (result.exit_code, result.stderr) == (0, ""), result.output


def test_image_dir_with_unicode_and_spaces_works_with_a_name(tmp_path: Path) -> None:
    repo = new_repo(
        tmp_path,
        {
            "images/Mon Café/Dockerfile": "FROM acme/base\nCOPY . /\n",
            "images/Mon Café/image.yaml": "name: cafe\n",
        },
    )
    commit(repo, {"images/Mon Café/menu du jour.txt": "x\n"})
    assert names(invoke("affected", "-C", repo, "--head", "HEAD", "-f", "names")) == ["cafe"]


@pytest.mark.parametrize(
    ("ignore", "notes_count"),
    [("Dockerfile\n", True), ("*\n", False), ("**\n!app.py\n", False), ("/Dockerfile\n", True)],
)
def test_dockerignore_excluding_the_dockerfile_still_counts_it(
    tmp_path: Path, ignore: str, notes_count: bool
) -> None:
    """Docker always sends the Dockerfile, whatever .dockerignore says; so must a change."""
    repo = new_repo(tmp_path, {"images/cli/.dockerignore": ignore})
    commit(repo, {"images/cli/Dockerfile": "FROM alpine:3.21\nCOPY . /cli\n"})
    result = invoke("affected", "-C", repo, "--head", "HEAD", "-f", "json")
    assert result.exit_code == 0, result.output
    [image] = json.loads(result.stdout)["affected"]
    assert (image["name"], image["reasons"][0]["kind"]) == ("cli", "dockerfile")
    # ... while another context file counts only when the .dockerignore keeps it.
    commit(repo, {"images/cli/notes.txt": "x\n"})
    after = names(invoke("affected", "-C", repo, "--head", "HEAD", "-f", "names"))
    assert after == (["cli"] if notes_count else [])


def test_a_base_from_before_the_first_image_still_loads(tmp_path: Path) -> None:
    """Only the head must hold images: the commit before them is a base like any other."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    commit(repo, {"builder.yaml": "namespace: acme\n"}, message="config first")
    commit(repo, {**BASE, "builder.yaml": "namespace: acme\nimage_roots: [images]\n"})
    result = invoke("affected", "--format", "names", "-C", repo)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert result.stdout.split() == ["api", "cli"]


def test_no_commits_lists_every_image_against_the_empty_tree(tmp_path: Path) -> None:
    repo = no_commits(tmp_path)
    assert names(invoke("affected", "-C", repo, "-f", "names")) == ["api", "base", "cli"]


def test_empty_configuration_files_are_fine(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, {"builder.yaml": "", "images/cli/image.yaml": "# nothing\n"})
    result = invoke("graph", "-C", repo, "-f", "json")
    assert result.exit_code == 0, result.output
    # No namespace, so `FROM acme/base` is an upstream image, not the repo's base.
    nodes = json.loads(result.stdout)["nodes"]
    assert [(n["name"], n["external_parents"]) for n in nodes] == [
        ("api", ["acme/base"]),
        ("base", ["python:3.12-slim"]),
        ("cli", ["alpine:3.20"]),
    ]


def test_a_dockerfile_linked_inside_the_repo_is_read_on_disk_and_at_a_commit(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path, {"shared/Dockerfile": "FROM acme/base\n"})
    (repo / "images/cli/Dockerfile").unlink()
    (repo / "images/cli/Dockerfile").symlink_to("../../shared/Dockerfile")
    commit(repo)
    for args in ((), ("--rev", "HEAD")):
        result = invoke("graph", "-C", repo, "-f", "json", *args)
        assert result.exit_code == 0, result.output
        edges = [(e["from"], e["to"]) for e in json.loads(result.stdout)["edges"]]
        assert edges == [("base", "api"), ("base", "cli")]
