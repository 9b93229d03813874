"""Provenance, SBOMs and signatures without an engine (issue 14): builder.yaml's keys, the
bake's attest list, cosign's command lines and environment, the checks before any push,
the read-back after it, provenance checks, and builder's own SBOM generator."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import pytest

from builder import proc
from builder.bake import compute_target
from builder.buildx import Driver
from builder.ci import CIFacts
from builder.commands.verify import check_provenance, find_vcs, targets_from_metadata
from builder.config import parse_settings
from builder.context import compute_signing_env
from builder.cosign import (
    Cosign,
    Expected,
    Signer,
    key_argument,
    sign_argv,
    signature_tag,
    verify_argv,
)
from builder.errors import ConfigError, EngineError, SigningError
from builder.model import DEFAULT_SBOM_GENERATOR, Settings, Signing
from builder.plan import BuildPlan, ImageBuild, compute_attest
from builder.registry import AttestationManifest
from builder.render.data import metadata_json
from builder.reports import Attestation, ImageResult, Signature
from builder.supply import (
    SupplyChain,
    compute_attestations,
    compute_expected,
    missing_attestations,
    preflight,
    seal,
)

ROOT = Path(__file__).resolve().parents[1]
SCANNER = ROOT / "scripts" / "seed-images" / "sbom-scanner" / "scan.py"
DIGEST = "sha256:" + "a" * 64
KEY_TEXT = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nsecretbody\n-----END..."
PUBLIC = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"

# -- builder.yaml ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "provenance", "generator"),
    [
        ("", None, None),
        ("provenance: min\n", "min", None),
        ("provenance: off\n", "off", None),  # YAML's bare off is false
        ("provenance: max\nsbom: true\n", "max", DEFAULT_SBOM_GENERATOR),
        ("sbom: false\n", None, None),
        ("sbom: {}\n", None, DEFAULT_SBOM_GENERATOR),
        ("sbom:\n  generator: localhost:5000/tools/scan\n", None, "localhost:5000/tools/scan"),
    ],
)
def test_attestation_settings(text: str, provenance: str | None, generator: str | None) -> None:
    settings = parse_settings(text)
    assert (settings.provenance, settings.sbom_generator) == (provenance, generator)
    assert settings.provenance_mode == (provenance or "max")


@pytest.mark.parametrize(
    ("text", "signing"),
    [
        ("signing:\n  key: keys/cosign.pub\n", Signing(key=PurePosixPath("keys/cosign.pub"))),
        (
            (
                "signing:\n  identity: ^https://github\\.com/acme/\n  issuer: https://x\n"
                "  tlog: true\n"
            ),
            Signing(identity="^https://github\\.com/acme/", issuer="https://x", tlog=True),
        ),
    ],
)
def test_signing_settings(text: str, signing: Signing) -> None:
    assert parse_settings(text).signing == signing


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("provenance: full\n", "builder.yaml:1: 'provenance' must be max, min or off"),
        ("\nsbom: scanner\n", "builder.yaml:2: 'sbom' must be true, false or a mapping"),
        ("sbom:\n  image: x\n", "builder.yaml:2: unknown key 'image' in 'sbom'"),
        ("sbom:\n  generator: Not/Valid\n", "builder.yaml:2: 'sbom.generator': invalid image"),
        ("signing: cosign.pub\n", "builder.yaml:1: 'signing' must be a mapping"),
        ("signing:\n  keys: a\n", "builder.yaml:2: unknown key 'keys' in 'signing' (did you"),
        ("signing:\n  key: ../k.pub\n", "builder.yaml:2: 'signing.key' '../k.pub' points outside"),
        ("signing:\n  key: a\n  identity: b\n  issuer: c\n", "names both a key and a keyless"),
        ("signing:\n  identity: x\n", "builder.yaml:1: 'signing' needs 'issuer' too"),
        ("signing:\n  identity: '('\n  issuer: x\n", "'signing.identity' is not a regular"),
        ("signing:\n  key: a\n  tlog: no-thanks\n", "builder.yaml:3: 'signing.tlog' must be true"),
        ("signing: {}\n", "'signing' names neither a key nor a keyless identity"),
    ],
)
def test_supply_chain_settings_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text)
    assert message in caught.value.render()


# -- the bake --------------------------------------------------------------------------------


def build(**changes: object) -> ImageBuild:
    values: dict[str, object] = {
        "name": "api",
        "target": "api",
        "repository": "localhost:5000/acme/api",
        "context": PurePosixPath("images/api"),
        "dockerfile": PurePosixPath("images/api/Dockerfile"),
        "stage": None,
        "platforms": ("linux/amd64", "linux/arm64"),
        "build_args": (),
        "tags": ("localhost:5000/acme/api:git-0123456",),
        "labels": (),
        "parents": (),
        "requires": (),
        "base": None,
        "base_parent": None,
        "cache": False,
        "attest": compute_attest(parse_settings("sbom: true\n")),
    }
    values.update(changes)
    return ImageBuild(**values)  # type: ignore[arg-type]


def test_attest_follows_the_settings() -> None:
    assert compute_attest(Settings()) == ("type=provenance,mode=max",)
    assert compute_attest(Settings(provenance="off")) == ("type=provenance,disabled=true",)
    assert compute_attest(Settings(provenance="min", sbom_generator="x/y")) == (
        "type=provenance,mode=min",
        "type=sbom,generator=x/y",
    )


def test_a_push_carries_the_attestations_the_driver_allows() -> None:
    root = Path("/src")
    pushed = compute_target(build(), root=root, parent_contexts={}, push=True)
    assert pushed["attest"] == [
        "type=provenance,mode=max",
        f"type=sbom,generator={DEFAULT_SBOM_GENERATOR}",
    ]
    unable = compute_target(build(), root=root, parent_contexts={}, push=True, attestations=False)
    assert unable["attest"] == ["type=provenance,disabled=true"]
    # Not pushing: nothing to attach them to, and no scan to pay for.
    assert "attest" not in compute_target(build(), root=root, parent_contexts={}, push=False)


@pytest.mark.parametrize(
    ("driver", "can"),
    [
        (Driver(name="docker"), False),
        (Driver(name="docker", containerd_store=True), True),
        (Driver(name="docker-container"), True),
        (Driver(name="kubernetes"), True),
    ],
)
def test_the_driver_decides_whether_attestations_can_be_attached(driver: Driver, can: bool) -> None:
    assert driver.attestations is can


# -- cosign's command lines and environment ---------------------------------------------------


def test_a_key_text_stays_in_the_environment_a_path_is_passed() -> None:
    assert key_argument(KEY_TEXT) == "env://COSIGN_KEY"
    assert key_argument("/keys/cosign.key") == "/keys/cosign.key"
    assert key_argument("awskms:///alias/release") == "awskms:///alias/release"


def test_sign_and_verify_argv() -> None:
    ref = f"127.0.0.1:5000/acme/api@{DIGEST}"
    offline = Signer(key="env://COSIGN_KEY", tlog=False, insecure_registry=True)
    assert sign_argv(ref, offline) == (
        "cosign", "sign", "--yes", "--key", "env://COSIGN_KEY", "--tlog-upload=false",
        "--allow-insecure-registry", ref,
    )  # fmt: skip
    assert sign_argv(ref, Signer(key=None, tlog=True, insecure_registry=False)) == (
        "cosign", "sign", "--yes", "--tlog-upload=true", ref,
    )  # fmt: skip
    keyed = Expected(key="cosign.pub", tlog=False, insecure_registry=True)
    assert verify_argv(ref, keyed) == (
        "cosign", "verify", "--key", "cosign.pub", "--insecure-ignore-tlog",
        "--allow-insecure-registry", ref,
    )  # fmt: skip
    keyless = Expected(identity="^https://github\\.com/acme/", issuer="https://issuer")
    assert verify_argv(ref, keyless) == (
        "cosign", "verify", "--certificate-identity-regexp", "^https://github\\.com/acme/",
        "--certificate-oidc-issuer", "https://issuer", ref,
    )  # fmt: skip
    assert signature_tag(DIGEST) == "sha256-" + "a" * 64 + ".sig"


@dataclass
class FakeRun:
    """Records cosign's invocations; answers from a table by subcommand."""

    answers: Mapping[str, proc.Result] = field(default_factory=dict)
    calls: list[tuple[tuple[str, ...], dict[str, str], bytes | None]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], **kwargs: object) -> proc.Result:
        env = kwargs.get("env")
        stdin = kwargs.get("stdin")
        self.calls.append((tuple(argv), dict(env or {}), stdin))  # type: ignore[call-overload]
        default = proc.Result(argv=tuple(argv), returncode=0, stdout=b"", stderr=b"")
        return self.answers.get(argv[1], default)


