"""Content keys: a hash of everything an image's build reads, so the registry remembers (pure).

A key covers the Dockerfile and .dockerignore (by git object id), the resolved build args,
platforms and target, the mode and object id of every context entry the build reads (its
COPY/ADD and bind-mount sources, builder.inputs) and the .dockerignore keeps (files,
symbolic links as links, submodules by commit: what BuildKit receives) and of watched
files, the keys of in-repo parents and the digests of external bases when known.
Every push records it as a label and a `key-<16 hex>` tag, so "was this exact input built?"
is one registry lookup, and a failed or lost build is never forgotten.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Mapping, Sequence

from builder.config import compile_watch
from builder.graph import ImageGraph
from builder.ignore import IgnoreMatcher, literal_prefix
from builder.inputs import Inputs
from builder.model import Image, TestSpec

KEY_LABEL = "dev.builder.content-key"
# v2: modes, symlinks and submodules count; v3: only the context files the build reads
KEY_VERSION = "builder-key-v3"


def key_tag(key: str) -> str:
    return f"key-{key[:16]}"


def compute_test_hash(spec: TestSpec, platforms: Sequence[str]) -> str:
    """What a test verdict is about, besides the image: every field of the test and the
    platforms it ran on. A changed test re-tests the image its key names; it never
    rebuilds it (the test is not part of the content key)."""
    parts = [
        "builder-test-v1",
        *(f"run {c}" for c in spec.commands),
        "smoke " + (" ".join(spec.smoke) if spec.smoke is not None else "-"),
        f"timeout {spec.timeout}",
        f"network {spec.network}",
        *(f"env {k}={v}" for k, v in spec.env),
        "platforms " + ",".join(sorted(platforms)),
    ]
    return _sha("\n".join(parts))


def compute_test_hashes(
    graph: ImageGraph, platforms: tuple[str, ...] | None = None
) -> dict[str, str]:
    """Each tested image's test hash, for the platforms a run builds (`platforms`
    overrides every image's, as `--platform` does); images with nothing to test on those
    platforms are left out."""
    hashes = {}
    for name in graph.order:
        config = graph.images[name].config
        if config.test is None:
            continue
        tested = config.test.platforms_for(platforms or config.platforms)
        if tested:
            hashes[name] = compute_test_hash(config.test, tested)
    return hashes


def verdict_tag(key: str, test_hash: str) -> str:
    """The tag builder pushes, beside `key-<16 hex>` and on the same digest, once the
    image's tests passed: reconcile reads it to tell a tested key from one that failed
    or was never tested."""
    return f"tested-{key[:16]}-{test_hash[:8]}"


def compute_keys(
    graph: ImageGraph,
    file_ids: Mapping[str, str],
    *,
    base_digests: Mapping[str, str] | None = None,
    platforms: tuple[str, ...] | None = None,
    known: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every image's content key; `file_ids` maps repo paths to `mode object-id`.

    `known` keys are taken as they are (images no change since they were computed can
    reach, see reconcile); `file_ids` then need only cover the inputs of the others."""
    paths = sorted(file_ids)
    digests = base_digests or {}
    context_hashes: dict[tuple[str, str, tuple[str, ...] | None], str] = {}
    watch_hashes: dict[tuple[str, ...], str] = {}
    keys: dict[str, str] = {}
    for name in graph.order:
        if known is not None and name in known:
            keys[name] = known[name]
            continue
        image = graph.images[name]
        config = image.config
        context = str(config.context)
        inputs = image.inputs
        if platforms and inputs.platform_reads and not set(platforms) <= set(config.platforms):
            # A platform the Dockerfile was not read for may read other paths.
            inputs = Inputs()
        # Images that read the same files of one context share its hash.
        read = None if inputs.whole is not None else (*inputs.patterns, "", *inputs.submodules)
        cache_key = (context, image.ignore_text, read)
        if cache_key not in context_hashes:
            context_hashes[cache_key] = _context_hash(
                paths, file_ids, context, image.ignore_text, inputs
            )
        parts = [
            KEY_VERSION,
            f"dockerfile {config.dockerfile} {_id(file_ids, image, str(config.dockerfile))}",
            f"ignore {image.ignore_file} {_id(file_ids, image, str(image.ignore_file))}",
            f"context {context} {context_hashes[cache_key]}",
            f"target {config.target or '-'}",
            "platforms " + ",".join(sorted(platforms or config.platforms)),
            *(f"arg {k}={v}" for k, v in image.build_args),
            *(f"parent {p} {keys[p]}" for p in image.parents),
            *(f"base {ref} {digests.get(ref, '?')}" for ref in sorted(image.external_parents)),
        ]
        if config.watch:
            if config.watch not in watch_hashes:
                spec = compile_watch(config.watch)
                watched = [
                    f"{p} {file_ids[p]}"
                    for p in _watch_candidates(paths, config.watch)
                    if spec.match_file(p)
                ]
                watch_hashes[config.watch] = _sha("\n".join(watched))
            parts.append(f"watch {watch_hashes[config.watch]}")
        keys[name] = _sha("\n".join(parts))
    return keys


