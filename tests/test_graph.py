"""The image graph: edges derived from Dockerfiles and image.yaml, cycles, order, rendering."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import pytest

from builder.errors import ConfigError, DockerfileError, GraphError
from builder.render.data import graph_json
from builder.render.text import render_graph
from builder.repo import compute_image_dirs
from tests.conftest import load_files

DIGEST = "sha256:" + "c" * 64
ACME = {"builder.yaml": "namespace: acme\n"}
BASE = {"base-images/base/Dockerfile": "FROM python:3.12-slim\n"}


def edges(files: dict[str, str], **overrides: str) -> tuple[tuple[str, str], ...]:
    return load_files(files, **overrides).graph.edges()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {**ACME, **BASE, "images/api/Dockerfile": "FROM acme/base\n"},
            (("base", "api"),),
            id="from",
        ),
        pytest.param(
            {
                **ACME,
                **BASE,
                "images/api/Dockerfile": "FROM python:3.12\nCOPY --from=acme/base /a /a\n",
            },
            (("base", "api"),),
            id="copy-from",
        ),
        pytest.param(
            {
                **ACME,
                **BASE,
                "images/api/Dockerfile": "FROM python\n"
                "RUN --mount=type=bind,from=acme/base,target=/b true\n",
            },
            (("base", "api"),),
            id="mount-from",
        ),
        pytest.param(
            {
                **ACME,
                **BASE,
                "images/api/Dockerfile": "FROM python\n",
                "images/api/image.yaml": "depends_on: [base]\n",
            },
            (("base", "api"),),
            id="depends-on",
        ),
        pytest.param(
            {**BASE, "images/api/Dockerfile": "FROM base\n"},
            (("base", "api"),),
            id="no-namespace-means-library",
        ),
        pytest.param(
            {**BASE, "images/api/Dockerfile": "FROM acme/base\n"},
            (),
            id="other-namespace-is-external",
        ),
        pytest.param(
            {
                "builder.yaml": "registry: ghcr.io\nnamespace: acme\n",
                **BASE,
                "images/api/Dockerfile": "FROM ghcr.io/acme/base:latest\n",
                "images/web/Dockerfile": "FROM acme/base\n",
            },
            (("base", "api"),),
            id="other-registry",
        ),
        pytest.param(
            {
                "builder.yaml": "registry: ghcr.io\nnamespace: acme\n",
                **BASE,
                "images/api/Dockerfile": "ARG BUILDER_PREFIX=docker.io/acme\n"
                "FROM ${BUILDER_PREFIX}/base\n",
            },
            (("base", "api"),),
            id="builder-prefix-arg",
        ),
        pytest.param(
            {
                **ACME,
                **BASE,
                "images/api/Dockerfile": "ARG BASE=python:3.12\nFROM $BASE\n",
                "images/api/image.yaml": "build_args: {BASE: acme/base}\n",
            },
            (("base", "api"),),
            id="image-build-arg-picks-parent",
        ),
        pytest.param(
            {
                "builder.yaml": "namespace: acme\nbuild_args: {BASE: acme/base}\n",
                **BASE,
                "images/api/Dockerfile": "ARG BASE=python:3.12\nFROM $BASE\n",
            },
            (("base", "api"),),
            id="settings-build-arg-picks-parent",
        ),
        pytest.param(
            {
                **ACME,
                "images/base-amd64/Dockerfile": "FROM python\n",
                "images/base-arm64/Dockerfile": "FROM python\n",
                "images/base-riscv64/Dockerfile": "FROM python\n",
                "images/api/Dockerfile": "FROM acme/base-${TARGETARCH}\n",
            },
            (("base-amd64", "api"), ("base-arm64", "api")),
            id="per-platform-parent",
        ),
        pytest.param(
            {**BASE, "images/api/Dockerfile": "FROM python:3 AS base\nFROM base\n"},
            (),
            id="stage-shadows-image",
        ),
        pytest.param(
            {
                **ACME,
                **BASE,
                "images/api/Dockerfile": "FROM acme/base AS b\nFROM acme/base\nCOPY --from=b / /\n",
                "images/web/Dockerfile": "FROM acme/api\nCOPY --from=acme/base / /\n",
            },
            (("api", "web"), ("base", "api"), ("base", "web")),
            id="many",
        ),
    ],
)
def test_edges(files: dict[str, str], expected: tuple[tuple[str, str], ...]) -> None:
    assert edges(files) == expected


@pytest.mark.parametrize(
    "reference",
    [
        "acme/base",
        "acme/base:latest",
        "docker.io/acme/base",
        "index.docker.io/acme/base:latest",
        "registry-1.docker.io/acme/base",
    ],
)
def test_reference_normalisation(reference: str) -> None:
    files = {**ACME, **BASE, "images/api/Dockerfile": f"FROM {reference}\n"}
    graph = load_files(files).graph
    assert graph.edges() == (("base", "api"),)
    assert graph.images["api"].external_parents == ()


@pytest.mark.parametrize("reference", [f"acme/base@{DIGEST}", f"docker.io/acme/base:1@{DIGEST}"])
def test_a_digest_pin_is_never_an_edge(reference: str) -> None:
    """A user who pins a digest means that exact image, never this run's build of it."""
    files = {**ACME, **BASE, "images/api/Dockerfile": f"FROM {reference}\n"}
    graph = load_files(files).graph
    assert graph.edges() == ()
    assert graph.images["api"].external_parents == (reference,)


