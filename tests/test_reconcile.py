"""Reconcile: the registry's content keys decide what to rebuild; asking it is batched."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import cast

import pytest

from builder.changes import Affected, Reason, compute_affected
from builder.errors import RegistryError
from builder.git import Change, Git
from builder.inputs import with_base_triggers
from builder.keys import compute_keys, key_tag
from builder.reconcile import (
    State,
    compute_reconciled,
    fetch_key_report,
    parse_state,
    reconcile,
    state_tags,
    updated_state,
)
from builder.refs import parse_reference
from builder.registry import Registry
from builder.reports import KeyReport, Range, Selection
from tests.conftest import load_files

HEAD = "f" * 40
D_PY = "sha256:" + "1" * 64
D_ALPINE = "sha256:" + "2" * 64
D_BUSYBOX = "sha256:" + "3" * 64
D_IMAGE = "sha256:" + "9" * 64

TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": "FROM acme/base\nCOPY . /app\n",
    "images/api/app.py": "\n",
    "images/worker/Dockerfile": f"FROM acme/api\nCOPY --from=busybox@{D_BUSYBOX} /bin/sh /sh\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
    "images/cli/image.yaml": "depends_on: [base]\n",
}
KEYS = {"base": "a" * 64, "api": "b" * 64, "worker": "c" * 64, "cli": "d" * 64}
REPO = load_files(TREE)
GRAPH = REPO.graph


def report(*present: str) -> KeyReport:
    return KeyReport(keys=KEYS, present=frozenset(present), base_digests={})


def git_affected(*paths: str, removed: tuple[str, ...] = ()) -> Affected:
    affected = compute_affected(GRAPH, paths)
    return Affected(images=affected.images, removed=removed)


def key_reason(name: str) -> Reason:
    return Reason(kind="key", note=f"the registry has no {key_tag(KEYS[name])}")


FORCE = Reason(kind="all", note="--force")
APP = Reason(kind="context", path="images/api/app.py", source="images/api/Dockerfile:2 COPY . /app")


def reconciled(result: Affected) -> dict[str, tuple[Reason, ...]]:
    return {i.name: i.reasons for i in result.images}


# -- compute_reconciled ----------------------------------------------------------------------


def test_everything_present_means_nothing_to_build_whatever_git_says() -> None:
    result = compute_reconciled(GRAPH, git_affected("images/api/app.py"), report(*KEYS))
    assert result.images == ()


def test_a_missing_key_is_affected_even_when_git_saw_no_change() -> None:
    result = compute_reconciled(GRAPH, git_affected(), report("base", "api", "worker"))
    assert reconciled(result) == {"cli": (key_reason("cli"),)}
    assert [i.path.as_posix() for i in result.images] == ["images/cli"]


def test_git_reasons_are_kept_where_the_key_is_missing() -> None:
    result = compute_reconciled(
        GRAPH, git_affected("images/api/app.py"), report("base", "worker", "cli")
    )
    # worker is git-affected too, but its exact inputs are already pushed.
    assert reconciled(result) == {"api": (APP, key_reason("api"))}
    assert key_reason("api").render() == (
        "content key not built: the registry has no key-bbbbbbbbbbbbbbbb"
    )


def test_without_git_only_keys_speak() -> None:
    result = compute_reconciled(
        GRAPH, git_affected("images/api/app.py"), report("base", "cli"), use_git=False
    )
    assert reconciled(result) == {"api": (key_reason("api"),), "worker": (key_reason("worker"),)}


def test_force_takes_the_closure_in_build_order() -> None:
    result = compute_reconciled(
        GRAPH, git_affected("images/api/app.py"), report("base", "api", "cli"), force=["base"]
    )
    assert [i.name for i in result.images] == ["base", "api", "cli", "worker"]
    assert reconciled(result) == {
        "base": (FORCE,),
        "api": (APP, FORCE),
        "cli": (FORCE,),  # depends_on counts as a dependant
        "worker": (Reason(kind="parent", parent="api"), key_reason("worker"), FORCE),
    }


def test_force_of_unknown_names_is_ignored() -> None:
    result = compute_reconciled(GRAPH, git_affected(), report(*KEYS), force=["nope"])
    assert result.images == ()


def test_removed_images_are_carried_over() -> None:
    result = compute_reconciled(GRAPH, git_affected(removed=("old",)), report(*KEYS))
    assert (result.images, result.removed) == ((), ("old",))


# -- fetch_key_report ------------------------------------------------------------------------


class FakeGit:
    def __init__(self, ids: Mapping[str, str]) -> None:
        self.ids = dict(ids)
        self.asked: list[str | None] = []

    def file_ids(self, sha: str | None, paths: list[str] | None = None) -> dict[str, str]:
        self.asked.append(sha)
        return {p: i for p, i in self.ids.items() if paths is None or p in paths}

    def has_commit(self, sha: str) -> bool:  # noqa: ARG002 - every commit is here
        return True

    def changed_paths(self, base: str, head: str) -> list[Change]:  # noqa: ARG002
        return []  # the state's commit is this one: nothing changed since


class FakeRegistry:
    """head answers from a table; requests are counted like Registry does."""

    def __init__(
        self,
        table: Mapping[tuple[str, str, str], str],
        fail: str = "",
        triggers: Mapping[str, tuple[str, ...] | Exception | None] | None = None,
    ) -> None:
        self.table = dict(table)
        self.fail = fail
        self.asked: list[tuple[str, str, str]] = []
        self.configs = dict(triggers or {})  # repository@digest -> ONBUILD triggers
        self.asked_configs: list[str] = []
        self.requests = 0
        self._lock = threading.Lock()

    def triggers(self, text: str) -> tuple[str, ...] | None:
        with self._lock:
            self.requests += 1  # the real client reads an index, a manifest and a config
            self.asked_configs.append(text)
        found = self.configs.get(text, ())
        if isinstance(found, Exception):
            raise found
        return found

    def head(self, text: str) -> str | None:
        ref = parse_reference(text)
        domain, path, reference = ref.domain, ref.path, ref.digest or ref.tag or "latest"
        with self._lock:
            self.requests += 1
            self.asked.append((domain, path, reference))
        if self.fail and self.fail in path:
            raise RegistryError(f"cannot reach registry {domain}: connection refused")
        return self.table.get((domain, path, reference))


def file_ids() -> dict[str, str]:
    return {p: hashlib.sha1(t.encode(), usedforsecurity=False).hexdigest() for p, t in TREE.items()}


def selection() -> Selection:
    rng = Range(base="e" * 40, head=HEAD, base_label="HEAD~1", head_label="HEAD")
    return Selection(repo=REPO, range=rng, affected=Affected(images=()), warnings=())


def clock() -> Iterator[float]:
    yield 100.0
    yield 102.5


def fetch(
    git: FakeGit, registry: FakeRegistry, platforms: tuple[str, ...] | None = None
) -> KeyReport:
    ticks = clock()
    return fetch_key_report(
        cast(Git, git),
        selection(),
        cast(Registry, registry),
        platforms=platforms,
        jobs=4,
        clock=lambda: next(ticks),
    )


def expected_keys(
    base_digests: Mapping[str, str],
    platforms: tuple[str, ...] | None = None,
    *,
    unknown: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """The keys reconcile should compute; `unknown`: bases the registry gave no digest for,
    whose triggers, unknown, count as there."""
    graph = with_base_triggers(GRAPH, unknown)
    return compute_keys(graph, file_ids(), base_digests=base_digests, platforms=platforms)


def test_report_asks_each_base_once_and_each_key_tag_once() -> None:
    digests = {"python:3.12-slim": D_PY, "alpine:3.20": D_ALPINE, f"busybox@{D_BUSYBOX}": D_BUSYBOX}
    keys = expected_keys(digests)
    table = {
        ("docker.io", "library/python", "3.12-slim"): D_PY,
        ("docker.io", "library/alpine", "3.20"): D_ALPINE,
        ("docker.io", "acme/base", key_tag(keys["base"])): D_IMAGE,
        ("docker.io", "acme/api", key_tag(keys["api"])): D_IMAGE,
    }
    git, registry = FakeGit(file_ids()), FakeRegistry(table)
    result = fetch(git, registry)
    assert git.asked == [HEAD]
    assert result.base_digests == digests  # a pinned digest costs no request
    assert dict(result.keys) == keys
    assert result.present == frozenset({"base", "api"})
    assert sorted(registry.asked) == sorted(
        [
            ("docker.io", "library/alpine", "3.20"),
            ("docker.io", "library/python", "3.12-slim"),
            *(("docker.io", f"acme/{n}", key_tag(keys[n])) for n in KEYS),
        ]
    )
    # Each base an image is built FROM is read once more, for its ONBUILD triggers, at the
    # digest just asked (busybox is only COPY'd from: no trigger of it runs).
    assert sorted(registry.asked_configs) == [
        f"docker.io/library/alpine@{D_ALPINE}",
        f"docker.io/library/python@{D_PY}",
    ]
    assert result.base_triggers == {"python:3.12-slim": False, "alpine:3.20": False}
    assert result.requests == 8
    assert result.seconds == 2.5


def test_unknown_bases_stay_out_of_the_digests() -> None:
    registry = FakeRegistry({("docker.io", "library/python", "3.12-slim"): D_PY})
    result = fetch(FakeGit(file_ids()), registry)
    assert result.base_digests == {"python:3.12-slim": D_PY, f"busybox@{D_BUSYBOX}": D_BUSYBOX}
    assert result.present == frozenset()
    unknown = frozenset({"alpine:3.20"})
    assert dict(result.keys) == expected_keys(result.base_digests, unknown=unknown)
    assert result.keys["cli"] != expected_keys(result.base_digests)["cli"]


def test_platforms_reach_the_keys() -> None:
    result = fetch(FakeGit(file_ids()), FakeRegistry({}), platforms=("linux/amd64",))
    unknown = frozenset({"python:3.12-slim", "alpine:3.20"})
    assert dict(result.keys) == expected_keys(
        result.base_digests, ("linux/amd64",), unknown=unknown
    )
    assert dict(result.keys) != expected_keys(result.base_digests, unknown=unknown)


def test_registry_errors_propagate() -> None:
    with pytest.raises(RegistryError, match="connection refused"):
        fetch(FakeGit(file_ids()), FakeRegistry({}, fail="acme/"))


# -- the state artifact: what the last push recorded, asked for first ---------------------


def test_the_state_round_trips_and_refuses_what_builder_did_not_write() -> None:
    state = State(
        images={"api": ("b" * 64, D_IMAGE)},
        bases={"python:3.12-slim": D_PY},
        revision=HEAD,
        keys=KEYS,
    )
    assert parse_state(state.to_json()) == state
    version_one = b'{"version": 1, "images": {}, "bases": {}}'
    for garbage in (b"", b"{}", b"[]", version_one, None):
        assert parse_state(garbage) is None
    # Entries without a digest are dropped, not trusted.
    odd = (
        b'{"version": 2, "key_version": "v", "revision": null, "keys": {}, "bases": {},'
        b' "images": {"x": {"key": "k", "digest": "latest"}}}'
    )
    assert parse_state(odd) == State(key_version="v")


def test_a_recorded_key_costs_no_request_and_a_changed_one_is_asked() -> None:
    digests = {"python:3.12-slim": D_PY, "alpine:3.20": D_ALPINE, f"busybox@{D_BUSYBOX}": D_BUSYBOX}
    keys = expected_keys(digests)
    state = State(
        images={n: (keys[n], D_IMAGE) for n in ("base", "api", "cli")}
        | {"worker": ("0" * 64, D_IMAGE)},  # an older key: the worker changed since
        bases={"python:3.12-slim": D_PY, "alpine:3.20": D_ALPINE},
        onbuild={"python:3.12-slim": False, "alpine:3.20": False},
    )
    table = {("docker.io", "acme/worker", key_tag(keys["worker"])): D_IMAGE}
    git, registry = FakeGit(file_ids()), FakeRegistry(table)
    result = fetch_key_report(
        cast(Git, git), selection(), cast(Registry, registry), state=state, fresh_bases=False
    )
    assert registry.asked == [("docker.io", "acme/worker", key_tag(keys["worker"]))]
    assert result.requests == 1
    assert result.present == frozenset(KEYS)
    assert dict(result.base_digests) == digests


def test_refresh_asks_every_base_whatever_the_state_says() -> None:
    moved = "sha256:" + "7" * 64
    state = State(bases={"python:3.12-slim": D_PY, "alpine:3.20": D_ALPINE})
    table = {
        ("docker.io", "library/python", "3.12-slim"): moved,
        ("docker.io", "library/alpine", "3.20"): D_ALPINE,
    }
    registry = FakeRegistry(table)
    result = fetch_key_report(
        cast(Git, FakeGit(file_ids())),
        selection(),
        cast(Registry, registry),
        state=state,
        fresh_bases=True,
    )
    assert result.base_digests["python:3.12-slim"] == moved


def test_the_updated_state_keeps_what_it_knew_and_learns_the_run() -> None:
    before = State(images={"cli": ("d" * 64, D_ALPINE)}, bases={"alpine:3.20": D_ALPINE})
    keys = KeyReport(keys=KEYS, present=frozenset(), base_digests={"python:3.12-slim": D_PY})
    after = updated_state(before, keys, {"base": D_IMAGE}, revision=HEAD)
    assert after.images == {"cli": ("d" * 64, D_ALPINE), "base": (KEYS["base"], D_IMAGE)}
    assert after.bases == {"alpine:3.20": D_ALPINE, "python:3.12-slim": D_PY}
    # Every image's key at the commit, built or not: the next run reuses what still holds.
    assert (after.revision, dict(after.keys)) == (HEAD, KEYS)


def test_keys_of_files_no_commit_holds_are_not_reusable_at_that_commit() -> None:
    """A dirty push, or one that sent ignored files, pushed under keys that count those
    files: the state keeps the digests under them, but must not offer them as the
    commit's keys, or the next clean run at that commit would re-tag the odd image."""
    before = State(images={}, bases={}, revision="a" * 40, keys={"base": "e" * 64})
    keys = KeyReport(keys=KEYS, present=frozenset(), base_digests={"python:3.12-slim": D_PY})
    after = updated_state(before, keys, {"base": D_IMAGE}, revision=HEAD, describes_revision=False)
    assert after.images == {"base": (KEYS["base"], D_IMAGE)}
    assert (after.revision, dict(after.keys)) == (None, {})


