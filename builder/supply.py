"""Provenance, SBOMs and signatures: what a pushing run checks before any push, and what it
reads back, signs and records after each image is pushed.

BuildKit attaches the attestations during the bake (`ImageBuild.attest`, bake.py); whether
the builder can is a fact of its driver (`buildx.Driver.attestations`). `preflight` fails
before any work (exit 2) when the run cannot deliver what builder.yaml asks: a driver that
cannot attest, an SBOM generator that does not exist, cosign missing, no key, a wrong
password. `seal` runs once the images are pushed: it reads each image's attestation
manifests back from the registry, signs its index digest with cosign (a separate step
from the bake, so a failure names the image), and records both for the metadata file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from builder.buildx import Driver
from builder.ci import CIFacts
from builder.context import SigningEnv
from builder.cosign import Cosign, Expected, Signer, key_argument, render_command, signature_tag
from builder.cosign import verify_argv as cosign_verify_argv
from builder.errors import BuilderError, ConfigError, EngineError, SigningError
from builder.model import CONFIG_FILE, Settings
from builder.plan import BuildPlan
from builder.refs import is_loopback
from builder.registry import AttestationManifest, Registry
from builder.reports import Attestation, ImageResult, Signature

PROVENANCE_PREFIX = "https://slsa.dev/provenance/"
SPDX_PREDICATE = "https://spdx.dev/Document"
ACTIONS_OIDC_ISSUER = "https://token.actions.githubusercontent.com"
# Images a run vouches for: what it built, and what it tagged or found under its key.
_SEALED = frozenset({"built", "tagged", "unchanged"})
# BuildKit's words for a generator's bad output, or its failing run.
_SBOM_FAILURE = re.compile(r"in-toto statement|generating sbom", re.IGNORECASE)

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class SupplyChain:
    """What a run attaches, expects back and signs."""

    attestations: bool = True  # the bakes carry the plan's `attest`
    provenance: bool = False  # every pushed platform must carry provenance
    sbom: str | None = None  # ... and an SBOM by this generator
    signer: Signer | None = None  # set by --sign
    expected: Expected | None = None  # who verifies it: for the recorded verify command


def compute_tlog(settings: Settings) -> bool:
    """Transparency log on, unless builder.yaml says otherwise or the registry is on this
    machine (nothing public can vouch for it, and Rekor may be out of reach)."""
    if settings.signing.tlog is not None:
        return settings.signing.tlog
    return not is_loopback(settings.registry)


def compute_expected(settings: Settings, ci: CIFacts) -> Expected | None:
    """Who `builder verify` expects to have signed: builder.yaml's `signing.key` or keyless
    `identity`/`issuer`; in GitHub Actions without either, this repository's workflows.
    None: nobody is configured."""
    signing = settings.signing
    tlog = compute_tlog(settings)
    insecure = is_loopback(settings.registry)
    if signing.key is not None:
        # Repo-relative, as the recorded verify command says it: run from the repo's root.
        return Expected(key=str(signing.key), tlog=tlog, insecure_registry=insecure)
    if signing.identity is not None:
        return Expected(
            identity=signing.identity,
            issuer=signing.issuer,
            tlog=tlog,
            insecure_registry=insecure,
        )
    if ci.system == "github" and ci.source_url:
        return Expected(
            identity=f"^{re.escape(ci.source_url)}/",
            issuer=ACTIONS_OIDC_ISSUER,
            tlog=tlog,
            insecure_registry=insecure,
        )
    return None


def _what_attests(settings: Settings) -> list[str]:
    wanted = []
    if settings.provenance_mode != "off":
        wanted.append(f"provenance ({settings.provenance_mode})")
    if settings.sbom_generator:
        wanted.append("an SBOM")
    return wanted


def preflight(
    settings: Settings,
    plan: BuildPlan,
    *,
    driver: Driver | None,
    registry: Registry,
    cosign: Cosign | None,
    ci: CIFacts,
    root: Path,
    log: Log,
    signing: SigningEnv | None = None,
) -> SupplyChain:
    """Decide what the run attaches and signs; fail (exit 2) before any push when it
    cannot. `cosign` is given for --sign, with the environment's `signing` facts."""
    wanted = _what_attests(settings)
    attestations = True
    if plan.push and wanted and driver is not None and not driver.attestations:
        explicit = settings.provenance is not None or settings.sbom_generator is not None
        why = (
            f"buildx's {driver.name} driver without the containerd image store cannot "
            "attach attestations"
        )
        if explicit:
            key = "sbom" if settings.sbom_generator else "provenance"
            raise EngineError(
                f"{why}, and builder.yaml asks for {' and '.join(wanted)}",
                file=CONFIG_FILE,
                line=settings.line_of(key),
                hint='set {"features": {"containerd-snapshotter": true}} in daemon.json, '
                "build on a docker-container builder, or set provenance: off and sbom: false",
            )
        log(f"warning: {why}: pushing without provenance (set provenance: off to say so)")
        attestations = False
    if plan.push and attestations and settings.sbom_generator:
        _check_generator(settings, registry)
    supply = SupplyChain(
        attestations=attestations,
        provenance=attestations and settings.provenance_mode != "off",
        sbom=settings.sbom_generator if attestations else None,
        expected=compute_expected(settings, ci),
    )
    if cosign is None:
        return supply
    signer = _signer(settings, plan, cosign, signing or SigningEnv(), root=root)
    return replace(supply, signer=signer)


