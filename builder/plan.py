"""Build plans: which images to build, how to tag and label them, as bake data (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from builder.changes import Affected, Reason
from builder.errors import ConfigError
from builder.graph import ImageGraph
from builder.keys import KEY_LABEL, compute_test_hashes, key_tag, verdict_tag
from builder.model import (
    Identity,
    Image,
    ImageConfig,
    Settings,
    TestSpec,
    identity_index,
    named_image,
)
from builder.refs import TAG_RE, context_key

BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
_VERSION_RE = re.compile(r"^v?(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)$", re.ASCII)
_TARGET_RE = re.compile(r"[^A-Za-z0-9_-]")
# Tags builder gives a meaning to: a branch of that name must not move them.
_RESERVED_TAG_RE = re.compile(
    r"^(latest|buildcache|git-[0-9a-f]{7}(-dirty)?|key-[0-9a-f]{16}|"
    r"tested-[0-9a-f]{16}-[0-9a-f]{8}|\d+(\.\d+){0,2})$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Revision:
    """What git says about the commit being built; the source of tags and labels."""

    sha: str
    branch: str | None = None  # None when detached
    version_tag: str | None = None  # a vX.Y.Z tag pointing at sha
    default_branch: str = "main"
    source: str | None = None  # repository URL for org.opencontainers.image.source
    created: str | None = None  # commit time, RFC 3339: reproducible unlike "now"
    epoch: int | None = None  # the same instant, for SOURCE_DATE_EPOCH
    dirty: bool = False  # the working tree differs from sha


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    push: bool = True
    push_by_digest: bool = False  # untagged pushes, joined later by `builder merge`
    platforms: tuple[str, ...] | None = None  # overrides every image's platforms
    cache: bool = True
    # BuildKit secrets, `id=NAME,env=VAR` or `id=NAME,src=PATH`: only the name of where the
    # value lives travels, never the value, and RUN --mount=type=secret keeps it out of layers.
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageBuild:
    """One image's build, ready to hand to buildx."""

    name: str
    target: str  # bake target name
    repository: str  # where tags point, e.g. docker.io/acme/etl-base
    context: PurePosixPath
    dockerfile: PurePosixPath
    stage: str | None
    platforms: tuple[str, ...]
    build_args: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]  # full references
    labels: tuple[tuple[str, str], ...]
    parents: tuple[tuple[str, str], ...]  # (in-plan parent, named-context key)
    # In-repo parents outside this plan (an earlier fan-out wave, left out by --only, or
    # unchanged under content keys): (parent, named-context key), pinned by digest.
    pinned_parents: tuple[tuple[str, str], ...] = ()
    # The tag each pinned parent is resolved from: `key-<hex>`, else `git-<sha7>`.
    pinned_references: tuple[tuple[str, str], ...] = ()
    staging_tag: str = ""  # `git-<sha7>-<platforms>`, where push-by-digest is unavailable
    # The tag that never moves once pushed (`git-<sha7>`, with the image's affixes), as a
    # full reference; "" for a dirty tree's build.
    immutable: str = ""
    cache_tag: str = "buildcache"  # the registry build cache's tag, with the affixes
    # External bases pinned to the digest the content key saw: (context key, docker-image://…)
    external_pins: tuple[tuple[str, str], ...] = ()
    key: str | None = None  # content key, when the run computed keys
    # The digest the registry already holds under this key: the run only adds its tags.
    existing: str | None = None
    requires: tuple[str, ...]  # in-plan images that must be built first (depends_on too)
    base: str | None  # the reference the final stage starts from, for the base.* labels
    base_parent: str | None  # that base's in-plan image, when it is one
    cache: bool
    secrets: tuple[str, ...] = ()
    epoch: int | None = None
    reasons: tuple[Reason, ...] = ()
    # The image's test and the platforms it runs on (those of `platforms` it names).
    test: TestSpec | None = None
    test_platforms: tuple[str, ...] = ()
    # Pushing a tested image: `tags` the bake leaves out, moved only once the tests pass
    # (every tag but the immutable `key-<hex>` one the tests run against).
    held: tuple[str, ...] = ()
    # `repo:tested-<key>-<test>`, pushed on the digest once its tests passed (with keys).
    verdict: str | None = None
    tested: bool = False  # `existing` only: the registry already holds that verdict
    # Pinned parents pushed under their key whose tests never passed: never built on.
    untested_parents: tuple[str, ...] = ()

    @property
    def bake_tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if t not in self.held)

    @property
    def tag_only(self) -> bool:
        """Already pushed under its key and nothing to prove: the run only moves tags."""
        return self.existing is not None and (self.test is None or self.tested)

    # BuildKit attestations a push carries (bake's `attest`), from builder.yaml's
    # `provenance` and `sbom` (see `compute_attest`).
    attest: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildPlan:
    images: tuple[ImageBuild, ...]  # dependency order
    waves: tuple[tuple[str, ...], ...]
    unchanged: tuple[str, ...]  # images of the repo not in the plan
    removed: tuple[str, ...]
    push: bool
    push_by_digest: bool = False

    def get(self, name: str) -> ImageBuild:
        for image in self.images:
            if image.name == name:
                return image
        raise KeyError(name)


