"""Reconcile: ask the registry which content keys exist, so no failed or lost build is
forgotten; the deciding is pure (`compute_reconciled`), the asking is batched here."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from builder.changes import Affected, AffectedImage, Reason, compute_affected
from builder.errors import RegistryError
from builder.git import Git
from builder.graph import ImageGraph
from builder.inputs import built_from, with_base_triggers
from builder.keys import (
    KEY_VERSION,
    compute_keys,
    compute_test_hashes,
    input_paths,
    key_tag,
    verdict_tag,
)
from builder.model import CONFIG_FILE, IMAGE_FILE
from builder.plan import sanitize_tag
from builder.refs import InvalidReference, parse_reference
from builder.registry import Registry
from builder.reports import KeyReport, Selection


def compute_reconciled(
    graph: ImageGraph,
    git_affected: Affected,
    report: KeyReport,
    *,
    use_git: bool = True,
    force: Iterable[str] = (),
) -> Affected:
    """Affected = images whose key the registry lacks (git's reasons kept where git agrees),
    images whose key it holds without a passing verdict for their test (re-tested, not
    rebuilt), plus `force`d images and their dependants. A git-affected image whose exact
    inputs are already pushed is not rebuilt."""
    git_reasons = {i.name: i.reasons for i in git_affected.images} if use_git else {}
    forced = graph.closure(force)
    untested = report.untested
    images = []
    for name in graph.order:
        missing = name not in report.present
        if not missing and name not in forced and name not in untested:
            continue
        reasons = list(git_reasons.get(name, ()))
        if missing:
            tag = key_tag(report.keys[name])
            reasons.append(Reason(kind="key", note=f"the registry has no {tag}"))
        elif name in untested:
            tag = verdict_tag(report.keys[name], report.test_hashes[name])
            reasons.append(Reason(kind="test", note=f"the registry has no {tag}"))
        if name in forced:
            reasons.append(Reason(kind="all", note="--force"))
        images.append(
            AffectedImage(name=name, path=graph.images[name].directory, reasons=tuple(reasons))
        )
    return Affected(images=tuple(images), removed=git_affected.removed)


STATE_MEDIA_TYPE = "application/vnd.builder.state.v1+json"
STATE_REPOSITORY = "builder-state"


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """What the registry holds, as the last successful push on a branch recorded it: the
    digest pushed under each image's content key (`images`), the external bases' digests,
    and every image's key at that push's commit (`revision`, `keys`). Reconcile reads it
    first and asks the registry only about what it does not know; keys at `revision` let
    the next run compute only the keys a change since then can reach. An image with a
    test is recorded only once its tests passed, with that test's hash (`tests`)."""

    images: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (key, digest)
    bases: Mapping[str, str] = field(default_factory=dict)  # reference -> digest
    tests: Mapping[str, str] = field(default_factory=dict)  # name -> test hash that passed
    revision: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict)  # every image's key at `revision`
    key_version: str = KEY_VERSION
    # reference -> whether its config, at the digest `bases` records, has ONBUILD triggers.
    # A base without an entry (a state from before builder read them) is asked again.
    onbuild: Mapping[str, bool] = field(default_factory=dict)

    def to_json(self) -> bytes:
        images: dict[str, dict[str, str]] = {}
        for name, (key, digest) in sorted(self.images.items()):
            images[name] = {"key": key, "digest": digest}
            if name in self.tests:
                images[name]["test"] = self.tests[name]
        data = {
            "version": 2,
            "key_version": self.key_version,
            "revision": self.revision,
            "keys": dict(sorted(self.keys.items())),
            "images": images,
            "bases": dict(sorted(self.bases.items())),
            "onbuild": dict(sorted(self.onbuild.items())),
        }
        return json.dumps(data, separators=(",", ":")).encode()