def failing(stderr: str, code: int = 1) -> proc.Result:
    return proc.Result(argv=(), returncode=code, stdout=b"", stderr=stderr.encode())


def test_cosign_gets_secrets_in_its_environment_and_never_prompts() -> None:
    run = FakeRun(
        answers={
            "public-key": proc.Result(argv=(), returncode=0, stdout=PUBLIC.encode(), stderr=b"")
        }
    )
    env = compute_signing_env({"COSIGN_KEY": KEY_TEXT, "PATH": "/bin"}).environ
    cosign = Cosign(environ=env, docker_config=Path("/tmp/cfg"), run=run)
    assert cosign.public_key(KEY_TEXT) == PUBLIC.strip()
    argv, child_env, stdin = run.calls[0]
    assert argv == ("cosign", "public-key", "--key", "env://COSIGN_KEY")
    assert child_env["COSIGN_KEY"] == KEY_TEXT
    assert child_env["COSIGN_PASSWORD"] == ""  # set: cosign would prompt otherwise
    assert child_env["DOCKER_CONFIG"] == "/tmp/cfg"
    assert stdin == b""
    assert all("secretbody" not in word for word in argv)


def test_cosign_errors_are_its_own_line_with_secrets_blanked() -> None:
    run = FakeRun(
        answers={
            "public-key": failing("Error: decrypt: encrypted: decryption failed\nerror during"),
            "sign": failing("Error: signing with hunter2 failed\nmore"),
            "version": failing("not found", 127),
        }
    )
    cosign = Cosign(environ={}, run=run, secrets=("hunter2",))
    with pytest.raises(SigningError, match="COSIGN_KEY cannot be used: decrypt: encrypted"):
        cosign.public_key("/k")
    signer = Signer(key="/k", tlog=False, insecure_registry=False)
    assert cosign.sign("r", signer) == "signing with *** failed"
    with pytest.raises(SigningError, match="--sign needs cosign, and it is not installed"):
        cosign.check()