_SECRET_RE = re.compile(r"^id=[A-Za-z0-9_.-]+,(env=[A-Za-z_][A-Za-z0-9_]*|src=[^,]+)$")


def parse_secret(text: str) -> str:
    """Validate a `--secret` spec; the value itself never passes through builder."""
    spec = text.strip()
    if not _SECRET_RE.fullmatch(spec):
        raise ConfigError(
            f"invalid --secret {text!r}",
            hint="use id=NAME,env=VARIABLE or id=NAME,src=PATH",
        )
    return spec


def sanitize_tag(text: str) -> str:
    """A branch name as a Docker tag: `feature/ETL-12` -> `feature-etl-12`."""
    tag = re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).lstrip(".-")[:128].rstrip("-")
    return tag if tag and TAG_RE.fullmatch(tag) else ""


def is_reserved_tag(tag: str) -> bool:
    """A tag builder gives a meaning to: `latest`, `git-<sha7>`, `key-<hex>`, versions..."""
    return bool(_RESERVED_TAG_RE.fullmatch(tag))


def compute_tags(revision: Revision) -> tuple[str, ...]:
    """Immutable `git-<sha>` first, then the moving tags this revision earns."""
    short = f"git-{revision.sha[:7]}"
    if revision.dirty:
        return (f"{short}-dirty",)  # a dirty tree earns no moving tag
    tags = [short]
    if revision.branch:
        branch = sanitize_tag(revision.branch)
        if branch and not _RESERVED_TAG_RE.fullmatch(branch):
            tags.append(branch)
        if revision.branch == revision.default_branch:
            tags.append("latest")
    if revision.version_tag:
        match = _VERSION_RE.fullmatch(revision.version_tag)
        if match:
            major, minor, patch = match.group("major", "minor", "patch")
            tags += [f"{major}.{minor}.{patch}", f"{major}.{minor}", major]
    return tuple(dict.fromkeys(tags))


def compute_attest(settings: Settings) -> tuple[str, ...]:
    """The `attest` entries of a pushed image's bake target. Provenance off is said
    outright: buildx adds mode=min provenance to any build that names none."""
    mode = settings.provenance_mode
    attest = ["type=provenance,disabled=true" if mode == "off" else f"type=provenance,mode={mode}"]
    if settings.sbom_generator:
        attest.append(f"type=sbom,generator={settings.sbom_generator}")
    return tuple(attest)


def _target_names(names: Iterable[str]) -> dict[str, str]:
    targets: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = _TARGET_RE.sub("_", name)
        target, n = base, 1
        while target in used:
            n += 1
            target = f"{base}_{n}"
        used.add(target)
        targets[name] = target
    return targets


