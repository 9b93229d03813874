"""The bake definitions a run executes, as values (pure).

Each image is baked on its own, as soon as its in-plan parents are done. Its definition is
a function of the plan and of what the run resolved by then: the digests its parents were
pushed under, the digests its pinned parents' tags name, the digest its base has. The
executor resolves those and calls `compute_definition`; `--dry-run` calls the same
function with placeholders for what only the run can know, so it prints what would run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.plan import BASE_DIGEST_LABEL, BuildPlan, ImageBuild

Definition = dict[str, Any]  # a bake file: {"target": {name: target}}


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """What one image's bake needs from the world, resolved when it starts."""

    # In-plan parents this run built and pushed: parent -> `docker-image://repo@digest`.
    parents: Mapping[str, str] = field(default_factory=dict)
    # Pinned parents (built by another run) for this image and, when not pushing, for each
    # in-plan ancestor baked alongside it: image -> parent -> `docker-image://...`.
    pins: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The digest the image's base is at, for the base.digest label; "" blanks the label so
    # the parent's own label does not show through; None leaves it as planned.
    base_digest: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outputs:
    """Where results go, as the builder's driver allows."""

    # buildx's docker driver cannot push by digest: push under a per-platform staging tag.
    staging_tags: bool = False
    # Not pushing on the docker driver: name each result in the engine's image store, so
    # people can run it and a dependant's bake finds its in-plan parents' names.
    load: bool = False
    # The builder can attach attestations (not buildx's docker driver on the classic image
    # store): False pushes with provenance disabled and no SBOM.
    attestations: bool = True


def compute_base_digest(
    build: ImageBuild,
    *,
    parent: str | None,
    pin: str | None,
    push: bool,
    now: Callable[[str], str | None],
) -> str | None:
    """The org.opencontainers.image.base.digest label's value: the digest of the in-plan
    parent this run pushed (`parent`), of the pinned parent (`pin`, a `docker-image://`
    context), else, for a FROM by tag, the digest it names `now`. "" blanks the label: the
    parent's own would show through, naming the grandparent. None: as planned."""
    digest = parent or (pin.partition("@")[2] if pin else "") or None
    if digest is None and build.base and BASE_DIGEST_LABEL not in dict(build.labels):
        return (now(build.base) or "") if push else ""
    return digest


def cache_ref(build: ImageBuild) -> str:
    return f"{build.repository}:{build.cache_tag}"


def compute_target(
    build: ImageBuild,
    *,
    root: Path,
    parent_contexts: Mapping[str, str],
    extra_labels: Mapping[str, str] | None = None,
    push: bool,
    by_digest: bool = False,
    attestations: bool = True,
) -> dict[str, Any]:
    """One bake target; `parent_contexts` maps each parent to its context value
    (`target:<t>` inside one bake file, `docker-image://repo@digest` across runs). A push
    carries the image's attestations (`attestations=False`: the builder cannot attach
    them, so provenance is disabled outright)."""
    target: dict[str, Any] = {
        "context": str(root / build.context),
        "dockerfile": str(root / build.dockerfile),
        "platforms": list(build.platforms),
        "tags": list(build.bake_tags),  # a tested image: its key tag, until the tests pass
        "labels": dict(build.labels) | dict(extra_labels or {}),
    }
    if build.build_args:
        target["args"] = dict(build.build_args)
    if build.epoch is not None:
        # BuildKit stamps image configs and history with this instead of the clock, so
        # rebuilding a commit from cache yields the same digests.
        target.setdefault("args", {})["SOURCE_DATE_EPOCH"] = str(build.epoch)
    if build.stage:
        target["target"] = build.stage
    if build.secrets:
        target["secret"] = list(build.secrets)
    contexts = dict(build.external_pins)
    contexts.update(
        (key, parent_contexts[p])
        for p, key in build.parents + build.pinned_parents
        if p in parent_contexts
    )
    if contexts:
        target["contexts"] = contexts
    if build.cache:
        target["cache-from"] = [f"type=registry,ref={cache_ref(build)}"]
        if push:
            target["cache-to"] = [f"type=registry,ref={cache_ref(build)},mode=max"]
    if push and build.attest:
        target["attest"] = list(build.attest) if attestations else ["type=provenance,disabled=true"]
    if by_digest:
        target["output"] = [
            f"type=image,name={build.repository},push-by-digest=true,name-canonical=true,push=true"
        ]
    else:
        target["output"] = ["type=registry"] if push else ["type=cacheonly"]
    return target