def test_signing_env_finds_oidc_tokens() -> None:
    github = {"ACTIONS_ID_TOKEN_REQUEST_URL": "u", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}
    assert compute_signing_env(github).oidc == "GitHub Actions' OIDC token"
    assert compute_signing_env({"SIGSTORE_ID_TOKEN": "x"}).oidc == "SIGSTORE_ID_TOKEN"
    assert compute_signing_env({"ACTIONS_ID_TOKEN_REQUEST_URL": "u"}).oidc is None
    assert "secret" not in repr(compute_signing_env({"COSIGN_PASSWORD": "secret"}))


def test_who_verify_expects() -> None:
    loopback = Settings(registry="localhost:5000", signing=Signing(key=PurePosixPath("k.pub")))
    assert compute_expected(loopback, CIFacts()) == Expected(
        key="k.pub", tlog=False, insecure_registry=True
    )
    github = CIFacts(system="github", source_url="https://github.com/acme/mono")
    assert compute_expected(Settings(registry="ghcr.io"), github) == Expected(
        identity="^https://github\\.com/acme/mono/",
        issuer="https://token.actions.githubusercontent.com",
        tlog=True,
    )
    assert compute_expected(Settings(), CIFacts()) is None


# -- before any push ----------------------------------------------------------------------------


@dataclass
class FakeRegistry:
    tags: Mapping[str, str] = field(default_factory=dict)
    manifests: tuple[AttestationManifest, ...] = ()

    def head(self, reference: str) -> str | None:
        return self.tags.get(reference)

    def attestations(self, reference: str) -> tuple[AttestationManifest, ...]:
        del reference  # every image holds the same
        return self.manifests