@pytest.mark.parametrize(
    ("branch", "expected"),
    [("main", ("main",)), ("feature/ETL-1", ("feature-etl-1", "main")), (None, ("main",))],
)
def test_a_branch_reads_its_own_state_then_the_default_branchs(
    branch: str | None, expected: tuple[str, ...]
) -> None:
    assert state_tags(branch, "main") == expected


# -- ONBUILD triggers in an external base's config -----------------------------------------

D_VENDOR = "sha256:" + "5" * 64
ONBUILD_TREE = {
    "builder.yaml": "namespace: acme\n",
    # The Dockerfile reads nothing from its context; the base's trigger reads all of it.
    "images/app/Dockerfile": "FROM vendor/onbuild:1\nRUN true\n",
    "images/app/data.txt": "one\n",
    "images/plain/Dockerfile": "FROM alpine:3.20\nRUN true\n",
    "images/plain/data.txt": "one\n",
}
VENDOR = {
    ("docker.io", "vendor/onbuild", "1"): D_VENDOR,
    ("docker.io", "library/alpine", "3.20"): D_ALPINE,
}
VENDOR_CONFIG = f"docker.io/vendor/onbuild@{D_VENDOR}"


def onbuild_keys(
    data: str,
    triggers: tuple[str, ...] | Exception | None,
    state: State | None = None,
    table: Mapping[tuple[str, str, str], str] = VENDOR,
) -> tuple[KeyReport, FakeRegistry]:
    tree = {**ONBUILD_TREE, "images/app/data.txt": data, "images/plain/data.txt": data}
    repo = load_files(tree)
    rng = Range(base=None, head=HEAD, base_label="-", head_label="HEAD")
    chosen = Selection(repo=repo, range=rng, affected=Affected(images=()), warnings=())
    registry = FakeRegistry(table, triggers={VENDOR_CONFIG: triggers})
    git = FakeGit(
        {p: hashlib.sha1(t.encode(), usedforsecurity=False).hexdigest() for p, t in tree.items()}
    )
    report = fetch_key_report(
        cast(Git, git), chosen, cast(Registry, registry), state=state, fresh_bases=False
    )
    return report, registry