def _check_generator(settings: Settings, registry: Registry) -> None:
    """BuildKit would only find a missing generator once the first image's bake runs."""
    generator = settings.sbom_generator or ""
    line = settings.line_of("sbom")
    try:
        found = registry.head(generator)
    except BuilderError as exc:
        raise ConfigError(
            f"cannot look up the SBOM generator {generator}: {exc.message}",
            file=CONFIG_FILE,
            line=line,
            hint="check the image name and that its registry is reachable",
        ) from None
    if found is None:
        raise ConfigError(
            f"the SBOM generator {generator} does not exist",
            file=CONFIG_FILE,
            line=line,
            hint="name an image that follows BuildKit's SBOM generator protocol "
            "(sbom: {generator: IMAGE}), or set sbom: false",
        )


def _signer(
    settings: Settings, plan: BuildPlan, cosign: Cosign, signing: SigningEnv, *, root: Path
) -> Signer:
    """How --sign signs, once the key opened with its password; SigningError otherwise."""
    if not plan.push:
        raise SigningError("--sign signs what a run pushes", hint="drop --no-push or --sign")
    if plan.push_by_digest:
        raise SigningError(
            "--sign signs the multi-platform index, which --push-by-digest builds do not make",
            hint="pass --sign to builder merge instead",
        )
    cosign.check()
    tlog = compute_tlog(settings)
    insecure = is_loopback(settings.registry)
    key = signing.key
    configured = settings.signing.key
    if key is not None:
        if configured is None:
            raise SigningError(
                "COSIGN_KEY is set but builder.yaml names no public key to verify against",
                file=CONFIG_FILE,
                hint="add `signing: {key: cosign.pub}` (`cosign public-key --key KEY` prints "
                "it); builder verify and the metadata's verify command use it",
            )
        public = cosign.public_key(key)
        line = settings.line_of("signing")
        try:
            declared = (root / configured).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SigningError(
                f"signing.key {configured} cannot be read: {getattr(exc, 'strerror', exc)}",
                file=CONFIG_FILE,
                line=line,
            ) from None
        if _pem(declared) != _pem(public):
            raise SigningError(
                f"COSIGN_KEY is not the private half of signing.key {configured}",
                file=CONFIG_FILE,
                line=line,
                hint="sign with the key builder.yaml names, or name its public key there",
            )
        return Signer(key=key_argument(key), tlog=tlog, insecure_registry=insecure)
    if configured is not None:
        raise SigningError(
            f"builder.yaml signs with the key {configured}, but COSIGN_KEY is not set",
            file=CONFIG_FILE,
            line=settings.line_of("signing"),
            hint="set COSIGN_KEY (the private key's path or text) and COSIGN_PASSWORD",
        )
    if signing.oidc is not None:
        if not tlog:
            raise SigningError(
                "keyless signing needs the transparency log, and signing.tlog is false",
                file=CONFIG_FILE,
                line=settings.line_of("signing"),
            )
        return Signer(key=None, tlog=True, insecure_registry=insecure)
    raise SigningError(
        "--sign needs a key (COSIGN_KEY, with COSIGN_PASSWORD) or an OIDC token for "
        "keyless signing, and the environment has neither",
        hint="in GitHub Actions give the signing job `permissions: id-token: write`",
    )


def _pem(text: str) -> str:
    return "".join(text.split())


