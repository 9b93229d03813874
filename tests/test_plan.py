"""Build plans: tags, secrets, the per-image build values and the bake data they render to."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from builder.bake import Outputs, compute_dry_run
from builder.bake import compute_target as render_bake_target
from builder.changes import Affected, AffectedImage, Reason, compute_affected, compute_all
from builder.errors import ConfigError
from builder.keys import KEY_LABEL
from builder.plan import (
    BuildPlan,
    ImageBuild,
    Options,
    Revision,
    compute_plan,
    compute_tags,
    parse_secret,
    sanitize_tag,
)
from builder.repo import Repo
from tests.conftest import load_files

SHA = "0123456789abcdef0123456789abcdef01234567"
EPOCH = 1704067200
CREATED = "2024-01-01T00:00:00+00:00"
SOURCE = "https://github.com/acme/mono"
REVISION = Revision(sha=SHA, branch="main", source=SOURCE, created=CREATED, epoch=EPOCH)
PY_DIGEST = "sha256:" + "1" * 64
BUSYBOX_DIGEST = "sha256:" + "2" * 64
ROOT = Path("/src")

TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    # The full spelling: BuildKit matches the named context by `acme/base`.
    "images/api/Dockerfile": "FROM docker.io/acme/base:latest\nCOPY . /app\n",
    "images/worker/Dockerfile": (
        "ARG BUILDER_PREFIX=docker.io/acme\n"
        "FROM ${BUILDER_PREFIX}/api\n"
        "COPY --from=busybox:1.36 /bin/sh /sh\n"
    ),
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
    "images/cli/image.yaml": "depends_on: [base]\nplatforms: [linux/amd64]\n",
}
KEYS = {"base": "a" * 64, "api": "b" * 64, "worker": "c" * 64, "cli": "d" * 64}


def only(repo: Repo, *names: str) -> Affected:
    """`names` as an affected set, as --only would narrow it."""
    reason = Reason(kind="all", note="--only")
    return Affected(
        images=tuple(
            AffectedImage(name=n, path=repo.graph.images[n].directory, reasons=(reason,))
            for n in repo.graph.order
            if n in names
        )
    )


def plan_of(
    files: Mapping[str, str] = TREE,
    affected: tuple[str, ...] | None = None,
    *,
    revision: Revision = REVISION,
    options: Options | None = None,
    everything: tuple[str, ...] | None = None,
    keys: Mapping[str, str] | None = None,
    base_digests: Mapping[str, str] | None = None,
) -> BuildPlan:
    repo = load_files(files)
    return compute_plan(
        repo.graph,
        compute_all(repo.graph, "all") if affected is None else only(repo, *affected),
        settings=repo.settings,
        revision=revision,
        options=options or Options(),
        everything_affected=None if everything is None else only(repo, *everything),
        keys=keys,
        base_digests=base_digests,
    )


# -- tags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        pytest.param(Revision(sha=SHA), ("git-0123456",), id="detached"),
        pytest.param(
            Revision(sha=SHA, branch="main"), ("git-0123456", "main", "latest"), id="default"
        ),
        pytest.param(
            Revision(sha=SHA, branch="trunk", default_branch="trunk"),
            ("git-0123456", "trunk", "latest"),
            id="other-default-branch",
        ),
        pytest.param(
            Revision(sha=SHA, branch="feature/ETL-12"),
            ("git-0123456", "feature-etl-12"),
            id="sanitised-branch",
        ),
        pytest.param(
            Revision(sha=SHA, branch="main", default_branch="trunk"),
            ("git-0123456", "main"),
            id="latest-only-on-the-default-branch",
        ),
        pytest.param(Revision(sha=SHA, branch="///"), ("git-0123456",), id="unusable-branch"),
        pytest.param(
            Revision(sha=SHA, branch="git-0123456"), ("git-0123456",), id="branch-named-like-sha"
        ),
        pytest.param(
            Revision(sha=SHA, version_tag="v1.2.3"),
            ("git-0123456", "1.2.3", "1.2", "1"),
            id="version-tag",
        ),
        pytest.param(
            Revision(sha=SHA, branch="main", version_tag="v10.0.7"),
            ("git-0123456", "main", "latest", "10.0.7", "10.0", "10"),
            id="version-tag-on-default-branch",
        ),
        pytest.param(
            Revision(sha=SHA, version_tag="v1.2"), ("git-0123456",), id="not-a-full-version"
        ),
        pytest.param(
            Revision(sha=SHA, version_tag="v1.2.3-rc1"), ("git-0123456",), id="pre-release"
        ),
        pytest.param(
            Revision(sha=SHA, branch="main", version_tag="v1.2.3", dirty=True),
            ("git-0123456-dirty",),
            id="dirty-earns-no-moving-tag",
        ),
        pytest.param(
            Revision(sha=SHA, branch="latest"),
            ("git-0123456",),
            id="branch-named-latest",
        ),
        pytest.param(
            Revision(sha=SHA, branch="git-deadbee"),
            ("git-0123456",),
            id="branch-named-like-another-sha",
        ),
        pytest.param(
            Revision(sha=SHA, branch="buildcache"),
            ("git-0123456",),
            id="branch-named-buildcache",
        ),
    ],
)
def test_compute_tags(revision: Revision, expected: tuple[str, ...]) -> None:
    assert compute_tags(revision) == expected


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("main", "main"),
        ("feature/ETL-12", "feature-etl-12"),
        ("Feature//Big  Thing", "feature-big-thing"),
        ("release/1.2.x", "release-1.2.x"),
        ("snake_case", "snake_case"),
        ("..hidden", "hidden"),
        ("--dashed", "dashed"),
        ("-.-mixed", "mixed"),
        ("trailing/", "trailing"),
        ("ünïcode", "n-code"),
        ("...", ""),
        ("", ""),
        ("a" * 200, "a" * 128),
        ("a" * 127 + "/b", "a" * 127),  # the cut leaves a dash, which is dropped
        ("--" + "b" * 130, "b" * 128),  # leading junk goes before the cap
    ],
)
def test_sanitize_tag(branch: str, expected: str) -> None:
    assert sanitize_tag(branch) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id=npm,env=NPM_TOKEN", "id=npm,env=NPM_TOKEN"),
        ("id=pip.conf,src=/home/me/.pip/pip.conf", "id=pip.conf,src=/home/me/.pip/pip.conf"),
        ("id=a-b_c,src=relative/file", "id=a-b_c,src=relative/file"),
        ("  id=x,env=_X1  ", "id=x,env=_X1"),
    ],
)
def test_parse_secret_valid(text: str, expected: str) -> None:
    assert parse_secret(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "npm",
        "id=npm",
        "env=NPM_TOKEN",
        "id=,env=X",
        "id=n pm,env=X",
        "id=npm,env=1X",
        "id=npm,env=X-Y",
        "id=npm,src=",
        "id=npm,src=a,b",
        "id=npm,env=X,src=/f",
        "src=/f,id=npm",
        "type=env,id=npm",
        "id=npm,value=hunter2",
    ],
)
def test_parse_secret_invalid(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid --secret") as info:
        parse_secret(text)
    assert info.value.hint == "use id=NAME,env=VARIABLE or id=NAME,src=PATH"


# -- compute_plan ------------------------------------------------------------------------------


def test_order_waves_and_unchanged() -> None:
    plan = plan_of()
    assert [b.name for b in plan.images] == ["base", "api", "cli", "worker"]
    assert plan.waves == (("base",), ("api", "cli"), ("worker",))
    assert plan.unchanged == ()
    assert (plan.push, plan.push_by_digest) == (True, False)


def test_a_partial_plan_lists_the_rest_as_unchanged() -> None:
    repo = load_files(TREE)
    affected = compute_affected(repo.graph, ["images/api/app.py"])
    plan = compute_plan(
        repo.graph, affected, settings=repo.settings, revision=REVISION, options=Options()
    )
    assert [b.name for b in plan.images] == ["api", "worker"]
    assert plan.waves == (("api",), ("worker",))
    assert plan.unchanged == ("base", "cli")
    assert plan.get("api").reasons == (
        Reason(
            kind="context", path="images/api/app.py", source="images/api/Dockerfile:2 COPY . /app"
        ),
    )
    assert plan.get("worker").reasons == (Reason(kind="parent", parent="api"),)
    with pytest.raises(KeyError):
        plan.get("base")


def test_removed_images_are_carried() -> None:
    repo = load_files(TREE)
    affected = Affected(images=(), removed=("gone",))
    plan = compute_plan(
        repo.graph, affected, settings=repo.settings, revision=REVISION, options=Options()
    )
    assert (plan.images, plan.waves, plan.removed) == ((), (), ("gone",))


def test_whole_image_build() -> None:
    assert plan_of().get("api") == ImageBuild(
        name="api",
        target="api",
        repository="docker.io/acme/api",
        context=PurePosixPath("images/api"),
        dockerfile=PurePosixPath("images/api/Dockerfile"),
        stage=None,
        platforms=("linux/amd64", "linux/arm64"),
        build_args=(),
        tags=(
            "docker.io/acme/api:git-0123456",
            "docker.io/acme/api:main",
            "docker.io/acme/api:latest",
        ),
        labels=(
            ("org.opencontainers.image.base.name", "docker.io/acme/base:latest"),
            ("org.opencontainers.image.created", CREATED),
            ("org.opencontainers.image.revision", SHA),
            ("org.opencontainers.image.source", SOURCE),
            ("org.opencontainers.image.title", "api"),
        ),
        parents=(("base", "acme/base"),),
        pinned_parents=(),
        pinned_references=(),
        staging_tag="git-0123456-linux-amd64-linux-arm64",
        immutable="docker.io/acme/api:git-0123456",
        external_pins=(),
        key=None,
        requires=("base",),
        base="docker.io/acme/base:latest",
        base_parent="base",
        cache=True,
        secrets=(),
        epoch=EPOCH,
        reasons=(Reason(kind="all", note="all"), Reason(kind="parent", parent="base")),
        attest=("type=provenance,mode=max",),
    )


def test_parents_use_the_familiar_name_buildkit_matches() -> None:
    plan = plan_of()
    assert plan.get("api").parents == (("base", "acme/base"),)
    # `${BUILDER_PREFIX}/api` expands to docker.io/acme/api: the context key is `acme/api`.
    assert plan.get("worker").parents == (("api", "acme/api"),)
    assert plan.get("worker").build_args == (("BUILDER_PREFIX", "docker.io/acme"),)


@pytest.mark.parametrize(
    ("reference", "key"),
    [
        ("acme/base", "acme/base"),
        ("acme/base:latest", "acme/base"),
        ("docker.io/acme/base", "acme/base"),
        ("docker.io/acme/base:latest", "acme/base"),
        ("index.docker.io/acme/base", "acme/base"),
        # distribution/reference folds index.docker.io into Docker Hub, not registry-1:
        # BuildKit looks this one up under the whole name (tests/integration proves it).
        ("registry-1.docker.io/acme/base", "registry-1.docker.io/acme/base"),
        ("registry-1.docker.io/acme/base:latest", "registry-1.docker.io/acme/base"),
    ],
)
def test_every_docker_hub_spelling_gets_the_key_buildkit_looks_up(reference: str, key: str) -> None:
    files = {**TREE, "images/api/Dockerfile": f"FROM {reference}\n"}
    assert plan_of(files).get("api").parents == (("base", key),)


@pytest.mark.parametrize("digest_form", ["acme/base@{d}", "docker.io/acme/base:1@{d}"])
def test_a_digest_pin_is_never_rewired_to_the_fresh_build(digest_form: str) -> None:
    reference = digest_form.format(d=PY_DIGEST)
    files = {**TREE, "images/api/Dockerfile": f"FROM {reference}\n"}
    api = plan_of(files, keys=KEYS, base_digests={reference: PY_DIGEST}).get("api")
    assert (api.parents, api.pinned_parents, api.requires) == ((), (), ())
    target = render_bake_target(api, root=ROOT, parent_contexts={"base": "target:base"}, push=True)
    assert "contexts" not in target


def test_a_registry_override_keeps_builder_yaml_names_wired_to_this_run() -> None:
    """`--registry ghcr.io`: `FROM acme/base` still means the in-repo base, and the bake
    points that name at this run's build of it, not at Docker Hub's old one."""
    repo = load_files(TREE, registry="ghcr.io")
    plan = compute_plan(
        repo.graph,
        compute_all(repo.graph, "all"),
        settings=repo.settings,
        revision=REVISION,
        options=Options(),
    )
    api = plan.get("api")
    assert api.repository == "ghcr.io/acme/api"
    assert api.parents == (("base", "acme/base"),)
    assert plan.get("worker").parents == (("api", "ghcr.io/acme/api"),)


def test_one_parent_under_two_names_gets_both_context_keys() -> None:
    files = {
        **TREE,
        "images/api/Dockerfile": (
            "FROM docker.io/acme/base:latest\nCOPY --from=registry-1.docker.io/acme/base /x /x\n"
        ),
    }
    assert plan_of(files).get("api").parents == (
        ("base", "acme/base"),
        ("base", "registry-1.docker.io/acme/base"),
    )


def test_parents_on_another_registry_keep_the_registry_in_the_key() -> None:
    files = {
        "builder.yaml": "registry: localhost:5000\nnamespace: acme\n",
        "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
        "images/api/Dockerfile": "FROM localhost:5000/acme/base:latest\n",
    }
    api = plan_of(files).get("api")
    assert api.parents == (("base", "localhost:5000/acme/base"),)
    assert api.repository == "localhost:5000/acme/api"
    assert api.tags[0] == "localhost:5000/acme/api:git-0123456"


def test_depends_on_orders_the_build_and_wires_the_parent_as_a_context() -> None:
    """A declared parent builds like a derived one (issue 10): whatever name the
    Dockerfile reaches it by, this run's build stands behind the parent's own names."""
    cli = plan_of().get("cli")
    assert (cli.requires, cli.parents, cli.base, cli.base_parent) == (
        ("base",),
        (("base", "acme/base"),),
        "alpine:3.20",
        None,
    )
    assert cli.platforms == ("linux/amd64",)
    assert cli.staging_tag == "git-0123456-linux-amd64"


def test_requires_only_name_images_in_the_plan() -> None:
    plan = plan_of(affected=("api", "worker"))
    assert plan.get("api").requires == ()
    assert plan.get("api").parents == ()
    assert plan.get("api").base_parent is None  # base is neither built nor pinned
    assert plan.get("worker").requires == ("api",)


def test_labels_without_source_or_created() -> None:
    labels = dict(plan_of(revision=Revision(sha=SHA)).get("base").labels)
    assert labels == {
        "org.opencontainers.image.title": "base",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.base.name": "python:3.12-slim",
    }


def test_base_digest_label_for_known_external_bases() -> None:
    plan = plan_of(base_digests={"python:3.12-slim": PY_DIGEST, "busybox:1.36": BUSYBOX_DIGEST})
    base = dict(plan.get("base").labels)
    assert base["org.opencontainers.image.base.digest"] == PY_DIGEST
    # worker's final stage starts from acme/api: busybox is no base, only a COPY source.
    assert "org.opencontainers.image.base.digest" not in dict(plan.get("worker").labels)
    assert "org.opencontainers.image.base.digest" not in dict(plan.get("cli").labels)


def test_external_pins_for_base_digests() -> None:
    plan = plan_of(base_digests={"python:3.12-slim": PY_DIGEST, "busybox:1.36": BUSYBOX_DIGEST})
    assert plan.get("base").external_pins == (
        ("python:3.12-slim", f"docker-image://docker.io/library/python@{PY_DIGEST}"),
    )
    assert plan.get("worker").external_pins == (
        ("busybox:1.36", f"docker-image://docker.io/library/busybox@{BUSYBOX_DIGEST}"),
    )
    assert plan.get("api").external_pins == ()  # in-repo parents are never external pins
    assert plan.get("cli").external_pins == ()  # alpine's digest is unknown


def test_keys_label_and_tag_every_image() -> None:
    plan = plan_of(keys=KEYS)
    api = plan.get("api")
    assert api.key == "b" * 64
    assert dict(api.labels)[KEY_LABEL] == "b" * 64
    assert api.tags == (
        "docker.io/acme/api:git-0123456",
        "docker.io/acme/api:main",
        "docker.io/acme/api:latest",
        "docker.io/acme/api:key-bbbbbbbbbbbbbbbb",
    )


def test_without_keys_there_is_no_key_label() -> None:
    api = plan_of().get("api")
    assert api.key is None
    assert KEY_LABEL not in dict(api.labels)


def test_parents_outside_the_plan_are_pinned_when_the_change_affects_them() -> None:
    plan = plan_of(affected=("worker",), everything=("base", "api", "worker"))
    worker = plan.get("worker")
    assert worker.parents == ()
    assert worker.requires == ()
    assert worker.pinned_parents == (("api", "acme/api"),)
    assert worker.pinned_references == (("api", "docker.io/acme/api:git-0123456"),)
    assert worker.base_parent == "api"  # its digest comes from the pin


def test_unaffected_parents_are_not_pinned_without_keys() -> None:
    plan = plan_of(affected=("worker",), everything=("worker",))
    worker = plan.get("worker")
    assert (worker.pinned_parents, worker.pinned_references, worker.base_parent) == ((), (), None)


def test_keys_pin_every_parent_outside_the_plan_to_its_key_tag() -> None:
    plan = plan_of(affected=("worker", "cli"), keys=KEYS)
    worker = plan.get("worker")
    assert worker.pinned_parents == (("api", "acme/api"),)
    assert worker.pinned_references == (("api", "docker.io/acme/api:key-bbbbbbbbbbbbbbbb"),)
    cli = plan.get("cli")
    # depends_on builds like a derived edge: its parent is pinned to its key too.
    assert cli.pinned_parents == (("base", "acme/base"),)
    assert cli.pinned_references == (("base", "docker.io/acme/base:key-aaaaaaaaaaaaaaaa"),)


def test_push_by_digest_has_no_tags_but_a_staging_tag() -> None:
    plan = plan_of(options=Options(push=False, push_by_digest=True, platforms=("linux/arm64",)))
    assert (plan.push, plan.push_by_digest) == (True, True)
    api = plan.get("api")
    assert api.tags == ()
    assert api.platforms == ("linux/arm64",)
    assert api.staging_tag == "git-0123456-linux-arm64"


def test_platforms_override_every_image() -> None:
    plan = plan_of(options=Options(platforms=("linux/arm64/v8",), push_by_digest=True))
    assert {b.name: b.platforms for b in plan.images} == {
        "base": ("linux/arm64/v8",),
        "api": ("linux/arm64/v8",),
        "cli": ("linux/arm64/v8",),
        "worker": ("linux/arm64/v8",),
    }
    assert plan.get("cli").staging_tag == "git-0123456-linux-arm64-v8"


def test_fewer_platforms_never_replace_multi_platform_tags() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_of(options=Options(platforms=("linux/amd64",)))
    assert caught.value.render() == (
        "--platform linux/amd64 would push base (and 2 more) without linux/arm64, replacing "
        "its multi-platform tags (build one platform per runner with --push-by-digest and "
        "join them with builder merge, or use --no-push)"
    )
    # Not pushing, by digest, or every platform the images have: fine.
    plan_of(options=Options(platforms=("linux/amd64",), push=False))
    plan_of(options=Options(platforms=("linux/arm64", "linux/amd64", "linux/riscv64")))


@pytest.mark.parametrize(
    ("builder_yaml", "option", "expected"),
    [
        ("namespace: acme\n", True, True),
        ("namespace: acme\n", False, False),
        ("namespace: acme\ncache: false\n", True, False),
    ],
)
def test_cache_needs_both_settings_and_option(
    builder_yaml: str, option: bool, expected: bool
) -> None:
    plan = plan_of({**TREE, "builder.yaml": builder_yaml}, options=Options(cache=option))
    assert {b.cache for b in plan.images} == {expected}


def test_secrets_and_stage_reach_every_build() -> None:
    files = {
        **TREE,
        "images/cli/Dockerfile": "FROM alpine:3.20 AS runtime\nFROM runtime AS test\n",
        "images/cli/image.yaml": "target: runtime\n",
    }
    plan = plan_of(files, options=Options(secrets=("id=npm,env=NPM_TOKEN",)))
    assert plan.get("cli").stage == "runtime"
    assert {b.secrets for b in plan.images} == {("id=npm,env=NPM_TOKEN",)}


def test_target_names_are_bake_safe_and_unique() -> None:
    files = {
        "builder.yaml": "namespace: acme\n",
        "images/etl.v2/Dockerfile": "FROM alpine\n",
        "images/etl_v2/Dockerfile": "FROM alpine\n",
    }
    plan = plan_of(files)
    assert {b.name: b.target for b in plan.images} == {"etl.v2": "etl_v2", "etl_v2": "etl_v2_2"}


def test_base_follows_the_final_stage_through_stage_names() -> None:
    files = {
        "builder.yaml": "namespace: acme\n",
        "images/app/Dockerfile": (
            "FROM alpine:3.20 AS runtime\nFROM golang:1.22 AS build\nRUN true\nFROM runtime\n"
        ),
    }
    assert plan_of(files).get("app").base == "alpine:3.20"


def test_base_follows_the_target_stage() -> None:
    files = {
        "builder.yaml": "namespace: acme\n",
        "images/app/Dockerfile": "FROM python:3.12 AS app\nFROM alpine:3.20 AS other\n",
        "images/app/image.yaml": "target: app\n",
    }
    assert plan_of(files).get("app").base == "python:3.12"


# -- bake data -------------------------------------------------------------------------------

LABELS = {
    "org.opencontainers.image.title": "api",
    "org.opencontainers.image.revision": SHA,
    "org.opencontainers.image.source": SOURCE,
    "org.opencontainers.image.created": CREATED,
    "org.opencontainers.image.base.name": "docker.io/acme/base:latest",
}
API_TAGS = [
    "docker.io/acme/api:git-0123456",
    "docker.io/acme/api:main",
    "docker.io/acme/api:latest",
]


def test_bake_target_pushing_with_cache() -> None:
    api = plan_of().get("api")
    target = render_bake_target(api, root=ROOT, parent_contexts={"base": "target:base"}, push=True)
    assert target == {
        "context": "/src/images/api",
        "dockerfile": "/src/images/api/Dockerfile",
        "platforms": ["linux/amd64", "linux/arm64"],
        "tags": API_TAGS,
        "labels": LABELS,
        "args": {"SOURCE_DATE_EPOCH": str(EPOCH)},
        "contexts": {"acme/base": "target:base"},
        "cache-from": ["type=registry,ref=docker.io/acme/api:buildcache"],
        "cache-to": ["type=registry,ref=docker.io/acme/api:buildcache,mode=max"],
        "attest": ["type=provenance,mode=max"],
        "output": ["type=registry"],
    }


def test_bake_target_not_pushing_reads_cache_but_never_writes_it() -> None:
    api = plan_of(options=Options(push=False)).get("api")
    target = render_bake_target(api, root=ROOT, parent_contexts={}, push=False)
    assert target["cache-from"] == ["type=registry,ref=docker.io/acme/api:buildcache"]
    assert "cache-to" not in target
    assert "contexts" not in target  # no context for base: nothing to link
    assert target["output"] == ["type=cacheonly"]


def test_bake_target_without_cache() -> None:
    api = plan_of(options=Options(cache=False)).get("api")
    target = render_bake_target(api, root=ROOT, parent_contexts={}, push=True)
    assert "cache-from" not in target
    assert "cache-to" not in target


def test_bake_target_by_digest() -> None:
    plan = plan_of(options=Options(push_by_digest=True, platforms=("linux/amd64",)))
    target = render_bake_target(
        plan.get("base"), root=ROOT, parent_contexts={}, push=True, by_digest=True
    )
    assert target["tags"] == []
    assert target["output"] == [
        "type=image,name=docker.io/acme/base,push-by-digest=true,name-canonical=true,push=true"
    ]


def test_bake_target_args_stage_secrets_pins_and_extra_labels() -> None:
    files = {
        **TREE,
        "images/worker/Dockerfile": (
            "ARG BUILDER_PREFIX=docker.io/acme\n"
            "FROM ${BUILDER_PREFIX}/api AS final\n"
            "COPY --from=busybox:1.36 /bin/sh /sh\n"
        ),
        "images/worker/image.yaml": "target: final\n",
    }
    plan = plan_of(
        files,
        revision=Revision(sha=SHA),
        options=Options(secrets=("id=npm,env=NPM_TOKEN", "id=pip,src=/p")),
        base_digests={"busybox:1.36": BUSYBOX_DIGEST},
    )
    digest = "sha256:" + "9" * 64
    target = render_bake_target(
        plan.get("worker"),
        root=ROOT,
        parent_contexts={"api": f"docker-image://docker.io/acme/api@{digest}", "other": "x"},
        extra_labels={"org.opencontainers.image.base.digest": digest},
        push=True,
    )
    assert target["args"] == {"BUILDER_PREFIX": "docker.io/acme"}  # no epoch, no SOURCE_DATE
    assert target["target"] == "final"
    assert target["secret"] == ["id=npm,env=NPM_TOKEN", "id=pip,src=/p"]
    assert target["contexts"] == {
        "acme/api": f"docker-image://docker.io/acme/api@{digest}",
        "busybox:1.36": f"docker-image://docker.io/library/busybox@{BUSYBOX_DIGEST}",
    }
    assert target["labels"] == {
        "org.opencontainers.image.title": "worker",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.base.name": "docker.io/acme/api",
        "org.opencontainers.image.base.digest": digest,
    }


def test_bake_target_pinned_parents_take_their_context() -> None:
    plan = plan_of(affected=("worker",), everything=("api", "worker"))
    pin = "docker-image://docker.io/acme/api@sha256:" + "7" * 64
    target = render_bake_target(
        plan.get("worker"), root=ROOT, parent_contexts={"api": pin}, push=True
    )
    assert target["contexts"] == {"acme/api": pin}


def test_bake_file_links_in_plan_parents_by_target() -> None:
    """Not pushing, an image is baked with its in-plan ancestors as cache-only targets."""
    plan = plan_of(
        affected=("base", "api"), revision=Revision(sha=SHA), options=Options(push=False)
    )
    base_labels = {
        "org.opencontainers.image.title": "base",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.base.name": "python:3.12-slim",
    }
    base_target = {
        "context": "/src/base-images/base",
        "dockerfile": "/src/base-images/base/Dockerfile",
        "platforms": ["linux/amd64", "linux/arm64"],
        "tags": ["docker.io/acme/base:git-0123456"],
        "labels": base_labels,
        "cache-from": ["type=registry,ref=docker.io/acme/base:buildcache"],
        "output": ["type=cacheonly"],
    }
    definitions = compute_dry_run(plan, root=ROOT, outputs=Outputs())
    assert definitions["api"] == {
        "target": {
            "api": {
                "context": "/src/images/api",
                "dockerfile": "/src/images/api/Dockerfile",
                "platforms": ["linux/amd64", "linux/arm64"],
                "tags": ["docker.io/acme/api:git-0123456"],
                "labels": {
                    "org.opencontainers.image.title": "api",
                    "org.opencontainers.image.revision": SHA,
                    "org.opencontainers.image.base.name": "docker.io/acme/base:latest",
                    # A run blanks what it does not know, so base's label never shows through.
                    "org.opencontainers.image.base.digest": "",
                },
                "contexts": {"acme/base": "target:base"},
                "cache-from": ["type=registry,ref=docker.io/acme/api:buildcache"],
                "output": ["type=cacheonly"],
            },
            "base": base_target,
        },
    }
    assert definitions["base"]["target"]["base"]["labels"] == {
        **base_labels,
        "org.opencontainers.image.base.digest": "",
    }


def test_bake_file_pushing_by_digest() -> None:
    plan = plan_of(
        affected=("base",), options=Options(push_by_digest=True, platforms=("linux/amd64",))
    )
    definitions = compute_dry_run(plan, root=ROOT, outputs=Outputs())
    target: dict[str, Any] = definitions["base"]["target"]["base"]
    assert target["output"] == [
        "type=image,name=docker.io/acme/base,push-by-digest=true,name-canonical=true,push=true"
    ]
    assert target["cache-to"] == ["type=registry,ref=docker.io/acme/base:buildcache,mode=max"]
