"""What a run found and did, as values the renderers turn into text (pure).

The range compared and the images it affects (`Selection`), what the registry knows of
content keys and test verdicts (`KeyReport`), each image's outcome (`ImageResult`,
`BuildReport`) and its tests' (`TestOutcome` per command, `TestResult` per platform).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from builder.changes import Affected
from builder.repo import Repo

if TYPE_CHECKING:
    from builder.plan import BuildPlan, Revision


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    base: str | None  # a commit or tree id; None when there is no usable base
    head: str | None  # a commit id; None for the working tree
    base_label: str
    head_label: str
    all_reason: str | None = None  # set when every image must count as affected
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The repo at head, the range compared and what it affects."""

    repo: Repo
    range: Range
    affected: Affected
    warnings: tuple[str, ...]
    # Files git ignores that a build from this disk would send, per image (working tree).
    strays: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyReport:
    keys: Mapping[str, str]  # image -> content key
    present: frozenset[str]  # images whose key tag the registry holds
    digests: Mapping[str, str] = field(default_factory=dict)  # those images -> key digest
    base_digests: Mapping[str, str]  # external reference -> digest now
    # External references images are built FROM -> whether their config has ONBUILD
    # triggers (then those images count their whole context).
    base_triggers: Mapping[str, bool] = field(default_factory=dict)
    # Those whose triggers count, found or unknown: their children send their whole context.
    triggered: frozenset[str] = frozenset()
    # Images with a test -> the hash of that test (keys.compute_test_hash): their key only
    # counts as done once the registry holds a passing verdict for it (keys.verdict_tag).
    test_hashes: Mapping[str, str] = field(default_factory=dict)
    tested: frozenset[str] = frozenset()  # present images whose verdict is on their digest
    requests: int = 0
    seconds: float = 0.0

    @property
    def untested(self) -> frozenset[str]:
        """Built under their key, but their tests failed, or never ran for this test."""
        return frozenset(n for n in self.present if n in self.test_hashes) - self.tested


@dataclass(frozen=True, slots=True, kw_only=True)
class Attestation:
    """What the registry holds beside one platform of a pushed image."""

    platform: str
    manifest: str  # the attestation manifest's digest
    provenance: str | None = None  # the SLSA provenance statement's blob digest
    sboms: tuple[str, ...] = ()  # the SPDX statements' blob digests


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """A cosign signature of a pushed image's index, and how to check it."""

    reference: str  # where cosign stored it: `repo:sha256-<hex>.sig`
    digest: str | None  # that signature manifest's digest, when the registry said
    signer: str  # "key cosign.pub", or the keyless identity and issuer
    verify: str  # the exact `cosign verify` command, for admission policies downstream


Status = Literal["built", "tagged", "failed", "skipped", "unchanged", "planned"]
TestVerdict = Literal["passed", "failed", "timed out", "not run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TestOutcome:
    """One test command in one container, as the engine door saw it run."""

    __test__ = False  # pytest: a value, not a test class

    exit_code: int | None  # None: killed at its timeout, or never started
    output: str = ""  # the container's stdout and stderr, interleaved (a tail)
    seconds: float = 0.0
    timed_out: bool = False
    error: str = ""  # why the engine could not run it at all (no such image, pull failed)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.error


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResult:
    """An image's tests on one platform: what a JUnit report makes one test case of."""

    __test__ = False  # pytest: a value, not a test class

    platform: str
    verdict: TestVerdict
    seconds: float = 0.0  # every command's run, pulling the image included
    commands: int = 0  # how many commands ran
    detail: str = ""  # failed: which command and how; not run: why
    output: str = ""  # the failing command's output tail

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageResult:
    name: str
    status: Status
    reason: str
    repository: str = ""
    digest: str | None = None
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    log: str = ""
    attempts: int = 0
    seconds: float = 0.0
    # The image's tests, one per platform tested, in the image's platform order; empty
    # when it has no test, or when this run did not test it (a verdict already held).
    tests: tuple[TestResult, ...] = ()

    @property
    def test_failed(self) -> bool:
        """The image failed because a test did, not its build or push."""
        return self.status == "failed" and any(
            t.verdict in ("failed", "timed out") for t in self.tests
        )

    attestations: tuple[Attestation, ...] = ()  # read back after the push, per platform
    signature: Signature | None = None  # set when the run signed it (--sign)

    @property
    def pinned(self) -> str | None:
        """`repo@sha256:...`: what Airflow and Argo should run."""
        return f"{self.repository}@{self.digest}" if self.digest else None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReport:
    selection: Selection
    plan: BuildPlan
    revision: Revision
    results: dict[str, ImageResult]  # every image of the repo, in build order

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(n for n, r in self.results.items() if r.status == "failed")