@pytest.mark.parametrize(
    "reference", ["base", "library/base:latest", "docker.io/library/base", "index.docker.io/base"]
)
def test_reference_normalisation_without_namespace(reference: str) -> None:
    files = {**BASE, "images/api/Dockerfile": f"FROM {reference}\n"}
    assert edges(files) == (("base", "api"),)


def test_overrides_beat_builder_yaml() -> None:
    files = {
        "builder.yaml": "namespace: acme\n",
        **BASE,
        "images/api/Dockerfile": "FROM ghcr.io/other/base\n",
    }
    assert edges(files) == ()
    assert edges(files, registry="ghcr.io", namespace="other") == (("base", "api"),)
    repo = load_files(files, registry="ghcr.io", namespace="other")
    assert repo.graph.images["api"].repository == "ghcr.io/other/api"


def test_external_parents_are_recorded_as_written() -> None:
    files = {
        **ACME,
        **BASE,
        "images/api/Dockerfile": "ARG V=3.12\n"
        "FROM python:$V AS build\n"
        "COPY --from=busybox:1.36 /bin/sh /sh\n"
        "FROM acme/base\n"
        "COPY --from=build / /\n"
        "RUN --mount=type=bind,from=python:3.12,target=/p true\n",
    }
    graph = load_files(files).graph
    assert graph.images["api"].external_parents == ("python:3.12", "busybox:1.36")
    assert graph.images["base"].external_parents == ("python:3.12-slim",)
    assert graph.images["api"].parents == ("base",)


def test_build_args_are_the_declared_ones() -> None:
    files = {
        "builder.yaml": "namespace: acme\nbuild_args: {PY: '3.12', UNUSED: x}\n",
        "images/api/Dockerfile": "ARG PY\nARG BUILDER_PREFIX\nFROM python:$PY\n",
        "images/web/Dockerfile": "FROM nginx\n",
    }
    images = load_files(files).graph.images
    assert images["api"].build_args == (("BUILDER_PREFIX", "docker.io/acme"), ("PY", "3.12"))
    assert images["web"].build_args == ()