def plan_of(*builds: ImageBuild, push: bool = True, by_digest: bool = False) -> BuildPlan:
    return BuildPlan(
        images=builds, waves=(), unchanged=(), removed=(), push=push, push_by_digest=by_digest
    )


def run_preflight(
    settings: Settings,
    *,
    driver: Driver | None = None,
    registry: FakeRegistry | None = None,
    cosign: Cosign | None = None,
    root: Path = ROOT,
    plan: BuildPlan | None = None,
) -> tuple[SupplyChain, list[str]]:
    lines: list[str] = []
    supply = preflight(
        settings,
        plan or plan_of(build()),
        driver=driver,
        registry=registry or FakeRegistry(),  # type: ignore[arg-type]
        cosign=cosign,
        ci=CIFacts(),
        root=root,
        log=lines.append,
        signing=compute_signing_env(cosign.environ) if cosign else None,
    )
    return supply, lines


def test_a_driver_that_cannot_attest_is_an_error_when_asked_a_warning_by_default() -> None:
    classic = Driver(name="docker")
    asked = parse_settings("\nprovenance: max\n")
    with pytest.raises(EngineError) as caught:
        run_preflight(asked, driver=classic)
    assert caught.value.render().startswith(
        "builder.yaml:2: buildx's docker driver without the containerd image store cannot "
        "attach attestations, and builder.yaml asks for provenance (max)"
    )
    supply, lines = run_preflight(Settings(), driver=classic)
    assert supply.attestations is False
    assert supply.provenance is False
    assert lines == [
        (
            "warning: buildx's docker driver without the containerd image store cannot "
            "attach attestations: pushing without provenance (set provenance: off to say so)"
        )
    ]
    _, lines = run_preflight(Settings(provenance="off"), driver=classic)
    assert lines == []


def test_a_missing_generator_stops_the_run_with_its_line() -> None:
    settings = parse_settings("registry: localhost:5000\nsbom:\n  generator: localhost:5000/x:1\n")
    with pytest.raises(ConfigError) as caught:
        run_preflight(settings)
    assert caught.value.render().startswith(
        "builder.yaml:2: the SBOM generator localhost:5000/x:1 does not exist"
    )
    found = FakeRegistry(tags={"localhost:5000/x:1": DIGEST})
    supply, _ = run_preflight(settings, registry=found)
    assert supply.sbom == "localhost:5000/x:1"


def keyed_repo(tmp_path: Path, public: str = PUBLIC) -> tuple[Settings, Path]:
    (tmp_path / "cosign.pub").write_text(public, encoding="utf-8")
    text = "registry: localhost:5000\nsigning:\n  key: cosign.pub\n"
    return parse_settings(text), tmp_path


def cosign_with(env: Mapping[str, str], public: str = PUBLIC) -> Cosign:
    answer = proc.Result(argv=(), returncode=0, stdout=public.encode(), stderr=b"")
    return Cosign(environ=env, run=FakeRun(answers={"public-key": answer}))


