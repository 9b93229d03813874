"""`builder verify`: every pushed image is signed by whom builder.yaml expects, its
provenance names this repository and commit, and every platform carries its SBOM.

The images come from a metadata file (`--metadata-file`: the digests and tags a build
pushed, its commit) or, by default, from the registry (`--all`: every image of the repo
at the current commit's `git-<sha7>` tag). The registry is read through the registry
door, the signature checked by cosign; nothing is written anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.ci import CIFacts
from builder.consumers.metadata import parse_metadata
from builder.context import RunContext
from builder.cosign import Cosign, Expected
from builder.errors import BuilderError, SigningError, UserError
from builder.model import CONFIG_FILE, Settings
from builder.pipeline import Log, compute_source, login_for, open_registry
from builder.plan import Revision, compute_tags
from builder.registry import Registry
from builder.repo import Overrides
from builder.supply import SPDX_PREDICATE, compute_attestations, compute_expected
from builder.workspace import load_at

BUILDKIT_METADATA = "https://mobyproject.org/buildkit@v1#metadata"
_REVISION_LABEL = "label:org.opencontainers.image.revision"


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyRequest:
    metadata_file: Path | None = None  # None: every image at the commit's git-<sha7> tag
    overrides: Overrides = field(default_factory=Overrides)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One image to verify, as the metadata file or the registry names it."""

    name: str
    repository: str
    digest: str | None  # None: what `tags[0]` names now
    tags: tuple[str, ...] = ()  # must all still name `digest`
    problem: str | None = None  # known before asking anything (a failed build)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    name: str
    reference: str
    problems: tuple[str, ...]
    checked: tuple[str, ...] = ()  # what held: "signature (key ...)", "provenance", "SBOM"

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    commit: str
    source: str | None
    expected: Expected
    verdicts: tuple[Verdict, ...]

    @property
    def failed(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.ok)