def test_an_external_bases_onbuild_makes_its_children_count_their_whole_context() -> None:
    """A trigger `COPY . /app` in the base's config copies files the child's Dockerfile
    never names: a change to them must move the child's key, or reconcile re-tags the old
    image (the engine proof is in tests/integration/test_reconcile.py)."""
    trigger = ("COPY . /app",)
    before, registry = onbuild_keys("one\n", trigger)
    after, _ = onbuild_keys("two\n", trigger)
    assert sorted(registry.asked_configs) == sorted(
        [VENDOR_CONFIG, f"docker.io/library/alpine@{D_ALPINE}"]
    )
    assert before.base_triggers == {"vendor/onbuild:1": True, "alpine:3.20": False}
    assert before.keys["app"] != after.keys["app"]
    # A base without triggers leaves precise inputs alone: data.txt is no input of plain.
    assert before.keys["plain"] == after.keys["plain"]
    # Without triggers the same Dockerfile reads nothing from its context either.
    quiet_before, _ = onbuild_keys("one\n", ())
    quiet_after, _ = onbuild_keys("two\n", ())
    assert quiet_before.keys["app"] == quiet_after.keys["app"]


def test_reconcile_hands_on_the_graph_its_keys_read() -> None:
    """--explain shows what the key counted: the whole context, because of the FROM."""
    repo = load_files(ONBUILD_TREE)
    rng = Range(base=None, head=HEAD, base_label="-", head_label="HEAD")
    chosen = Selection(repo=repo, range=rng, affected=Affected(images=()), warnings=())
    registry = FakeRegistry(VENDOR, triggers={VENDOR_CONFIG: ("COPY . /app",)})
    git = FakeGit(
        {
            p: hashlib.sha1(t.encode(), usedforsecurity=False).hexdigest()
            for p, t in ONBUILD_TREE.items()
        }
    )
    reconciled, report = reconcile(cast(Git, git), chosen, cast(Registry, registry))
    assert report is not None
    assert report.triggered == frozenset({"vendor/onbuild:1"})
    images = reconciled.repo.graph.images
    assert images["app"].inputs.describe() == (
        "whole context: images/app/Dockerfile:1 FROM vendor/onbuild:1 (the ONBUILD triggers in "
        "vendor/onbuild:1's config run in this image's context)"
    )
    assert images["plain"].inputs == repo.graph.images["plain"].inputs