def parse_state(data: bytes | None) -> State | None:
    """A state artifact's content; None for anything builder did not write."""
    try:
        raw = json.loads(data or b"")
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("version") != 2:
        return None
    images, bases, keys = raw.get("images"), raw.get("bases"), raw.get("keys")
    revision, version = raw.get("revision"), raw.get("key_version")
    if not isinstance(images, dict) or not isinstance(bases, dict) or not isinstance(keys, dict):
        return None
    onbuild = raw.get("onbuild")
    if not isinstance(onbuild, dict):
        onbuild = {}  # written before builder read base configs: every base is asked
    kept = {
        str(n): v
        for n, v in images.items()
        if isinstance(v, dict) and v.get("key") and str(v.get("digest", "")).startswith("sha256:")
    }
    return State(
        images={n: (str(v["key"]), str(v["digest"])) for n, v in kept.items()},
        bases={str(r): str(d) for r, d in bases.items() if str(d).startswith("sha256:")},
        tests={n: str(v["test"]) for n, v in kept.items() if isinstance(v.get("test"), str)},
        revision=revision if isinstance(revision, str) and revision else None,
        keys={str(n): str(k) for n, k in keys.items() if isinstance(k, str) and k},
        key_version=str(version),
        onbuild={str(r): t for r, t in onbuild.items() if isinstance(t, bool)},
    )


def state_tags(branch: str | None, default_branch: str) -> tuple[str, ...]:
    """Where a run reads the state: its branch's, then the default branch's (content keys
    mean the same on every branch)."""
    own = sanitize_tag(branch) if branch else ""
    default = sanitize_tag(default_branch) or "main"
    return tuple(dict.fromkeys(t for t in (own, default) if t))


def state_reference(prefix: str, tag: str) -> str:
    return f"{prefix}/{STATE_REPOSITORY}:{tag}"


def load_state(registry: Registry, prefix: str, tags: Sequence[str]) -> State | None:
    for tag in tags:
        try:
            state = parse_state(registry.read_artifact(state_reference(prefix, tag)))
        except RegistryError:
            return None
        if state is not None:
            return state
    return None


def updated_state(
    previous: State | None,
    report: KeyReport,
    pushed: Mapping[str, str],
    passed: frozenset[str] = frozenset(),
    *,
    revision: str,
    describes_revision: bool = True,
) -> State:
    """The state after a run at `revision`: `pushed` maps images to the digest now under
    their key; every image's key at `revision` is kept, built or not. `passed` names the
    images whose tests passed in this run. An image with a test is recorded only with a
    passing verdict (this run's, or one the registry held); one without keeps no entry,
    so the next run asks the registry about it again.

    Keys computed from files no commit holds (a dirty tree, ignored files sent on
    purpose) are true of what was pushed but not of `revision`: with `describes_revision`
    off no keys are recorded as reusable, and the next run computes them all."""
    images = dict(previous.images) if previous is not None else {}
    tests = dict(previous.tests) if previous is not None else {}
    for name, digest in pushed.items():
        if name not in report.keys:
            continue
        test = report.test_hashes.get(name)
        if test is not None and name not in passed and name not in report.tested:
            images.pop(name, None)
            tests.pop(name, None)
            continue
        images[name] = (report.keys[name], digest)
        if test is None:
            tests.pop(name, None)
        else:
            tests[name] = test
    bases = {**(previous.bases if previous is not None else {}), **report.base_digests}
    onbuild = {
        r: t
        for r, t in (previous.onbuild if previous is not None else {}).items()
        if r not in report.base_digests  # a base this run saw: its verdict is this run's
    }
    onbuild.update(report.base_triggers)
    if not describes_revision:
        return State(images=images, bases=bases, tests=tests, onbuild=onbuild)
    return State(
        images=images,
        bases=bases,
        tests=tests,
        revision=revision,
        keys=dict(report.keys),
        onbuild=onbuild,
    )


def save_state(registry: Registry, prefix: str, tag: str, state: State) -> None:
    registry.write_artifact(state_reference(prefix, tag), state.to_json(), STATE_MEDIA_TYPE)


