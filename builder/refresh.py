"""`builder refresh`: the nightly job. Upstream base digests go into the content keys, and
exactly the images whose key changed are rebuilt: moved bases and their dependants."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from builder.build import BuildReport, BuildRequest, credentials_for, exclusive, execute, prepare
from builder.buildx import Buildx
from builder.errors import RegistryError
from builder.git import Git
from builder.plan import BASE_DIGEST_LABEL, BuildPlan
from builder.refs import InvalidReference, parse_reference
from builder.registry import RegistryHTTP


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamMove:
    reference: str  # as the Dockerfile names it, e.g. python:3.12-slim
    old: str | None  # the digest the image's current `latest` was built on, when known
    new: str
    image: str


def compute_moves(
    plan: BuildPlan,
    base_digests: Mapping[str, str],
    previous_labels: Mapping[str, Mapping[str, str]],
) -> tuple[UpstreamMove, ...]:
    """For each planned image on an external base: from which digest to which it moves."""
    moves = []
    for build in plan.images:
        if build.base is None or build.base not in base_digests:
            continue
        new = base_digests[build.base]
        old = previous_labels.get(build.name, {}).get(BASE_DIGEST_LABEL)
        if old != new:
            moves.append(UpstreamMove(reference=build.base, old=old, new=new, image=build.name))
    return tuple(moves)


def describe_moves(moves: Sequence[UpstreamMove]) -> list[str]:
    """One line per upstream that moved, naming the images built on it."""
    images: dict[tuple[str, str | None, str], list[str]] = {}
    for move in moves:
        images.setdefault((move.reference, move.old or None, move.new), []).append(move.image)
    lines = []
    for (reference, old, new), names in images.items():
        on = f" (under {', '.join(names)})"
        if old:
            lines.append(f"upstream {reference} moved {old} -> {new}{on}")
        else:
            lines.append(f"upstream {reference} is at {new}; no earlier digest recorded{on}")
    return lines


def fetch_previous_labels(
    plan: BuildPlan, base_digests: Mapping[str, str], client: RegistryHTTP, tag: str
) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {}
    for build in plan.images:
        if build.base is None or build.base not in base_digests:
            continue
        try:
            ref = parse_reference(build.repository)
            labels[build.name] = client.fetch_labels(ref.domain, ref.path, tag)
        except (InvalidReference, RegistryError):
            labels[build.name] = {}
    return labels


def run_refresh(
    git: Git,
    request: BuildRequest,
    *,
    environ: Mapping[str, str],
    log: Callable[[str], None],
    make_buildx: Callable[[Mapping[str, str]], Buildx] = Buildx,
) -> tuple[BuildReport, tuple[UpstreamMove, ...]]:
    with exclusive(git):
        prepared = prepare(git, request, environ=environ, log=log)
        settings = prepared.selection.repo.settings
        digests = prepared.keys.base_digests if prepared.keys else {}
        client = RegistryHTTP(credentials=credentials_for(settings.registry, environ))
        try:
            previous = fetch_previous_labels(prepared.plan, digests, client, "latest")
        finally:
            client.close()
        moves = compute_moves(prepared.plan, digests, previous)
        for line in describe_moves(moves):
            log(line)
        if not prepared.plan.images:
            log("no upstream base moved and every content key is built: nothing to do")
        report = execute(git, prepared, request, environ=environ, log=log, make_buildx=make_buildx)
        return report, moves