def test_the_state_answers_for_a_bases_triggers_at_the_digest_it_recorded() -> None:
    recorded = State(
        bases={"vendor/onbuild:1": D_VENDOR, "alpine:3.20": D_ALPINE},
        onbuild={"vendor/onbuild:1": True, "alpine:3.20": False},
    )
    before, registry = onbuild_keys("one\n", (), state=recorded)  # the registry would say none
    after, _ = onbuild_keys("two\n", (), state=recorded)
    assert registry.asked_configs == []
    assert before.keys["app"] != after.keys["app"]
    # A state written before builder read base configs knows no verdict: each is asked.
    older = State(bases=dict(recorded.bases))
    _, asked = onbuild_keys("one\n", ("COPY . /app",), state=older)
    assert sorted(asked.asked_configs) == sorted(
        [VENDOR_CONFIG, f"docker.io/library/alpine@{D_ALPINE}"]
    )


def test_the_state_records_each_bases_triggers_and_reads_back_without_them() -> None:
    before = State(bases={"old:1": D_PY, "vendor/onbuild:1": D_PY}, onbuild={"old:1": True})
    report = KeyReport(
        keys=KEYS,
        present=frozenset(),
        base_digests={"vendor/onbuild:1": D_VENDOR},
        base_triggers={"vendor/onbuild:1": True},
    )
    after = updated_state(before, report, {}, revision=HEAD)
    assert after.onbuild == {"old:1": True, "vendor/onbuild:1": True}
    assert parse_state(after.to_json()) == after
    written_before = (
        b'{"version": 2, "key_version": "v", "revision": null, "keys": {},'
        b' "bases": {"a:1": "' + D_PY.encode() + b'"}, "images": {}}'
    )
    parsed = parse_state(written_before)
    assert parsed is not None
    assert parsed.onbuild == {}