def fetch_key_report(
    git: Git,
    selection: Selection,
    client: Registry,
    *,
    platforms: tuple[str, ...] | None = None,
    extra_ids: Mapping[str, str] | None = None,
    state: State | None = None,
    fresh_bases: bool = True,
    jobs: int = 16,
    clock: Callable[[], float] = time.monotonic,
) -> KeyReport:
    """Compute every key and find which the registry holds: from `state` where it knows,
    by asking (concurrently) where it does not. External bases are asked for unless
    `fresh_bases` is off and the state recorded them (a push builds on the digests the
    last refresh or push saw; moving them is the nightly refresh's job)."""
    started = clock()
    requests_before = client.requests
    graph = selection.repo.graph
    known = state or State()
    externals = sorted({r for image in graph.images.values() for r in image.external_parents})
    with ThreadPoolExecutor(max_workers=jobs) as pool:

        def digest_of(reference: str) -> tuple[str, str | None]:
            try:
                ref = parse_reference(reference)
            except InvalidReference:
                return reference, None
            if ref.digest:
                return reference, ref.digest
            if not fresh_bases and reference in known.bases:
                return reference, known.bases[reference]
            return reference, client.head(reference)

        base_digests = {r: d for r, d in pool.map(digest_of, externals) if d}

        def triggers_of(reference: str) -> tuple[str, bool | None]:
            """Whether the base's config has ONBUILD triggers, at the digest this run uses;
            None when the registry would not say (counted as triggers, and not recorded)."""
            digest = base_digests[reference]
            if known.bases.get(reference) == digest and reference in known.onbuild:
                return reference, known.onbuild[reference]  # a digest's config never moves
            ref = parse_reference(reference)
            try:
                found = client.triggers(f"{ref.domain}/{ref.path}@{digest}")
            except RegistryError:
                return reference, None  # a rate limit on a pull: never a reason to miss
            return reference, None if found is None else bool(found)

        external = set(externals)
        built_on = sorted(
            {r.text for i in graph.images.values() for r in built_from(i) if r.text in external}
        )
        verdicts = dict(pool.map(triggers_of, [r for r in built_on if r in base_digests]))
        # A base the registry gives no digest for (no such tag, or no digest header): no
        # config can be read at a digest this run knows, so its triggers are unknown.
        verdicts.update((r, None) for r in built_on if r not in base_digests)
        base_triggers = {r: t for r, t in verdicts.items() if t is not None}
        # Their triggers run in the children's builds, in the children's contexts: those
        # images count their whole context, in the keys reused and in those computed.
        triggered = frozenset(r for r, t in verdicts.items() if t is not False)
        graph = with_base_triggers(graph, triggered)
        reused: dict[str, str] = {}
        if not fresh_bases and platforms is None and not extra_ids and state is not None:
            reused = reusable_keys(git, graph, selection.range.head, state, base_digests)
            # A key the state computed without this base's answer (a state from before
            # builder read base configs, or a base it could not read) counted less.
            unsure = {
                r for r in built_on if verdicts[r] is None or known.onbuild.get(r) != verdicts[r]
            }
            reused = {
                n: k
                for n, k in reused.items()
                if not any(r.text in unsure for r in built_from(graph.images[n]))
            }
        keys = compute_keys(
            graph,
            {**_file_ids_for(git, graph, selection.range.head, reused), **(extra_ids or {})},
            base_digests=base_digests,
            platforms=platforms,
            known=reused,
        )

        test_hashes = compute_test_hashes(graph, platforms)

        def present(name: str) -> tuple[str, str | None, bool]:
            """The digest under the image's key, and whether its test passed on it."""
            repository = graph.images[name].repository
            recorded = known.images.get(name)
            if recorded is not None and recorded[0] == keys[name]:
                digest: str | None = recorded[1]
            else:
                recorded = None
                digest = client.head(f"{repository}:{key_tag(keys[name])}")
            test = test_hashes.get(name)
            if not digest or test is None:
                return name, digest, False
            if recorded is not None and known.tests.get(name) == test:
                return name, digest, True
            verdict = client.head(f"{repository}:{verdict_tag(keys[name], test)}")
            return name, digest, verdict == digest

        answers = list(pool.map(present, graph.order))
    found = {n: d for n, d, _ in answers if d is not None}
    return KeyReport(
        keys=keys,
        present=frozenset(found),
        # A registry that sends no digest header leaves the key known but not taggable.
        digests={n: d for n, d in found.items() if d},
        base_digests=base_digests,
        base_triggers=base_triggers,
        triggered=triggered,
        test_hashes=test_hashes,
        tested=frozenset(n for n, _, tested in answers if tested),
        requests=client.requests - requests_before,
        seconds=clock() - started,
    )