@pytest.mark.parametrize(
    ("extra", "ignore_file"),
    [
        ({}, None),
        ({"images/api/.dockerignore": "*.md\n"}, "images/api/.dockerignore"),
        (
            {
                "images/api/.dockerignore": "*.md\n",
                "images/api/Dockerfile.dockerignore": "*.txt\n",
            },
            "images/api/Dockerfile.dockerignore",
        ),
    ],
)
def test_ignore_file_in_force(extra: dict[str, str], ignore_file: str | None) -> None:
    files = {"images/api/Dockerfile": "FROM python\n", **extra}
    image = load_files(files).graph.images["api"]
    assert (str(image.ignore_file) if image.ignore_file else None) == ignore_file


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param(
            {"images/a/Dockerfile": "FROM a\n"},
            "images/a/Dockerfile:1: dependency cycle: a -> a "
            "(an image cannot be built on itself, directly or through others)",
            id="one",
        ),
        pytest.param(
            {"images/a/Dockerfile": "FROM b\n", "images/b/Dockerfile": "FROM a\n"},
            "images/a/Dockerfile:1: dependency cycle: a -> b -> a "
            "(an image cannot be built on itself, directly or through others)",
            id="two",
        ),
        pytest.param(
            {
                "images/a/Dockerfile": "FROM c\n",
                "images/b/Dockerfile": "FROM a\n",
                "images/c/Dockerfile": "FROM b\n",
                "images/d/Dockerfile": "FROM a\n",
            },
            "images/a/Dockerfile:1: dependency cycle: a -> b -> c -> a "
            "(an image cannot be built on itself, directly or through others)",
            id="three",
        ),
        pytest.param(
            {
                "images/a/Dockerfile": "FROM python\nCOPY --from=b / /\n",
                "images/b/Dockerfile": "FROM python\n",
                "images/b/image.yaml": "depends_on: [a]\n",
            },
            "images/a/Dockerfile:2: dependency cycle: a -> b -> a "
            "(an image cannot be built on itself, directly or through others)",
            id="through-depends-on",
        ),
    ],
)
def test_cycles_print_the_cycle(files: dict[str, str], message: str) -> None:
    with pytest.raises(GraphError) as info:
        load_files(files)
    assert str(info.value) == message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("files", "error", "message"),
    [
        pytest.param(
            {
                "images/a/Dockerfile": "FROM python\n",
                "images/a/image.yaml": "name: x\n",
                "images/b/Dockerfile": "FROM python\n",
                "images/b/image.yaml": "platforms: [linux/amd64]\nname: x\n",
            },
            ConfigError,
            "images/b/image.yaml:2: duplicate image name 'x': also used by images/a "
            "(set a distinct 'name' in image.yaml)",
            id="duplicate-name",
        ),
        pytest.param(
            {
                "images/a/Dockerfile": "FROM python\n",
                "images/a/image.yaml": "platforms: [linux/amd64]\nname: b\n",
                "images/b/Dockerfile": "FROM python\n",
            },
            ConfigError,
            "images/a/image.yaml:2: duplicate image name 'b': also used by images/b "
            "(set a distinct 'name' in image.yaml)",
            id="duplicate-name-blames-the-image-yaml-that-chose-it",
        ),
        pytest.param(
            {"base-images/x/Dockerfile": "FROM python\n", "images/x/Dockerfile": "FROM python\n"},
            ConfigError,
            "images/x: duplicate image name 'x': also used by base-images/x "
            "(set a distinct 'name' in image.yaml)",
            id="duplicate-across-roots",
        ),
        pytest.param(
            {
                "images/a/Dockerfile": "FROM python\n",
                "images/b/Dockerfile": "FROM python\n",
                "images/b/image.yaml": "build_args: {X: '1'}\ndepends_on: [a, nope]\n",
            },
            GraphError,
            "images/b/image.yaml:2: depends_on names unknown image 'nope' (known images: a, b)",
            id="unknown-depends-on",
        ),
        pytest.param(
            {"images/a/image.yaml": "name: a\n"},
            ConfigError,
            "images/a/image.yaml: Dockerfile images/a/Dockerfile does not exist "
            "(add it, or point 'dockerfile' in image.yaml at the right file)",
            id="missing-dockerfile",
        ),
        pytest.param(
            {"images/a/Dockerfile": "FROM python\nCOPY --from=Bad / /\n"},
            DockerfileError,
            "images/a/Dockerfile:2: invalid image reference 'Bad' "
            "(repository names must be lowercase)",
            id="dockerfile-error",
        ),
        pytest.param(
            {"builder.yaml": b"namespace: \xff\n", "images/a/Dockerfile": "FROM python\n"},
            ConfigError,
            "builder.yaml:1: is not UTF-8 text (save it as UTF-8)",
            id="not-utf8",
        ),
    ],
)
def test_load_errors(files: dict[str, str], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        load_files(files)
    assert str(info.value) == message


def test_image_dirs_are_directly_under_a_root() -> None:
    files = [
        "Dockerfile",
        "images/Dockerfile",
        "images/api/Dockerfile",
        "images/api/sub/Dockerfile",
        "images/web/image.yaml",
        "images/docs/README.md",
        "base-images/base/Dockerfile",
        "tools/x/Dockerfile",
        "apps/images/y/Dockerfile",
    ]
    dirs = compute_image_dirs(files, ("base-images", "images", "apps/images"))
    assert dirs == tuple(
        PurePosixPath(d) for d in ("apps/images/y", "base-images/base", "images/api", "images/web")
    )


def test_custom_image_roots() -> None:
    files = {
        "builder.yaml": "image_roots: [containers]\n",
        "containers/a/Dockerfile": "FROM python\n",
        "images/b/Dockerfile": "FROM python\n",
    }
    assert sorted(load_files(files).graph.images) == ["a"]


DIAMOND = {
    **ACME,
    "images/top/Dockerfile": "FROM python\n",
    "images/left/Dockerfile": "FROM acme/top\n",
    "images/right/Dockerfile": "FROM acme/top\n",
    "images/bottom/Dockerfile": "FROM acme/left\nCOPY --from=acme/right / /\n",
    "images/alone/Dockerfile": "FROM alpine\n",
}


def test_order_and_generations() -> None:
    graph = load_files(DIAMOND).graph
    assert graph.order == ("alone", "top", "left", "right", "bottom")
    assert graph.generations(graph.images) == (
        ("alone", "top"),
        ("left", "right"),
        ("bottom",),
    )
    assert graph.generations(["bottom", "top"]) == (("bottom", "top"),)


@pytest.mark.parametrize(
    ("seeds", "closure"),
    [
        (["top"], {"top", "left", "right", "bottom"}),
        (["left"], {"left", "bottom"}),
        (["bottom"], {"bottom"}),
        (["alone", "right"], {"alone", "right", "bottom"}),
        (["not-an-image"], set()),
    ],
)
def test_closure(seeds: list[str], closure: set[str]) -> None:
    assert load_files(DIAMOND).graph.closure(seeds) == closure


def test_ancestors_and_children() -> None:
    graph = load_files(DIAMOND).graph
    assert graph.ancestors("bottom") == {"top", "left", "right"}
    assert graph.children("top") == ("left", "right")


RENDERED = {
    **ACME,
    **BASE,
    "images/api/Dockerfile": "FROM acme/base\nCOPY --from=busybox:1.36 /bin/sh /sh\n",
    "images/worker/Dockerfile": "FROM acme/base\n"
    "RUN --mount=type=bind,from=acme/api,target=/a true\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
}


def test_graph_json_shape() -> None:
    data = json.loads(render_graph(load_files(RENDERED).graph, "json"))
    assert data == graph_json(load_files(RENDERED).graph)
    assert [
        {k: node[k] for k in ("name", "path", "external_parents")} for node in data["nodes"]
    ] == [
        {"name": "base", "path": "base-images/base", "external_parents": ["python:3.12-slim"]},
        {"name": "api", "path": "images/api", "external_parents": ["busybox:1.36"]},
        {"name": "cli", "path": "images/cli", "external_parents": ["alpine:3.20"]},
        {"name": "worker", "path": "images/worker", "external_parents": []},
    ]
    assert data["edges"] == [
        {"from": "api", "to": "worker"},
        {"from": "base", "to": "api"},
        {"from": "base", "to": "worker"},
    ]


def test_graph_tree() -> None:
    assert render_graph(load_files(RENDERED).graph, "tree") == (
        "base  (from python:3.12-slim)\n"
        "├── api\n"
        "│   └── worker  (also needs base)\n"
        "└── worker  (also needs api)\n"
        "cli  (from alpine:3.20)"
    )


def test_graph_mermaid() -> None:
    assert render_graph(load_files(RENDERED).graph, "mermaid") == (
        "graph TD\n"
        '  n0["base"]\n'
        '  n1["api"]\n'
        '  n2["cli"]\n'
        '  n3["worker"]\n'
        "  n1 --> n3\n"
        "  n0 --> n1\n"
        "  n0 --> n3"
    )


def test_graph_dot() -> None:
    assert render_graph(load_files(RENDERED).graph, "dot") == (
        "digraph images {\n"
        '  "base";\n'
        '  "api";\n'
        '  "cli";\n'
        '  "worker";\n'
        '  "api" -> "worker";\n'
        '  "base" -> "api";\n'
        '  "base" -> "worker";\n'
        "}"
    )


def test_a_stage_the_build_never_runs_makes_no_edge() -> None:
    """A test stage on a dependant is common; BuildKit skips it, so no cycle and no edge."""
    graph = load_files(
        {
            "builder.yaml": "namespace: acme\n",
            "images/p/Dockerfile": "FROM acme/a AS test\nRUN make test\nFROM alpine AS release\n",
            "images/a/Dockerfile": "FROM acme/p\n",
        }
    ).graph
    assert set(graph.edges()) == {("p", "a")}
    assert graph.images["p"].external_parents == ("alpine",)