def test_signing_preflight(tmp_path: Path) -> None:
    settings, root = keyed_repo(tmp_path)
    keyed = {"COSIGN_KEY": KEY_TEXT, "COSIGN_PASSWORD": "pw"}
    supply, _ = run_preflight(settings, cosign=cosign_with(keyed), root=root)
    assert supply.signer == Signer(key="env://COSIGN_KEY", tlog=False, insecure_registry=True)
    assert supply.expected == Expected(key="cosign.pub", tlog=False, insecure_registry=True)

    cases: list[tuple[Settings, Mapping[str, str], BuildPlan | None, str]] = [
        (settings, {}, None, "builder.yaml:2: builder.yaml signs with the key cosign.pub, but"),
        (Settings(), {}, None, "--sign needs a key (COSIGN_KEY, with COSIGN_PASSWORD) or an"),
        (Settings(), keyed, None, "builder.yaml: COSIGN_KEY is set but builder.yaml names no"),
        (settings, keyed, plan_of(build(), push=False), "--sign signs what a run pushes"),
        (settings, keyed, plan_of(build(), by_digest=True), "pass --sign to builder merge"),
    ]
    for case_settings, env, plan, message in cases:
        with pytest.raises(SigningError) as caught:
            run_preflight(case_settings, cosign=cosign_with(env), root=root, plan=plan)
        assert message in caught.value.render(), message
    other = cosign_with(keyed, public="-----BEGIN PUBLIC KEY-----\nOTHER\n-----END\n")
    with pytest.raises(SigningError, match=r"COSIGN_KEY is not the private half of signing\.key"):
        run_preflight(settings, cosign=other, root=root)
    oidc = {"ACTIONS_ID_TOKEN_REQUEST_URL": "u", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}
    keyless = Settings(registry="ghcr.io")
    supply, _ = run_preflight(keyless, cosign=cosign_with(oidc))
    assert supply.signer == Signer(key=None, tlog=True, insecure_registry=False)


# -- after the pushes ----------------------------------------------------------------------------


def attested(platform: str, *, provenance: bool = True, sbom: bool = True) -> AttestationManifest:
    statements = []
    if sbom:
        statements.append(("https://spdx.dev/Document", "sha256:" + "5" * 64))
    if provenance:
        statements.append(("https://slsa.dev/provenance/v0.2", "sha256:" + "9" * 64))
    return AttestationManifest(
        platform=platform, digest="sha256:" + "1" * 64, statements=tuple(statements)
    )


def test_missing_attestations_are_named_per_platform() -> None:
    found = compute_attestations((attested("linux/amd64"), attested("linux/arm64/v8", sbom=False)))
    supply = SupplyChain(provenance=True, sbom="gen")
    assert missing_attestations(("linux/amd64", "linux/arm64"), found, supply) == [
        "an SBOM for linux/arm64"
    ]
    assert missing_attestations(("linux/s390x",), found, supply) == [
        "provenance for linux/s390x",
        "an SBOM for linux/s390x",
    ]


def pushed(name: str = "api", status: str = "built") -> ImageResult:
    return ImageResult(
        name=name,
        status=status,  # type: ignore[arg-type]
        reason="changed",
        repository="localhost:5000/acme/api",
        digest=DIGEST,
        platforms=("linux/amd64", "linux/arm64"),
    )


def test_seal_signs_what_carries_its_attestations_and_fails_the_rest() -> None:
    run = FakeRun(answers={"sign": failing("Error: PUT denied")})
    registry = FakeRegistry(manifests=(attested("linux/amd64"), attested("linux/arm64")))
    supply = SupplyChain(
        provenance=True,
        sbom="gen",
        signer=Signer(key="/k", tlog=False, insecure_registry=True),
        expected=Expected(key="cosign.pub", tlog=False, insecure_registry=True),
    )
    lines: list[str] = []
    plan = plan_of(build())
    sealed = seal(
        plan, {"api": pushed()}, supply, registry=registry, cosign=Cosign(environ={}, run=run),  # type: ignore[arg-type]
        log=lines.append,
    )  # fmt: skip
    assert sealed["api"].status == "failed"
    assert sealed["api"].reason == "pushed and tagged, but NOT signed: PUT denied"
    assert lines == ["FAILED api: pushed and tagged, but NOT signed: PUT denied"]

    ok = Cosign(environ={}, run=FakeRun())
    signed = seal(plan, {"api": pushed()}, supply, registry=registry, cosign=ok, log=lines.append)
    result = signed["api"]
    assert result.status == "built"
    assert result.signature is not None
    assert result.signature.verify == (
        "cosign verify --key cosign.pub --insecure-ignore-tlog --allow-insecure-registry "
        f"localhost:5000/acme/api@{DIGEST}"
    )
    assert [a.platform for a in result.attestations] == ["linux/amd64", "linux/arm64"]

    bare = FakeRegistry(manifests=(attested("linux/amd64"), attested("linux/arm64", sbom=False)))
    unsealed = seal(plan, {"api": pushed()}, supply, registry=bare, cosign=ok, log=lines.append)
    assert unsealed["api"].reason == "pushed without an SBOM for linux/arm64; not signed"
    # An image an earlier run pushed, before builder.yaml asked for SBOMs: a warning.
    tagged = seal(
        plan, {"api": pushed(status="tagged")}, supply, registry=bare, cosign=ok, log=lines.append
    )
    assert tagged["api"].status == "tagged"
    assert lines[-2].startswith("warning: api (localhost:5000/acme/api@sha256:")