def reusable_keys(
    git: Git,
    graph: ImageGraph,
    head: str | None,
    state: State,
    base_digests: Mapping[str, str],
) -> dict[str, str]:
    """The keys of `state.revision` that still hold at `head`: an image git's diff between
    the two cannot reach keeps its key (content keys move exactly when git says a build's
    input changed; tests/test_key_rule.py holds that rule). Nothing is reused when the
    change redefines images (builder.yaml, an image.yaml, a Dockerfile gone), when the key
    format or an external base's digest changed, or when the state's commit is not here."""
    if head is None or state.revision is None or state.key_version != KEY_VERSION:
        return {}
    if any(state.bases.get(r) != d for r, d in base_digests.items()) or not state.keys:
        return {}
    if not git.has_commit(state.revision):
        return {}
    changes = git.changed_paths(state.revision, head)
    if any(_redefines(c.status, c.path) for c in changes):
        return {}
    affected = set(compute_affected(graph, [c.path for c in changes]).names)
    return {n: k for n, k in state.keys.items() if n in graph.images and n not in affected}


def _redefines(status: str, path: str) -> bool:
    name = path.rpartition("/")[2]
    return (
        path == str(CONFIG_FILE) or name == IMAGE_FILE or (status == "D" and name == "Dockerfile")
    )


def _file_ids_for(
    git: Git, graph: ImageGraph, head: str | None, known: Mapping[str, str]
) -> dict[str, str]:
    """What the keys still to compute read: the whole tree, or, when most keys are known,
    just the inputs of the others (a repo-wide listing is most of a big repo's cost)."""
    if head is None or not known:
        return git.file_ids(head)
    wanted: list[str] = []
    for name, image in graph.images.items():
        if name in known:
            continue
        paths = input_paths(image)
        if paths is None:
            return git.file_ids(head)
        wanted.extend(paths)
    return git.file_ids(head, list(dict.fromkeys(wanted))) if wanted else {}


def reconcile(
    git: Git,
    selection: Selection,
    registry: Registry,
    *,
    platforms: tuple[str, ...] | None = None,
    use_git: bool = True,
    force: Iterable[str] = (),
    extra_ids: Mapping[str, str] | None = None,
    state: State | None = None,
    fresh_bases: bool = True,
) -> tuple[Selection, KeyReport | None]:
    """The selection with reconciled affected images; unchanged (and a loud warning) when
    the registry cannot be asked."""
    try:
        report = fetch_key_report(
            git,
            selection,
            registry,
            platforms=platforms,
            extra_ids=extra_ids,
            state=state,
            fresh_bases=fresh_bases,
        )
    except RegistryError as exc:
        warning = f"reconcile skipped, falling back to the git diff: {exc.message}"
        return replace(selection, warnings=(*selection.warnings, warning)), None
    # The graph as the keys read it: an image on a base with triggers counts its whole
    # context, and --explain says so, naming the FROM.
    graph = with_base_triggers(selection.repo.graph, report.triggered)
    affected = compute_reconciled(graph, selection.affected, report, use_git=use_git, force=force)
    repo = selection.repo if graph is selection.repo.graph else replace(selection.repo, graph=graph)
    return replace(selection, repo=repo, affected=affected), report