def compute_plan(
    graph: ImageGraph,
    affected: Affected,
    *,
    settings: Settings,
    revision: Revision,
    options: Options,
    everything_affected: Affected | None = None,
    keys: Mapping[str, str] | None = None,
    base_digests: Mapping[str, str] | None = None,
    existing: Mapping[str, str] | None = None,
    tested: frozenset[str] = frozenset(),
    untested: frozenset[str] = frozenset(),
) -> BuildPlan:
    """The builds for `affected`, in dependency order.

    `everything_affected` is the change's whole affected set when `affected` was narrowed
    (--only, one fan-out job): parents in it but not in the plan get pinned by digest.
    With content `keys`, every in-repo parent outside the plan is pinned to its
    `key-<hex>` tag instead, and external bases with known `base_digests` are pinned to
    the digest their key was computed from. `existing` images (already pushed under
    their key) are planned as tag-only steps on that digest; those with a test whose
    verdict the registry lacks (not in `tested`) are tested before they are tagged, and
    an image pinned to such a parent (`untested`, left out by --only) is not built.
    Pushing an image with a test, the bake pushes only its key tag: the others are
    `held` until the tests pass (without keys, a `git-<sha7>-<platforms>` staging tag
    stands in for the key's).
    """
    selected = list(affected.images)
    if options.push and not options.push_by_digest and options.platforms:
        _check_narrowing(graph, [i.name for i in selected], options.platforms)
    others = {i.name for i in (everything_affected or affected).images}
    names = {i.name for i in selected}
    reasons = {i.name: i.reasons for i in selected}
    order = [n for n in graph.order if n in names]
    targets = _target_names(order)
    tags = compute_tags(revision)
    by_identity = identity_index(graph.images.values())
    test_hashes = compute_test_hashes(graph, options.platforms)
    gating = options.push and not options.push_by_digest
    builds = []
    for name in order:
        image = graph.images[name]
        parents: dict[str, str] = {}
        pinned: dict[str, str] = {}
        for reference in image.references:
            parent = named_image(reference, by_identity)
            if parent is None or parent == name:
                continue
            if parent in names:
                parents.setdefault(context_key(reference.text), parent)
            elif parent in others or keys is not None:
                pinned.setdefault(context_key(reference.text), parent)
        external_pins = {
            context_key(r.text): f"docker-image://{r.repository}@{(base_digests or {})[r.text]}"
            for r in image.references
            if named_image(r, by_identity) is None
            and r.digest is None  # a pin already names its image exactly
            and r.text in (base_digests or {})
        }
        base = image.base
        base_parent = named_image(base, by_identity) if base else None
        labels = {
            "org.opencontainers.image.title": name,
            "org.opencontainers.image.revision": revision.sha,
        }
        if revision.source:
            labels["org.opencontainers.image.source"] = revision.source
        if revision.created:
            labels["org.opencontainers.image.created"] = revision.created
        if base is not None:
            labels["org.opencontainers.image.base.name"] = base.text
            if base_digests and base.text in base_digests:
                labels[BASE_DIGEST_LABEL] = base_digests[base.text]
        config = image.config
        image_tags = [
            (config.tag or config.affixed(t)) if t == "latest" else config.affixed(t) for t in tags
        ]
        if keys is not None:
            labels[KEY_LABEL] = keys[name]
            image_tags.append(key_tag(keys[name]))
        _wire_declared_parents(image, graph, by_identity, parents, pinned, names, others, keys)
        repository = image.repository
        own_git_tag = config.affixed(tags[0])
        platforms = options.platforms or image.config.platforms
        staging_tag = "-".join([own_git_tag, *(p.replace("/", "-") for p in platforms)])
        test = image.config.test
        test_platforms = test.platforms_for(platforms) if test is not None else ()
        held: list[str] = []
        if test_platforms and gating:
            held = [t for t in image_tags if keys is None or t != key_tag(keys[name])]
            if keys is None:
                image_tags.insert(0, staging_tag)
        verdict = None
        if keys is not None and name in test_hashes and test_platforms:
            verdict = f"{repository}:{verdict_tag(keys[name], test_hashes[name])}"
        builds.append(
            ImageBuild(
                name=name,
                target=targets[name],
                repository=repository,
                context=image.config.context,
                dockerfile=image.config.dockerfile,
                stage=image.config.target,
                platforms=platforms,
                build_args=image.build_args,
                tags=()
                if options.push_by_digest
                else tuple(f"{repository}:{t}" for t in image_tags),
                labels=tuple(sorted(labels.items())),
                parents=tuple(sorted((p, key) for key, p in parents.items())),
                requires=tuple(p for p in image.parents if p in names and p != name),
                pinned_parents=tuple(sorted((p, key) for key, p in pinned.items())),
                staging_tag=staging_tag,
                immutable="" if revision.dirty else f"{repository}:{own_git_tag}",
                cache_tag=config.affixed("buildcache"),
                pinned_references=tuple(
                    (p, f"{graph.images[p].repository}:{_pin_tag(graph.images[p], keys, tags[0])}")
                    for p in sorted(set(pinned.values()))
                ),
                external_pins=tuple(sorted(external_pins.items())),
                key=keys[name] if keys is not None else None,
                existing=(existing or {}).get(name),
                base=base.text if base else None,
                base_parent=base_parent
                if base_parent in names or base_parent in pinned.values()
                else None,
                cache=options.cache and settings.cache,
                epoch=revision.epoch,
                secrets=options.secrets,
                reasons=reasons[name],
                test=test if test_platforms else None,
                test_platforms=test_platforms,
                held=tuple(f"{repository}:{t}" for t in held),
                verdict=verdict,
                tested=name in tested,
                untested_parents=tuple(sorted(p for p in set(pinned.values()) if p in untested)),
                attest=compute_attest(settings),
            )
        )
    return BuildPlan(
        images=tuple(builds),
        waves=graph.generations(order),
        unchanged=tuple(n for n in graph.order if n not in names),
        removed=affected.removed,
        push=options.push or options.push_by_digest,
        push_by_digest=options.push_by_digest,
    )


