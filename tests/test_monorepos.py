"""Repos as public monorepos lay them out, in miniature: image identity by repository and
tag, variants of one folder or Dockerfile, glob image roots, other namespaces, and what
`builder doctor` says when builder.yaml and the Dockerfiles disagree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from builder.changes import compute_affected, orphan_warnings
from builder.doctor import check_all, is_dockerfile
from builder.plan import Options, Revision, compute_plan
from tests.conftest import commit, invoke, load_files

MakeRepo = Callable[..., Path]
SHA = "0123456789abcdef0123456789abcdef01234567"

# docker-library/buildpack-deps: one repository, one tag per suite and flavour, each
# flavour built on the previous one by tag.
BUILDPACK = {
    "builder.yaml": "image_roots: ['debian/*', 'debian/*/*']\n",
    **{
        f"debian/{suite}/{path}": text
        for suite in ("bookworm", "bullseye")
        for path, text in {
            "curl/Dockerfile": f"FROM debian:{suite}\nRUN apt-get update\n",
            "curl/image.yaml": f"repository: buildpack-deps\ntag: {suite}-curl\n",
            "scm/Dockerfile": f"FROM buildpack-deps:{suite}-curl\nRUN apt-get install git\n",
            "scm/image.yaml": f"repository: buildpack-deps\ntag: {suite}-scm\n",
            "Dockerfile": f"FROM buildpack-deps:{suite}-scm\nRUN apt-get install gcc\n",
            "image.yaml": f"repository: buildpack-deps\ntag: {suite}\n",
        }.items()
    },
}

# tensorflow/serving's tools/docker: several Dockerfiles in one folder, one repository,
# the images told apart by tag; the release image builds on the devel one.
SERVING = {
    "builder.yaml": "image_roots: [tensorflow_serving/tools]\n",
    "tensorflow_serving/tools/docker/Dockerfile": (
        "ARG TF_SERVING_VERSION=latest\n"
        "ARG TF_SERVING_BUILD_IMAGE=tensorflow/serving:${TF_SERVING_VERSION}-devel\n"
        "FROM ${TF_SERVING_BUILD_IMAGE} AS build_image\n"
        "FROM ubuntu:20.04\nCOPY --from=build_image /usr/local/bin/tensorflow_model_server /\n"
    ),
    "tensorflow_serving/tools/docker/Dockerfile.devel": "FROM ubuntu:20.04\nRUN make\n",
    "tensorflow_serving/tools/docker/Dockerfile.devel-gpu": "FROM nvidia/cuda:12.2.0\n",
    "tensorflow_serving/tools/docker/Dockerfile.gpu": (
        "FROM tensorflow/serving:latest-devel-gpu AS build_image\nFROM nvidia/cuda:12.2.0\n"
        "COPY --from=build_image /usr/local/bin/tensorflow_model_server /\n"
    ),
    "tensorflow_serving/tools/docker/image.yaml": (
        "- name: serving\n  repository: tensorflow/serving\n"
        "- name: serving-devel\n  repository: tensorflow/serving\n  tag: latest-devel\n"
        "  dockerfile: Dockerfile.devel\n"
        "- name: serving-gpu\n  repository: tensorflow/serving\n  tag: latest-gpu\n"
        "  dockerfile: Dockerfile.gpu\n"
        "- name: serving-devel-gpu\n  repository: tensorflow/serving\n"
        "  tag: latest-devel-gpu\n  dockerfile: Dockerfile.devel-gpu\n"
    ),
}

# jupyter/docker-stacks: Dockerfiles name their parents on quay.io/jupyter through build
# args; the CUDA flavours live in subfolders and carry a tag prefix.
STACKS_DOCKERFILE = (
    "ARG REGISTRY=quay.io\nARG OWNER=jupyter\nARG BASE_IMAGE=$REGISTRY/$OWNER/{parent}\n"
    "FROM $BASE_IMAGE\nRUN echo {name}\n"
)
STACKS = {
    "images/docker-stacks-foundation/Dockerfile": "FROM ubuntu:24.04\n",
    "images/base-notebook/Dockerfile": STACKS_DOCKERFILE.format(
        parent="docker-stacks-foundation", name="base"
    ),
    "images/scipy-notebook/Dockerfile": STACKS_DOCKERFILE.format(
        parent="base-notebook", name="scipy"
    ),
    "images/pytorch-notebook/Dockerfile": STACKS_DOCKERFILE.format(
        parent="scipy-notebook", name="pytorch"
    ),
    "images/pytorch-notebook/cuda12/Dockerfile": STACKS_DOCKERFILE.format(
        parent="scipy-notebook", name="pytorch-cuda12"
    ),
    "images/pytorch-notebook/cuda12/image.yaml": (
        "repository: quay.io/jupyter/pytorch-notebook\ntag_prefix: cuda12-\n"
    ),
    "images/pytorch-extras/Dockerfile": "FROM quay.io/jupyter/pytorch-notebook:cuda12-latest\n",
}
STACKS_CONFIG = "registry: quay.io\nnamespace: jupyter\nimage_roots: [images, 'images/*/cuda*']\n"


def affected(files: Mapping[str, str], *paths: str) -> tuple[str, ...]:
    graph = load_files(files).graph
    return compute_affected(graph, paths).names


def test_buildpack_deps_variants_share_a_repository_and_build_on_each_other_by_tag() -> None:
    graph = load_files(BUILDPACK).graph
    assert set(graph.images) == {
        "bookworm",
        "bookworm-curl",
        "bookworm-scm",
        "bullseye",
        "bullseye-curl",
        "bullseye-scm",
    }
    assert graph.edges() == (
        ("bookworm-curl", "bookworm-scm"),
        ("bookworm-scm", "bookworm"),
        ("bullseye-curl", "bullseye-scm"),
        ("bullseye-scm", "bullseye"),
    )
    assert affected(BUILDPACK, "debian/bookworm/curl/Dockerfile") == (
        "bookworm",
        "bookworm-curl",
        "bookworm-scm",
    )
    assert affected(BUILDPACK, "debian/bullseye/Dockerfile") == ("bullseye",)


def test_removing_one_variant_warns_only_where_its_tag_was_used() -> None:
    """The other variants still publish the repository: only a reference to the removed
    tag is left on the last pushed image (by repository alone, all of them were warned)."""
    base_graph = load_files(BUILDPACK).graph
    gone = {"debian/bullseye/Dockerfile", "debian/bullseye/image.yaml"}
    graph = load_files({p: t for p, t in BUILDPACK.items() if p not in gone}).graph
    assert orphan_warnings(base_graph, graph, ["bullseye"]) == []
    scm = "debian/bullseye/scm/image.yaml"
    graph = load_files({p: t for p, t in BUILDPACK.items() if p != scm}).graph
    # Without its image.yaml, the folder is image `scm` of the default repository, so the
    # tag bullseye-scm, which bullseye builds on, is published no more.
    warning = (
        "bullseye still uses buildpack-deps:bullseye-scm, but image bullseye-scm was removed "
        "from the repo: it builds on the last pushed one"
    )
    assert orphan_warnings(base_graph, graph, ["bullseye-scm"]) == [warning]
    # A rename publishes the same tags: nothing to say.
    moved = {p.replace("debian/bullseye/", "debian/bullseye-2/"): t for p, t in BUILDPACK.items()}
    assert orphan_warnings(base_graph, load_files(moved).graph, ["bullseye"]) == []


def test_variants_never_overwrite_each_others_tags() -> None:
    repo = load_files(BUILDPACK)
    plan = compute_plan(
        repo.graph,
        compute_affected(repo.graph, ["debian/bookworm/curl/Dockerfile"]),
        settings=repo.settings,
        revision=Revision(sha=SHA, branch="main"),
        options=Options(),
    )
    curl, scm = plan.get("bookworm-curl"), plan.get("bookworm-scm")
    assert curl.tags == (
        "docker.io/library/buildpack-deps:bookworm-curl-git-0123456",
        "docker.io/library/buildpack-deps:bookworm-curl-main",
        "docker.io/library/buildpack-deps:bookworm-curl",
    )
    assert curl.immutable == "docker.io/library/buildpack-deps:bookworm-curl-git-0123456"
    assert (curl.cache_tag, scm.cache_tag) == (
        "bookworm-curl-buildcache",
        "bookworm-scm-buildcache",
    )
    assert scm.parents == (("bookworm-curl", "buildpack-deps:bookworm-curl"),)
    all_tags = [t for b in plan.images for t in b.tags]
    assert len(all_tags) == len(set(all_tags))


def test_several_dockerfiles_in_one_folder_are_several_images() -> None:
    graph = load_files(SERVING).graph
    assert graph.edges() == (
        ("serving-devel", "serving"),
        ("serving-devel-gpu", "serving-gpu"),
    )
    # Each Dockerfile is an input of its own image only.
    assert affected(SERVING, "tensorflow_serving/tools/docker/Dockerfile.devel-gpu") == (
        "serving-devel-gpu",
        "serving-gpu",
    )


SERVING_YAML = "tensorflow_serving/tools/docker/image.yaml"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # One entry's settings: that image (and what builds on it) only.
        (
            lambda text: text.replace(
                "  tag: latest-gpu\n", "  tag: latest-gpu\n  platforms: [linux/amd64]\n"
            ),
            ("serving-gpu",),
        ),
        (lambda text: text.replace("Dockerfile.devel\n", "./Dockerfile.devel\n"), ()),
        (lambda text: "# the release images\n" + text, ()),
        # The entries in another order define the same images.
        (lambda text: "".join(f"- name: {e}" for e in reversed(text.split("- name: ")[1:])), ()),
        # A new entry is a new image.
        (
            lambda text: (
                text + "- name: serving-mkl\n  repository: tensorflow/serving\n  tag: latest-mkl\n"
            ),
            ("serving-mkl",),
        ),
    ],
    ids=["one-entry", "same-path", "comment", "order", "new-entry"],
)
def test_an_edit_to_one_entry_of_a_list_affects_that_image(
    make_repo: MakeRepo, edit: Callable[[str], str], expected: tuple[str, ...]
) -> None:
    repo = make_repo(SERVING)
    (repo / SERVING_YAML).write_text(edit(SERVING[SERVING_YAML]))
    commit(repo)
    result = invoke("affected", "-C", repo, "--base", "HEAD~1", "--format", "names")
    assert result.exit_code == 0, result.stderr
    assert tuple(result.stdout.split()) == expected


def test_a_reference_to_a_tag_no_image_publishes_is_no_edge() -> None:
    files = {
        **SERVING,
        "tensorflow_serving/tools/docker/Dockerfile.gpu": "FROM tensorflow/serving:2.14-devel\n",
    }
    graph = load_files(files).graph
    assert ("serving-devel", "serving-gpu") not in graph.edges()
    assert graph.images["serving-gpu"].external_parents == ("tensorflow/serving:2.14-devel",)
    findings = [f for f in check_all(graph, list(files)) if "none of them" in f.message]
    said = (
        "tensorflow_serving/tools/docker/Dockerfile.gpu:1: tensorflow/serving:2.14-devel names "
        "a repository 4 images of this repo publish, with a tag none of them publishes "
        "(latest, latest-devel, latest-devel-gpu, latest-gpu): it is pulled from the registry, "
        "never rebuilt first (write one of the tags they publish to build on this repo's "
        "image, or pin a digest to mean that exact one)"
    )
    assert [f.render() for f in findings] == [said]


def test_a_typo_in_a_shared_repositorys_tag_gets_the_nearest_tag() -> None:
    files = {
        **SERVING,
        "tensorflow_serving/tools/docker/Dockerfile.gpu": "FROM tensorflow/serving:latest-devl\n",
    }
    hints = [f.hint for f in check_all(load_files(files).graph, list(files))]
    assert "did you mean tensorflow/serving:latest-devel?" in hints


def test_docker_stacks_needs_its_registry_and_doctor_says_which() -> None:
    plain = load_files({**STACKS, "builder.yaml": "image_roots: [images, 'images/*/cuda*']\n"})
    # Only the CUDA flavour, whose image.yaml names its repository, is found.
    assert plain.graph.edges() == (("pytorch-notebook-cuda12", "pytorch-extras"),)
    hints = {f.hint for f in check_all(plain.graph, list(STACKS))}
    assert "did you mean `registry: quay.io`, `namespace: jupyter` in builder.yaml?" in hints

    graph = load_files({**STACKS, "builder.yaml": STACKS_CONFIG}).graph
    assert graph.edges() == (
        ("base-notebook", "scipy-notebook"),
        ("docker-stacks-foundation", "base-notebook"),
        ("pytorch-notebook-cuda12", "pytorch-extras"),
        ("scipy-notebook", "pytorch-notebook"),
        ("scipy-notebook", "pytorch-notebook-cuda12"),
    )
    cuda = graph.images["pytorch-notebook-cuda12"]
    assert cuda.repository == "quay.io/jupyter/pytorch-notebook"
    assert cuda.config.identity_tag == "cuda12-latest"


def test_an_image_may_live_in_another_namespace() -> None:
    files = {
        "builder.yaml": "namespace: acme\n",
        "images/base/Dockerfile": "FROM alpine:3.20\n",
        "images/tool/Dockerfile": "FROM acme/base\n",
        "images/tool/image.yaml": "repository: ghcr.io/other/tool\n",
        "images/app/Dockerfile": "FROM ghcr.io/other/tool\n",
    }
    graph = load_files(files).graph
    assert graph.images["tool"].repository == "ghcr.io/other/tool"
    assert graph.edges() == (("base", "tool"), ("tool", "app"))


def test_depends_on_wires_a_parent_its_dockerfile_names_through_a_build_arg() -> None:
    files = {
        "builder.yaml": "namespace: acme\n",
        "images/base/Dockerfile": "FROM alpine:3.20\n",
        # CI passes BASE; builder sees the default, another registry's image.
        "images/app/Dockerfile": "ARG BASE=registry.example.com/team/base:ci\nFROM $BASE\n",
        "images/app/image.yaml": "depends_on: [base]\n",
    }
    repo = load_files(files)
    plan = compute_plan(
        repo.graph,
        compute_affected(repo.graph, ["images/base/Dockerfile"]),
        settings=repo.settings,
        revision=Revision(sha=SHA),
        options=Options(),
    )
    assert plan.get("app").parents == (("base", "registry.example.com/team/base:ci"),)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {
                "images/a/Dockerfile": "FROM alpine\n",
                "images/a/image.yaml": "repository: acme/x\n",
                "images/b/Dockerfile": "FROM alpine\n",
                "images/b/image.yaml": "repository: acme/x\n",
            },
            "images/b/image.yaml: images a and b both publish docker.io/acme/x:latest",
        ),
        (
            {
                "images/a/image.yaml": "- dockerfile: Dockerfile\n",
                "images/a/Dockerfile": "FROM x\n",
            },
            "images/a/image.yaml:1: each image of a list needs a 'name'",
        ),
        (
            {"images/a/image.yaml": "tag: 'bad tag'\n", "images/a/Dockerfile": "FROM x\n"},
            "images/a/image.yaml:1: invalid tag 'bad tag'",
        ),
        (
            {"images/a/image.yaml": "repository: acme/x:1\n", "images/a/Dockerfile": "FROM x\n"},
            "images/a/image.yaml:1: 'repository' 'acme/x:1' names a tag or digest",
        ),
    ],
)
def test_identity_mistakes_are_one_line(
    make_repo: MakeRepo, files: dict[str, str], message: str
) -> None:
    result = invoke("graph", "-C", make_repo(files))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(f"error: {message}")


def test_doctor_reports_each_finding_and_exits_1_on_an_error(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            "images/api/Dockerfile": "FROM quay.io/jupyter/base\n",
            "images/base/Dockerfile": "FROM alpine\n",
            "images/web/Dockerfile": "FROM alpine\n",
            "images/web/image.yaml": "context: ../../nowhere\nwatch: ['shared/none/**']\n",
            "tools/Dockerfile.ci": "FROM alpine\n",
        }
    )
    result = invoke("doctor", "-C", repo)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        (
            "warning: images/api/Dockerfile:1: quay.io/jupyter/base looks like in-repo image "
            "base (docker.io/library/base) under another registry or namespace: no edge (did "
            "you mean `registry: quay.io`, `namespace: jupyter` in builder.yaml?)"
        ),
        (
            "error: images/web/image.yaml:1: the build context nowhere holds no file (check "
            "'context' in image.yaml)"
        ),
        (
            "warning: images/web/image.yaml:2: watch glob 'shared/none/**' matches no file "
            "(globs are gitignore-style and relative to the repository root)"
        ),
        (
            "warning: tools/Dockerfile.ci: no image builds this Dockerfile (add its folder to "
            "image_roots (globs like debian/*/* name image folders), or name it in an "
            "image.yaml's 'dockerfile')"
        ),
        "3 images, 1 error(s), 3 warning(s)",
    ]
    assert result.stderr == "error: 1 error(s) found\n"


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("images/api/Dockerfile", True),
        ("debian/Dockerfile.template", True),
        ("debian/Dockerfile-curl.template", True),
        ("alpine/Dockerfile_slim", True),
        ("tools/ci.Dockerfile", True),
        ("images/api/.dockerignore", False),
        ("images/api/Dockerfile.dockerignore", False),
        ("docs/Dockerfiles.md", False),
    ],
)
def test_what_doctor_takes_for_a_dockerfile(path: str, named: bool) -> None:
    assert is_dockerfile(path) is named


def test_doctor_names_every_images_own_error_at_once(make_repo: MakeRepo) -> None:
    """Kubeflow's notebook servers, adopted without their build args: each Dockerfile's
    placeholder default is no reference, and doctor names them all, not the first only."""
    placeholder = "ARG BASE_IMG=<base>\nFROM $BASE_IMG\n"
    repo = make_repo(
        {
            "images/base/Dockerfile": "FROM alpine\n",
            "images/codeserver/Dockerfile": placeholder,
            "images/jupyter/Dockerfile": placeholder,
            "images/rstudio/Dockerfile": "FROM alpine\n",
            "images/rstudio/image.yaml": "dockerfile: Dockerfile.missing\n",
        }
    )
    result = invoke("doctor", "-C", repo)
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert [line.split(": ")[1] for line in errors] == [
        "images/rstudio/image.yaml:1",
        "images/codeserver/Dockerfile:2",
        "images/jupyter/Dockerfile:2",
    ]
    assert "invalid image reference '<base>'" in errors[1]
    # Every other command stops at the first, as before.
    graph = invoke("graph", "-C", repo)
    assert graph.exit_code == 2
    assert graph.stderr.count("error:") == 1


def test_doctor_leaves_alone_the_dockerfiles_builder_yaml_says_are_no_image(
    make_repo: MakeRepo,
) -> None:
    files = {
        "builder.yaml": "not_images:\n  - tools/**\n",
        "images/api/Dockerfile": "FROM alpine\n",
        "images/api/app.py": "\n",
        "tools/Dockerfile.ci": "FROM alpine\n",
        "examples/Dockerfile": "FROM alpine\n",
    }
    result = invoke("doctor", "-C", make_repo(files))
    assert result.stdout.splitlines() == [
        (
            "warning: examples/Dockerfile: no image builds this Dockerfile (add its folder to "
            "image_roots (globs like debian/*/* name image folders), or name it in an "
            "image.yaml's 'dockerfile')"
        ),
        "1 images, 0 error(s), 1 warning(s)",
    ]


def test_doctor_on_a_clean_repo(make_repo: MakeRepo) -> None:
    repo = make_repo({"images/api/Dockerfile": "FROM alpine\n", "images/api/app.py": "\n"})
    result = invoke("doctor", "-C", repo)
    assert (result.exit_code, result.stdout) == (0, "1 images, 0 error(s), 0 warning(s)\n")


def test_graph_and_affected_warn_of_near_misses(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            "images/api/Dockerfile": "FROM quay.io/jupyter/base\n",
            "images/base/Dockerfile": "FROM x\n",
        }
    )
    for args in (("graph",), ("affected", "--base", "HEAD")):
        result = invoke(*args, "-C", repo)
        assert result.exit_code == 0
        assert "looks like in-repo image base" in result.stderr