def find_vcs(value: Any) -> Mapping[str, Any] | None:
    """BuildKit's `vcs` facts (buildx's git source and revision) wherever the provenance
    version puts them: under the buildkit metadata in SLSA v0.2, elsewhere in v1."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            vcs = current.get("vcs")
            if isinstance(vcs, dict) and ("revision" in vcs or "source" in vcs):
                return vcs
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return None


def check_provenance(
    statement: Mapping[str, Any], *, platform: str, commit: str, source: str | None
) -> list[str]:
    """What a provenance statement gets wrong about where the image came from (pure)."""
    predicate = statement.get("predicate")
    vcs = find_vcs(predicate) or {}
    revision = vcs.get("revision")
    if not revision and isinstance(predicate, dict):
        # mode=max records build arguments and labels, builder's revision label among them.
        args = ((predicate.get("invocation") or {}).get("parameters") or {}).get("args") or {}
        revision = args.get(_REVISION_LABEL) if isinstance(args, dict) else None
    problems = []
    if not revision:
        problems.append(f"the provenance for {platform} names no commit")
    elif str(revision) != commit:
        problems.append(f"the provenance for {platform} names commit {revision}, not {commit}")
    if source is not None:
        named = vcs.get("source")
        normalised = compute_source(CIFacts(), str(named)) if named else None
        if not named:
            problems.append(
                f"the provenance for {platform} names no repository "
                "(buildx records the git remote unless BUILDX_GIT_INFO=0)"
            )
        elif normalised != source:
            problems.append(f"the provenance for {platform} names {named}, not {source}")
    return problems


def targets_from_metadata(data: Mapping[str, Any]) -> list[Target]:
    targets = []
    for name, entry in data["images"].items():
        repository = str(entry.get("repository") or "")
        digest = entry.get("digest")
        status = entry["status"]
        if status in ("failed", "skipped", "planned"):
            reason = entry.get("reason") or status
            targets.append(
                Target(
                    name=name,
                    repository=repository,
                    digest=None,
                    problem=f"not pushed ({status}: {reason})",
                )
            )
        elif digest:
            tags = tuple(str(t) for t in entry.get("tags") or ())
            targets.append(Target(name=name, repository=repository, digest=digest, tags=tags))
    return targets


def run_verify(
    ctx: RunContext,
    request: VerifyRequest,
    *,
    log: Log,
    make_cosign: Callable[..., Cosign] = Cosign,
) -> VerifyReport:
    git = ctx.git
    repo = load_at(git, None, request.overrides)
    settings = repo.settings
    expected = compute_expected(settings, ctx.ci)
    if expected is None:
        raise SigningError(
            "builder verify needs to know who signs: builder.yaml names no signing key or identity",
            file=CONFIG_FILE,
            hint="add `signing: {key: cosign.pub}`, or `signing: {identity: REGEXP, "
            "issuer: URL}` for keyless signatures",
        )
    if request.metadata_file is not None:
        path = request.metadata_file
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(
                f"cannot read the metadata file: {exc.strerror}", file=str(path)
            ) from None
        data = parse_metadata(text, source=str(path))
        if data.get("push") is False:
            raise UserError(
                "records a build that pushed nothing: nothing to verify",
                file=str(path),
                hint="verify the metadata file of `builder build --push`",
            )
        commit = str(data["revision"])
        targets = targets_from_metadata(data)
    else:
        if ctx.head.commit is None:
            raise UserError("the repository has no commits to verify", hint="commit first")
        commit = ctx.head.commit
        tag = compute_tags(Revision(sha=commit))[0]  # git-<sha7>: what the commit's build tags
        images = repo.graph.images
        targets = [
            Target(
                name=name,
                repository=images[name].repository,
                digest=None,
                tags=(f"{images[name].repository}:{tag}",),
            )
            for name in repo.graph.order
        ]
    if not targets:
        raise UserError("nothing to verify: no image was pushed")
    source = compute_source(ctx.ci, git.remote_url())
    signing = ctx.signing()
    cosign = make_cosign(
        environ=signing.environ, docker_config=ctx.engine.docker_config, cwd=git.root
    )
    cosign.check()
    log(f"verifying {len(targets)} image(s) against {expected.describe()}")
    with open_registry(ctx) as registry:
        registry.use_login(login_for(ctx, settings))
        verdicts = []
        for target in targets:
            verdict = verify_one(
                target,
                commit=commit,
                source=source,
                settings=settings,
                expected=expected,
                registry=registry,
                cosign=cosign,
            )
            verdicts.append(verdict)
    return VerifyReport(commit=commit, source=source, expected=expected, verdicts=tuple(verdicts))


def verify_one(
    target: Target,
    *,
    commit: str,
    source: str | None,
    settings: Settings,
    expected: Expected,
    registry: Registry,
    cosign: Cosign,
) -> Verdict:
    if target.problem is not None:
        return Verdict(name=target.name, reference=target.repository, problems=(target.problem,))
    problems: list[str] = []
    checked: list[str] = []
    try:
        digest = target.digest or registry.head(target.tags[0])
        if digest is None:
            tag = target.tags[0].rpartition(":")[2]
            return Verdict(
                name=target.name,
                reference=target.tags[0],
                problems=(f"no image is tagged {tag}",),
            )
        for tag in target.tags:
            now = registry.head(tag)
            if now != digest:
                problems.append(
                    f"tag {tag.rpartition(':')[2]} names {now or 'nothing'}, not {digest}"
                )
        reference = f"{target.repository}@{digest}"
        error = cosign.verify(reference, expected)
        if error is not None:
            problems.append(f"the signature does not verify for {expected.describe()}: {error}")
        else:
            checked.append(f"signature ({expected.describe()})")
        platforms = registry.platforms(reference)
        attestations = {
            a.platform: a for a in compute_attestations(registry.attestations(reference))
        }
        if settings.provenance_mode != "off":
            before = len(problems)
            for platform in platforms:
                held = attestations.get(platform)
                if held is None or held.provenance is None:
                    problems.append(f"no provenance for {platform}")
                    continue
                statement = _json_blob(registry, reference, held.provenance)
                problems += check_provenance(
                    statement, platform=platform, commit=commit, source=source
                )
            if len(problems) == before:
                checked.append("provenance")
        if settings.sbom_generator:
            before = len(problems)
            for platform in platforms:
                held = attestations.get(platform)
                if held is None or not held.sboms:
                    problems.append(f"no SBOM for {platform}")
                    continue
                statement = _json_blob(registry, reference, held.sboms[0])
                version = (statement.get("predicate") or {}).get("spdxVersion")
                if statement.get("predicateType") != SPDX_PREDICATE or not str(
                    version or ""
                ).startswith("SPDX-"):
                    problems.append(f"the SBOM for {platform} is not an SPDX document")
            if len(problems) == before:
                checked.append("SBOM")
    except BuilderError as exc:
        problems.append(exc.message)
        reference = target.repository
    return Verdict(
        name=target.name, reference=reference, problems=tuple(problems), checked=tuple(checked)
    )


def _json_blob(registry: Registry, reference: str, digest: str) -> dict[str, Any]:
    data = registry.read_blob(reference, digest)
    if data is None:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