def _id(file_ids: Mapping[str, str], image: Image, path: str) -> str:
    """The object id of what `path` holds, through a link when it is one."""
    return file_ids.get(image.input_path(path), "-")


def _context_hash(
    paths: Sequence[str],
    file_ids: Mapping[str, str],
    context: str,
    ignore_text: str,
    inputs: Inputs,
) -> str:
    if context == ".":
        members = paths
        strip = 0
    else:
        # Sorted paths: everything under `context/` sits between "context/" and "context0".
        members = paths[bisect_left(paths, context + "/") : bisect_left(paths, context + "0")]
        strip = len(context) + 1
    relative = inputs.included([p[strip:] for p in members], ordered=True)
    kept = IgnoreMatcher.from_text(ignore_text).kept(relative)
    prefix = "" if strip == 0 else context + "/"
    return _sha("\n".join(f"{p} {file_ids[prefix + p]}" for p in kept))


def _watch_candidates(paths: Sequence[str], globs: Sequence[str]) -> Sequence[str]:
    """Paths a set of gitignore-style globs can match: an anchored glob (`shared/sql/**`)
    only looks under its literal prefix; one that floats (`*.sql`) needs every path."""
    chosen: set[int] = set()
    for glob in globs:
        body = glob.removeprefix("!").lstrip("/")
        anchored = "/" in glob.rstrip("/") and not body.startswith("*")
        if not anchored:
            return paths
        prefix = literal_prefix(body)
        chosen.update(range(bisect_left(paths, prefix), bisect_left(paths, prefix + "\U0010ffff")))
    return [paths[i] for i in sorted(chosen)]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def input_paths(image: Image) -> tuple[str, ...] | None:
    """Where an image's key inputs live, as paths or directories; None when they can be
    anywhere (a read of a repo-root context that is not under a literal folder, a watch
    glob that floats)."""
    config = image.config
    reads = _read_paths(str(config.context), image.inputs)
    if reads is None:
        return None
    found = [*reads, str(config.dockerfile), *config.ignore_files]
    found.extend(target for _, target in image.links)
    for glob in config.watch:
        directory = _anchored_directory(glob)
        if directory is None:
            return None
        found.append(directory)
    return tuple(dict.fromkeys(p for p in found if p))


def _read_paths(context: str, inputs: Inputs) -> list[str] | None:
    """Repo paths (files or folders) that hold every context file the build reads: each
    read's literal part (a pattern's folder before its first wildcard), or the context.
    With a platform override the key may count the whole context: kept to the context."""
    if inputs.whole is not None or inputs.platform_reads:
        return None if context == "." else [context]
    prefix = "" if context == "." else context + "/"
    found = []
    for pattern in (*inputs.patterns, *inputs.submodules):
        literal = literal_prefix(pattern)
        if any(c in pattern for c in "|^{}") or (literal != pattern and "/" not in literal):
            return None if context == "." else [context]  # anywhere in the context
        found.append(prefix + (literal if literal == pattern else literal.rpartition("/")[0]))
    return found


def _anchored_directory(glob: str) -> str | None:
    """The directory every path an anchored watch glob matches lies in ("" for the root),
    None for a floating glob (`*.sql` matches at any depth)."""
    body = glob.removeprefix("!").lstrip("/")
    if "/" not in glob.rstrip("/") or body.startswith("*"):
        return None
    return literal_prefix(body).rpartition("/")[0]
