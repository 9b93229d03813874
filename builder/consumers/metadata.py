"""A build's metadata file -> the pins one `builder pin` run may write (pure).

The consistency rules live here. One file is one commit (its `revision`), so one run
never mixes digests of two builds. A failed image keeps its old pin, and so does every
image built on it (skipped, or built by another runner on a parent that then failed):
pinning those would pair a new child with an old parent. By default a failed image is an
error; `--partial` pins the rest and reports what it held back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from builder.consumers.model import Held, Pins, Target
from builder.errors import UserError
from builder.graph import ImageGraph
from builder.refs import InvalidReference, parse_reference

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_STATUSES = frozenset({"built", "tagged", "failed", "skipped", "unchanged", "planned"})
_PUSHED = frozenset({"built", "tagged", "unchanged"})  # with a digest: in the registry


def parse_metadata(text: str, *, source: str) -> dict[str, Any]:
    """The metadata file's JSON, shaped as `builder build --metadata-file` writes it."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"not a builder metadata file: {exc.msg}", file=source, line=exc.lineno
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise UserError(
            "not a builder metadata file: no 'images' object",
            file=source,
            hint="pass the file `builder build --metadata-file` wrote",
        )
    if not isinstance(data.get("revision"), str) or not data["revision"]:
        raise UserError("not a builder metadata file: no 'revision'", file=source)
    for name, entry in data["images"].items():
        if not isinstance(entry, dict) or entry.get("status") not in _STATUSES:
            raise UserError(
                f"not a builder metadata file: image {name!r} has no known status", file=source
            )
    return data


def compute_pins(
    data: Mapping[str, Any], graph: ImageGraph, *, source: str, partial: bool = False
) -> Pins:
    """Which image gets which digest, which keep their pins and why (rules: module doc)."""
    images: Mapping[str, Mapping[str, Any]] = data["images"]
    unknown = sorted(n for n in images if n not in graph.images)
    if unknown:
        listed = ", ".join(repr(n) for n in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        raise UserError(
            f"names {listed}, not an image of this repository",
            file=source,
            hint="a metadata file from another repository? pin with the one this repo's "
            "build wrote",
        )
    planned = [n for n, e in images.items() if e["status"] == "planned"]
    if planned or data.get("push") is False:
        raise UserError(
            "records a build that pushed nothing (a dry run or --no-push): nothing to pin",
            file=source,
            hint="pin with the metadata file of `builder build --push`",
        )
    failed = {n: e for n, e in images.items() if e["status"] == "failed"}
    if failed and not partial:
        name = sorted(failed)[0]
        more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
        raise UserError(
            f"image {name!r}{more} failed to build; its references would keep old pins "
            "beside new ones",
            file=source,
            hint="rebuild, or pass --partial to pin the rest and keep the failed images' pins",
        )
    repositories, variants = identity_tables(graph)
    targets: dict[str, Target] = {}
    held: list[Held] = []
    for name in graph.order:
        entry = images.get(name)
        if entry is None:
            continue
        status = str(entry["status"])
        reason = str(entry.get("reason") or "")
        if status in ("failed", "skipped"):
            held.append(Held(name=name, status=status, reason=reason))
            continue
        if status not in _PUSHED or entry.get("digest") is None:
            continue  # not affected: no digest here, its pins stay as they are
        target = _target(name, entry, source)
        repositories[parse_reference(target.repository).repository] = name
        failed_parents = sorted(p for p in graph.ancestors(name) if p in failed)
        if failed_parents:
            held.append(
                Held(name=name, status=status, reason=f"built on {failed_parents[0]}, which failed")
            )
            continue
        targets[name] = target
    return Pins(
        revision=str(data["revision"]),
        targets=targets,
        held=tuple(held),
        repositories=repositories,
        variants=variants,
    )


def _target(name: str, entry: Mapping[str, Any], source: str) -> Target:
    digest, repository, pinned = entry.get("digest"), entry.get("repository"), entry.get("pinned")
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise UserError(f"image {name!r} has an invalid digest {digest!r}", file=source)
    if not isinstance(repository, str):
        raise UserError(f"image {name!r} has no repository", file=source)
    try:
        parse_reference(repository)
    except InvalidReference as exc:
        raise UserError(f"image {name!r}: {exc}", file=source) from None
    target = Target(name=name, repository=repository, digest=digest)
    if pinned is not None and pinned != target.pinned:
        raise UserError(
            f"image {name!r}: 'pinned' {pinned!r} is not its repository@digest", file=source
        )
    return target


def identity_tables(
    graph: ImageGraph,
) -> tuple[dict[str, str], dict[str, tuple[tuple[str, str, str, str], ...]]]:
    """repository -> image for repositories one image has; the variants of shared ones."""
    by_repository: dict[str, list[str]] = {}
    for name in graph.order:
        by_repository.setdefault(graph.images[name].repository, []).append(name)
    repositories = {repo: names[0] for repo, names in by_repository.items() if len(names) == 1}
    variants = {
        repo: tuple(
            (
                n,
                graph.images[n].config.identity_tag,
                graph.images[n].config.tag_prefix,
                graph.images[n].config.tag_suffix,
            )
            for n in names
        )
        for repo, names in by_repository.items()
        if len(names) > 1
    }
    return repositories, variants