@pytest.mark.parametrize(
    "answer",
    [None, RegistryError("registry-1.docker.io: 429 Too Many Requests")],
    ids=["unreadable", "refused"],
)
def test_a_base_the_registry_will_not_describe_counts_as_triggered_and_is_not_recorded(
    answer: Exception | None,
) -> None:
    before, _ = onbuild_keys("one\n", answer)
    after, _ = onbuild_keys("two\n", answer)
    assert before.keys["app"] != after.keys["app"]
    assert "vendor/onbuild:1" not in before.base_triggers  # asked again next time
    assert before.base_triggers == {"alpine:3.20": False}


def test_a_key_the_state_computed_without_the_bases_answer_is_not_reused() -> None:
    """A state from before builder read base configs: its keys counted what the Dockerfile
    reads, so the image on a triggered base must get its key computed again, even where
    git says nothing changed since that state's commit."""
    fresh, _ = onbuild_keys("one\n", ("COPY . /app",))
    stale = {"app": "0" * 64, "plain": "1" * 64}
    older = State(
        bases={"vendor/onbuild:1": D_VENDOR, "alpine:3.20": D_ALPINE}, revision=HEAD, keys=stale
    )
    report, _ = onbuild_keys("one\n", ("COPY . /app",), state=older)
    assert report.keys["app"] == fresh.keys["app"] != stale["app"]
    # The same state with the answers recorded: its keys hold, nothing is computed again.
    knowing = replace(older, onbuild={"vendor/onbuild:1": True, "alpine:3.20": False})
    reused, registry = onbuild_keys("one\n", ("COPY . /app",), state=knowing)
    assert dict(reused.keys) == stale
    assert registry.asked_configs == []


@pytest.mark.parametrize("answer", ["", None], ids=["no digest header", "no such tag"])
def test_a_base_the_registry_gives_no_digest_for_counts_as_triggered(answer: str | None) -> None:
    """Without a digest no config is read, so the base's triggers are unknown: its children
    count their whole context rather than miss what a trigger copies."""
    table = {**VENDOR, ("docker.io", "vendor/onbuild", "1"): answer}
    known = {k: v for k, v in table.items() if v is not None}
    keys = {}
    for data in ("one\n", "two\n"):
        report, registry = onbuild_keys(data, ("COPY . /app",), table=known)
        assert VENDOR_CONFIG not in registry.asked_configs
        assert "vendor/onbuild:1" not in report.base_triggers  # nothing to record
        keys[data] = report.keys
    assert keys["one\n"]["app"] != keys["two\n"]["app"]
    assert keys["one\n"]["plain"] == keys["two\n"]["plain"]