def test_metadata_records_attestations_and_the_signature() -> None:
    result = replace(
        pushed(),
        attestations=(
            Attestation(platform="linux/amd64", manifest="m", provenance="p", sboms=("s",)),
        ),
        signature=Signature(reference="r:sig", digest="d", signer="key k", verify="v"),
    )
    report_images = metadata_json_for(result)
    assert report_images["attestations"] == {
        "linux/amd64": {"manifest": "m", "provenance": "p", "sbom": ["s"]}
    }
    assert report_images["signature"] == {
        "reference": "r:sig",
        "digest": "d",
        "signer": "key k",
        "verify": "v",
    }


def metadata_json_for(result: ImageResult) -> dict[str, object]:
    from builder.reports import BuildReport

    @dataclass
    class _Range:
        base: str | None = None

    @dataclass
    class _Selection:
        range: _Range = field(default_factory=_Range)

    @dataclass
    class _Revision:
        sha: str = "0" * 40

    report = BuildReport(
        selection=_Selection(),  # type: ignore[arg-type]
        plan=plan_of(build()),
        revision=_Revision(),  # type: ignore[arg-type]
        results={result.name: result},
    )
    images = metadata_json(report)["images"]
    return dict(images[result.name])


# -- builder verify's checks ---------------------------------------------------------------------

SHA = "0123456789abcdef0123456789abcdef01234567"


def provenance(vcs: Mapping[str, str] | None = None, args: Mapping[str, str] | None = None) -> dict:
    predicate: dict[str, object] = {"invocation": {"parameters": {"args": dict(args or {})}}}
    if vcs is not None:
        predicate["metadata"] = {"https://mobyproject.org/buildkit@v1#metadata": {"vcs": vcs}}
    return {"predicateType": "https://slsa.dev/provenance/v0.2", "predicate": predicate}


@pytest.mark.parametrize(
    ("statement", "problems"),
    [
        (provenance({"revision": SHA, "source": "git@github.com:acme/mono.git"}), []),
        (provenance({"revision": SHA, "source": "https://github.com/acme/mono.git"}), []),
        (
            provenance({"revision": "f" * 40, "source": "https://github.com/acme/mono"}),
            [f"the provenance for linux/amd64 names commit {'f' * 40}, not {SHA}"],
        ),
        (
            provenance({"revision": SHA, "source": "https://github.com/evil/mono"}),
            [
                (
                    "the provenance for linux/amd64 names https://github.com/evil/mono, not "
                    "https://github.com/acme/mono"
                )
            ],
        ),
        (
            provenance(None, {"label:org.opencontainers.image.revision": SHA}),
            [
                (
                    "the provenance for linux/amd64 names no repository (buildx records the "
                    "git remote unless BUILDX_GIT_INFO=0)"
                )
            ],
        ),
        (provenance(None), None),  # names neither
    ],
)
def test_provenance_must_name_this_repository_and_commit(
    statement: dict, problems: list[str] | None
) -> None:
    found = check_provenance(
        statement, platform="linux/amd64", commit=SHA, source="https://github.com/acme/mono"
    )
    if problems is None:
        assert found[0] == "the provenance for linux/amd64 names no commit"
    else:
        assert found == problems