def compute_definition(
    build: ImageBuild,
    plan: BuildPlan,
    *,
    root: Path,
    resolved: Resolved,
    outputs: Outputs,
) -> tuple[Definition, list[str]]:
    """The bake file and targets for one image. Pushing: each parent pinned to the digest
    this run pushed. Not pushing: the in-plan ancestors baked alongside as cache-only
    targets linked by `target:`, and the image itself loaded when `outputs.load`."""
    extra: dict[str, str] = {}
    if resolved.base_digest is not None:
        extra[BASE_DIGEST_LABEL] = resolved.base_digest
    own_pins = resolved.pins.get(build.name, {})
    if plan.push:
        staging = plan.push_by_digest and outputs.staging_tags
        target = compute_target(
            build,
            root=root,
            parent_contexts={**resolved.parents, **own_pins},
            extra_labels=extra,
            push=True,
            by_digest=plan.push_by_digest and not staging,
            attestations=outputs.attestations,
        )
        if staging:
            target["tags"] = [f"{build.repository}:{build.staging_tag}"]
        return {"target": {build.target: target}}, [build.target]
    closure = ancestors_in_plan(build, plan)
    targets = {b.name: b.target for b in closure}
    definition = {
        b.target: compute_target(
            b,
            root=root,
            parent_contexts={p: f"target:{targets[p]}" for p, _ in b.parents}
            | dict(resolved.pins.get(b.name, {})),
            extra_labels=extra if b is build else None,
            push=False,
        )
        for b in closure
    }
    if outputs.load:
        definition[build.target]["output"] = ["type=image"]
    return {"target": definition}, [build.target]


def ancestors_in_plan(build: ImageBuild, plan: BuildPlan) -> list[ImageBuild]:
    """The image and every in-plan image it needs, the image first."""
    closure: list[ImageBuild] = []
    stack = [build.name]
    while stack:
        current = plan.get(stack.pop())
        if current not in closure:
            closure.append(current)
            stack.extend(current.requires)
    return closure


def compute_dry_run(plan: BuildPlan, *, root: Path, outputs: Outputs) -> dict[str, Definition]:
    """Each image's definition as the run would compute it, with placeholders where only
    the run knows the value: `<digest of NAME this run pushes>` for in-plan parents, the
    tag a pinned parent is resolved from (`docker-image://repo:key-...`), and what a base
    tag names at build time."""
    pins = {
        b.name: {p: f"docker-image://{ref}" for p, ref in b.pinned_references} for b in plan.images
    }
    definitions: dict[str, Definition] = {}
    for build in plan.images:
        if build.existing is not None and plan.push:
            continue  # already pushed under its key: the run only tags it
        parents = {
            p: f"docker-image://{plan.get(p).repository}@"
            + (plan.get(p).existing or f"<digest of {p} this run pushes>")
            for p in build.requires
        }
        base_parent = build.base_parent
        base_digest = compute_base_digest(
            build,
            parent=parents[base_parent].partition("@")[2]
            if base_parent in parents and plan.push
            else None,
            pin=pins[build.name].get(base_parent or ""),
            push=plan.push,
            now=lambda base: f"<digest {base} names at build time>",
        )
        resolved = Resolved(
            parents=parents if plan.push else {}, pins=pins, base_digest=base_digest
        )
        definitions[build.name], _ = compute_definition(
            build, plan, root=root, resolved=resolved, outputs=outputs
        )
    return definitions