def _check_narrowing(graph: ImageGraph, names: list[str], platforms: tuple[str, ...]) -> None:
    """Tags name one multi-platform image: pushing fewer platforms under them would take
    the others away from everyone who pulls them."""
    narrowed = [n for n in names if set(graph.images[n].config.platforms) - set(platforms)]
    if narrowed:
        image = graph.images[narrowed[0]]
        missing = sorted(set(image.config.platforms) - set(platforms))
        more = f" (and {len(narrowed) - 1} more)" if len(narrowed) > 1 else ""
        raise ConfigError(
            f"--platform {','.join(platforms)} would push {image.name}{more} without "
            f"{', '.join(missing)}, replacing its multi-platform tags",
            hint="build one platform per runner with --push-by-digest and join them with "
            "builder merge, or use --no-push",
        )


def image_tag(config: ImageConfig, tag: str) -> str:
    """One of the revision's tags as this image carries it: its prefix and suffix, and
    its own `tag` where the default branch would give `latest`."""
    if tag == "latest" and config.tag:
        return config.tag
    return config.affixed(tag)


def _pin_tag(parent: Image, keys: Mapping[str, str] | None, revision_tag: str) -> str:
    return key_tag(keys[parent.name]) if keys is not None else parent.config.affixed(revision_tag)


def _wire_declared_parents(
    image: Image,
    graph: ImageGraph,
    by_identity: Mapping[Identity, str],
    parents: dict[str, str],
    pinned: dict[str, str],
    names: set[str],
    others: set[str],
    keys: Mapping[str, str] | None,
) -> None:
    """A `depends_on` parent builds like a derived one: the child's bake gets a named
    context for it. Its Dockerfile names it in a way builder could not resolve (a build
    arg CI sets, another registry): each such reference whose last path component is the
    parent's gets the context; without one, the parent's own names do."""
    wired = set(parents.values()) | set(pinned.values())
    for parent in image.config.depends_on:
        if parent in wired or parent == image.name or parent not in graph.images:
            continue
        target = parents if parent in names else pinned if (parent in others or keys) else None
        if target is None:
            continue
        own = graph.images[parent]
        last = own.repository.rpartition("/")[2]
        unresolved = [
            r
            for r in image.references
            if r.digest is None
            and named_image(r, by_identity) is None
            and r.repository.rpartition("/")[2] == last
        ]
        names_of_parent = [r.text for r in unresolved] or [
            f"{repository}:{tag}" for repository, tag in own.identities
        ]
        for text in names_of_parent:
            target.setdefault(context_key(text), parent)