def compute_attestations(found: tuple[AttestationManifest, ...]) -> tuple[Attestation, ...]:
    return tuple(
        Attestation(
            platform=manifest.platform,
            manifest=manifest.digest,
            provenance=next(
                (d for kind, d in manifest.statements if kind.startswith(PROVENANCE_PREFIX)),
                None,
            ),
            sboms=tuple(d for kind, d in manifest.statements if kind == SPDX_PREDICATE),
        )
        for manifest in found
    )


def missing_attestations(
    platforms: tuple[str, ...], attestations: tuple[Attestation, ...], supply: SupplyChain
) -> list[str]:
    """What a pushed image lacks of what the run attached: `provenance for linux/arm64`."""
    by_platform = {a.platform: a for a in attestations}
    missing = []
    for platform in platforms:
        held = by_platform.get(platform) or next(
            (a for p, a in by_platform.items() if p.startswith(f"{platform}/")), None
        )
        if supply.provenance and (held is None or held.provenance is None):
            missing.append(f"provenance for {platform}")
        if supply.sbom and (held is None or not held.sboms):
            missing.append(f"an SBOM for {platform}")
    return missing


def explain_failure(result: ImageResult, supply: SupplyChain) -> ImageResult:
    """A bake that failed in the SBOM generator says so: BuildKit's own words ("cannot
    decode in-toto statement") do not name the image that wrote them."""
    if result.status != "failed" or not supply.sbom:
        return result
    if supply.sbom not in result.reason and not _SBOM_FAILURE.search(result.reason):
        return result
    prefix = f"the SBOM generator {supply.sbom} failed: "
    if result.reason.startswith(prefix):
        return result
    return replace(result, reason=prefix + result.reason)


def seal(
    plan: BuildPlan,
    results: Mapping[str, ImageResult],
    supply: SupplyChain,
    *,
    registry: Registry,
    cosign: Cosign | None,
    log: Log,
    jobs: int = 2,
) -> dict[str, ImageResult]:
    """After the pushes: each image's attestations read back and recorded, then its index
    digest signed, `jobs` images at a time (cosign waits on the registry more than it
    computes). An image that lacks what it should carry, or whose signing failed, is
    failed, named, with what happened to it: nothing half-done goes unreported."""
    sealed = dict(results)
    todo = []
    for build in plan.images:
        result = results.get(build.name)
        if result is None:
            continue
        if result.status == "failed":
            sealed[build.name] = explain_failure(result, supply)
        elif result.status in _SEALED and result.digest and plan.push:
            todo.append(result)

    def one(result: ImageResult) -> ImageResult:
        after = _seal_one(result, supply, registry=registry, cosign=cosign, log=log)
        if after.status == "failed":
            log(f"FAILED {result.name}: {after.reason}")
        return after

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for after in pool.map(one, todo):
            sealed[after.name] = after
    return sealed


def _seal_one(
    result: ImageResult,
    supply: SupplyChain,
    *,
    registry: Registry,
    cosign: Cosign | None,
    log: Log,
) -> ImageResult:
    reference = result.pinned or ""
    signing = cosign is not None and supply.signer is not None
    try:
        attestations = compute_attestations(registry.attestations(reference))
    except BuilderError as exc:
        if not signing:
            # Pushed, and its platforms were read back right after: the registry went
            # away since. The image stands; only the record of its attestations is missing.
            log(f"warning: {result.name}: attestations not read back ({exc.message})")
            return result
        return replace(
            result,
            status="failed",
            reason=f"pushed and tagged, but NOT signed: its attestations: {exc.message}",
        )
    result = replace(result, attestations=attestations)
    missing = missing_attestations(result.platforms, attestations, supply)
    if missing and result.status == "built":
        return replace(
            result,
            status="failed",
            reason=f"pushed without {', '.join(missing)}; not signed",
        )
    if missing:  # pushed by an earlier run, before builder.yaml asked for them
        log(f"warning: {result.name} ({reference}) was pushed without {', '.join(missing)}")
    if cosign is None or supply.signer is None:
        return result
    error = cosign.sign(reference, supply.signer)
    if error is not None:
        return replace(
            result,
            status="failed",
            reason=f"pushed and tagged, but NOT signed: {error}",
        )
    where = f"{result.repository}:{signature_tag(result.digest or '')}"
    try:
        digest = registry.head(where)
    except BuilderError:
        digest = None  # signed; the registry did not say under which digest
    expected = supply.expected
    verify = render_command(cosign_verify_argv(reference, expected)) if expected else ""
    log(f"signed {result.name} ({reference})")
    return replace(
        result,
        signature=Signature(
            reference=where,
            digest=digest,
            signer=expected.describe() if expected else "keyless",
            verify=verify,
        ),
    )