def test_find_vcs_looks_anywhere() -> None:
    assert find_vcs({"a": [{"b": {"vcs": {"revision": "x"}}}]}) == {"revision": "x"}
    assert find_vcs({"vcs": "not a mapping"}) is None


def test_targets_from_metadata() -> None:
    data = {
        "images": {
            "a": {"status": "built", "repository": "r/a", "digest": DIGEST, "tags": ["r/a:t"]},
            "b": {"status": "failed", "repository": "r/b", "reason": "boom", "digest": None},
            "c": {"status": "unchanged", "repository": None, "digest": None},
        }
    }
    targets = targets_from_metadata(data)
    assert [(t.name, t.digest, t.tags, t.problem) for t in targets] == [
        ("a", DIGEST, ("r/a:t",), None),
        ("b", None, (), "not pushed (failed: boom)"),
    ]


# -- builder's SBOM generator ----------------------------------------------------------------------


def test_the_generator_follows_buildkits_protocol(tmp_path: Path) -> None:
    source, extras, out = tmp_path / "core" / "sbom", tmp_path / "extras", tmp_path / "out"
    (source / "var/lib/dpkg").mkdir(parents=True)
    (source / "var/lib/dpkg/status").write_text(
        "Package: busybox\nStatus: install ok installed\nArchitecture: arm64\n"
        "Version: 1:1.35.0-4\nMaintainer: Debian <d@example.invalid>\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n",
        encoding="utf-8",
    )
    (source / "bin").mkdir()
    (source / "bin/tool").write_bytes(b"tool")
    (source / "bin/link").symlink_to("tool")
    (source / "usr/bin").mkdir(parents=True)
    (source / "usr/bin/busybox").write_bytes(b"owned")  # dpkg says /bin/busybox: usrmerge
    (source / "var/lib/dpkg/info").mkdir()
    (source / "var/lib/dpkg/info/busybox.list").write_text("/.\n/bin\n/bin/busybox\n")
    (extras / "sbom-stage").mkdir(parents=True)
    (extras / "sbom-stage/build.txt").write_text("x", encoding="utf-8")
    env = {
        **os.environ,
        "BUILDKIT_SCAN_SOURCE": str(source),
        "BUILDKIT_SCAN_SOURCE_EXTRAS": str(extras),
        "BUILDKIT_SCAN_DESTINATION": str(out),
    }
    subprocess.run([sys.executable, str(SCANNER)], env=env, check=True, capture_output=True)
    assert sorted(p.name for p in out.iterdir()) == ["sbom-stage.spdx.json", "sbom.spdx.json"]
    statement = json.loads((out / "sbom.spdx.json").read_text(encoding="utf-8"))
    assert statement["_type"] == "https://in-toto.io/Statement/v0.1"
    assert statement["predicateType"] == "https://spdx.dev/Document"
    document = statement["predicate"]
    for key in ("spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace"):
        assert document[key], key
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["creationInfo"]["creators"] == ["Tool: builder-sbom-scanner-1"]
    packages = {p["name"]: p for p in document["packages"]}
    assert set(packages) == {"sbom", "busybox"}  # the root, and installed packages only
    assert packages["busybox"]["externalRefs"][0]["referenceLocator"] == (
        "pkg:deb/debian/busybox@1:1.35.0-4?arch=arm64"
    )
    files = {f["fileName"]: f for f in document["files"]}
    # Files no package owns; no symlinks.
    assert set(files) == {"./bin/tool", "./var/lib/dpkg/status", "./var/lib/dpkg/info/busybox.list"}
    assert files["./bin/tool"]["checksums"] == [
        {"algorithm": "SHA1", "checksumValue": hashlib.sha1(b"tool").hexdigest()},  # noqa: S324
        {"algorithm": "SHA256", "checksumValue": hashlib.sha256(b"tool").hexdigest()},
    ]
    ids = {p["SPDXID"] for p in document["packages"]} | {f["SPDXID"] for f in document["files"]}
    assert all(r["relatedSpdxElement"] in ids for r in document["relationships"])
    # Without its variables it says so, and writes nothing.
    done = subprocess.run(
        [sys.executable, str(SCANNER)],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2


# -- the registry door reads attestation manifests ------------------------------------------------


@dataclass
class FakeResponse:
    status_code: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> object:
        return self.body

    @property
    def content(self) -> bytes:
        return json.dumps(self.body).encode()


@dataclass
class FakeSession:
    """A registry of manifests and blobs by URL path, as the distribution API serves them."""

    documents: Mapping[str, object]
    asked: list[str] = field(default_factory=list)

    def mount(self, prefix: str, adapter: object) -> None:
        del prefix, adapter

    def close(self) -> None:
        pass

    def request(self, method: str, url: str, **kwargs: object) -> FakeResponse:
        del kwargs
        path = url.split("/v2/", 1)[1]
        self.asked.append(f"{method} {path}")
        if path not in self.documents:
            return FakeResponse(404)
        return FakeResponse(200, self.documents[path])


def test_the_registry_pairs_attestation_manifests_with_their_platforms() -> None:
    from builder.registry import Registry

    amd, arm = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    att_amd, att_arm = "sha256:" + "c" * 64, "sha256:" + "d" * 64
    index = {
        "manifests": [
            {"digest": amd, "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": arm, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            *(
                {
                    "digest": att,
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": described,
                    },
                }
                for att, described in ((att_amd, amd), (att_arm, arm))
            ),
        ]
    }

    def attestation(*kinds: str) -> dict[str, object]:
        return {
            "layers": [
                {"digest": f"sha256:{n}", "annotations": {"in-toto.io/predicate-type": k}}
                for n, k in enumerate(kinds)
            ]
        }

    session = FakeSession(
        {
            f"acme/api/manifests/{DIGEST}": index,
            f"acme/api/manifests/{att_amd}": attestation(
                "https://spdx.dev/Document", "https://slsa.dev/provenance/v0.2"
            ),
            f"acme/api/manifests/{att_arm}": attestation("https://slsa.dev/provenance/v0.2"),
        }
    )
    registry = Registry(session=session)  # type: ignore[arg-type]
    reference = f"localhost:5000/acme/api@{DIGEST}"
    # Attestation manifests are no platforms...
    assert registry.platforms(reference) == ("linux/amd64", "linux/arm64/v8")
    # ...but each is read back for the platform it describes.
    found = compute_attestations(registry.attestations(reference))
    assert [(a.platform, a.manifest, a.provenance, a.sboms) for a in found] == [
        ("linux/amd64", att_amd, "sha256:1", ("sha256:0",)),
        ("linux/arm64/v8", att_arm, "sha256:0", ()),
    ]
    supply = SupplyChain(provenance=True, sbom="gen")
    assert missing_attestations(("linux/amd64", "linux/arm64"), found, supply) == [
        "an SBOM for linux/arm64"
    ]


@dataclass
class GoneRegistry(FakeRegistry):
    def attestations(self, reference: str) -> tuple[AttestationManifest, ...]:
        from builder.errors import RegistryError

        raise RegistryError(f"cannot reach registry for {reference}: connection refused")


def test_a_registry_gone_after_the_push_warns_unless_the_run_signs() -> None:
    lines: list[str] = []
    plan = plan_of(build())
    supply = SupplyChain(provenance=True)
    kept = seal(
        plan, {"api": pushed()}, supply, registry=GoneRegistry(), cosign=None, log=lines.append
    )
    assert kept["api"].status == "built"
    assert lines[0].startswith("warning: api: attestations not read back (cannot reach")
    signer = Signer(key="/k", tlog=False, insecure_registry=True)
    signing = replace(supply, signer=signer)
    ok = Cosign(environ={}, run=FakeRun())
    failed = seal(
        plan, {"api": pushed()}, signing, registry=GoneRegistry(), cosign=ok, log=lines.append
    )
    assert failed["api"].status == "failed"
    assert failed["api"].reason.startswith("pushed and tagged, but NOT signed: its attestations:")
