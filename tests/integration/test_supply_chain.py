"""Provenance, SBOMs and signatures on the real engine (issue 14): a signed, attested build
verifies; tampering with it does not; bad signing and generator input stops the run.

The SBOM generator is builder's own (scripts/seed-images/sbom-scanner, seeded by
`scripts/engine seed`), cosign is Debian trixie's (`scripts/engine cosign`); signing is
key-based with the transparency log off, as the loopback registry needs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.integration.conftest import Engine, MakeRepo, Repo
from tests.integration.registry_api import BlobReader
from tests.integration.test_faults import assert_one_line_error, watching_argv

pytestmark = pytest.mark.engine

SCANNER = "tools/sbom-scanner:1"
PLATFORMS = ("linux/amd64", "linux/arm64")
BASE = "ARG BUSYBOX_IMAGE=busybox\nFROM ${BUSYBOX_IMAGE}\nRUN echo base > /base.txt\n"
CHILD = "ARG BUILDER_PREFIX=x\nFROM ${BUILDER_PREFIX}/base\nCOPY app.txt /app.txt\n"
FILES = {
    "images/base/Dockerfile": BASE,
    "images/app/Dockerfile": CHILD,
    "images/app/app.txt": "app\n",
}
REMOTE = "https://example.invalid/acme/monorepo.git"


@pytest.fixture(scope="session")
def cosign(engine: Engine) -> str:
    """cosign on PATH and builder's SBOM generator in the registry; a failure in CI."""
    path = shutil.which("cosign")
    problem = None
    if path is None:
        problem = "cosign is not installed (scripts/engine cosign)"
    elif not engine.api.tags(SCANNER.partition(":")[0]):
        problem = f"{SCANNER} is not seeded (scripts/engine seed --only sbom)"
    if problem is not None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)  # only outside CI
    return str(path)


def key_pair(directory: Path, password: str) -> tuple[str, Path]:
    """A cosign key pair: the private key's text, and the public key's path."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["cosign", "generate-key-pair"],
        cwd=directory,
        env={**os.environ, "COSIGN_PASSWORD": password},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return (directory / "cosign.key").read_text(encoding="utf-8"), directory / "cosign.pub"


def supply_repo(
    make_build_repo: MakeRepo, engine: Engine, public_key: str, extra: str = ""
) -> Repo:
    """The fixture repo, its builder.yaml asking for max provenance, an SBOM by builder's
    own generator and signatures by the key whose public half it commits."""
    repo = make_build_repo(FILES)
    config = (repo.path / "builder.yaml").read_text(encoding="utf-8")
    config += (
        f"provenance: max\nsbom:\n  generator: {engine.registry}/{SCANNER}\n"
        f"signing:\n  key: cosign.pub\n{extra}"
    )
    repo.git("remote", "add", "origin", REMOTE)
    repo.commit({"builder.yaml": config, "cosign.pub": public_key}, "supply chain")
    return repo


def signing_env(key: str, password: str) -> dict[str, str]:
    return {"COSIGN_KEY": key, "COSIGN_PASSWORD": password}


def imagetools_attestations(engine: Engine, reference: str) -> list[str]:
    """The platforms `docker buildx imagetools inspect` shows an attestation manifest for."""
    done = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", "--raw", reference],
        env=dict(engine.env),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    index = json.loads(done.stdout)
    platforms = {
        m["digest"]: f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in index["manifests"]
        if m["platform"]["os"] != "unknown"
    }
    return sorted(
        platforms[m["annotations"]["vnd.docker.reference.digest"]]
        for m in index["manifests"]
        if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest"
    )


def delete_manifest(engine: Engine, repository: str, reference: str) -> None:
    """Remove a manifest from the loopback registry (its storage allows deletes)."""
    api = engine.api
    digest = api.manifest(repository, reference).digest
    request = urllib.request.Request(  # noqa: S310 - loopback http
        f"{api.base}/{repository}/manifests/{digest}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 202


def released(engine: Engine, repo: Repo, names: Mapping[str, str] | tuple[str, ...]) -> dict:
    return {n: engine.api.release_tags(repo.repository(n)) for n in names}


def test_signed_attested_build_verifies_and_tampering_fails(
    make_build_repo: MakeRepo, engine: Engine, cosign: str, tmp_path: Path
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    key, public = key_pair(tmp_path / "keys", password)
    repo = supply_repo(make_build_repo, engine, public.read_text(encoding="utf-8"))
    sha = repo.git("rev-parse", "HEAD")
    meta = tmp_path / "meta.json"
    secret_line = key.splitlines()[2].encode()  # a line of the encrypted key's body

    with watching_argv(password.encode(), secret_line) as watch:
        repo.builder(
            "build",
            "--all",
            "--sign",
            "--metadata-file",
            str(meta),
            env=signing_env(key, password),
            check_exit=0,
        )
    assert watch.scans > 0
    assert not watch.hits, watch.hits  # neither the password nor the key ever in an argv

    images = repo.metadata(meta)
    for name in ("base", "app"):
        entry = images[name]
        reference = str(entry["pinned"])
        # Per platform, an attestation manifest docker's own tools show...
        assert imagetools_attestations(engine, reference) == list(PLATFORMS), name
        # ...recorded with its provenance and SBOM statements.
        attestations = entry["attestations"]
        assert isinstance(attestations, dict)
        assert sorted(attestations) == list(PLATFORMS)
        for platform in PLATFORMS:
            assert attestations[platform]["provenance"], (name, platform)
            assert attestations[platform]["sbom"], (name, platform)
        signature = entry["signature"]
        assert isinstance(signature, dict)
        assert signature["digest"], signature
        # The recorded verify command is exact: it passes as written, from the repo root.
        command = str(signature["verify"])
        assert command.startswith("cosign verify --key cosign.pub "), command
        assert command.endswith(reference)
        subprocess.run(
            shlex.split(command),
            cwd=repo.path,
            env=dict(engine.env),
            capture_output=True,
            check=True,
            timeout=60,
        )

    # The SBOM is builder's generator's SPDX document, listing the files it scanned.
    repository = repo.repository("base")
    sbom_digest = images["base"]["attestations"]["linux/arm64"]["sbom"][0]  # type: ignore[index]
    statement = json.loads(BlobReader(engine.registry).blob(repository, sbom_digest))
    assert statement["predicateType"] == "https://spdx.dev/Document"
    assert statement["predicate"]["spdxVersion"] == "SPDX-2.3"
    assert "./base.txt" in {f["fileName"] for f in statement["predicate"]["files"]}

    verified = repo.builder("verify", "--metadata-file", str(meta), check_exit=0)
    assert "ok      base: signature (key cosign.pub), provenance, SBOM" in verified.stdout
    repo.builder("verify", check_exit=0)  # every image at git-<sha7>

    # Attestation manifests are no platforms: a rerun reconciles, retags nothing, and its
    # platform checks pass; the rerun's signatures are the same signatures.
    again = repo.builder("build", "--all", "--sign", env=signing_env(key, password), check_exit=0)
    assert "FAILED" not in again.stderr, again.stderr

    # Tampering: the signature of base deleted...
    base_digest = str(images["base"]["digest"])
    delete_manifest(engine, repository, base_digest.replace(":", "-") + ".sig")
    # ...and an unsigned image re-tagged onto app's commit tag.
    tag = f"{engine.registry}/{repo.repository('app')}:git-{sha[:7]}"
    subprocess.run(
        ["docker", "buildx", "imagetools", "create", "-t", tag, engine.busybox()],
        env=dict(engine.env),
        capture_output=True,
        check=True,
        timeout=120,
    )
    done = repo.builder("verify")
    error = assert_one_line_error(done, 1)
    assert "base (the signature does not verify for key cosign.pub: no signatures found)" in error
    assert "app (" in error
    assert "FAILED  app: the signature does not verify" in done.stdout
    done = repo.builder("verify", "--metadata-file", str(meta))
    error = assert_one_line_error(done, 1)
    assert f"app (tag git-{sha[:7]} names sha256:" in error


def test_push_by_digest_then_merge_keeps_attestations_and_signs(
    make_build_repo: MakeRepo, engine: Engine, cosign: str, tmp_path: Path
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    key, public = key_pair(tmp_path / "keys", password)
    repo = supply_repo(make_build_repo, engine, public.read_text(encoding="utf-8"))
    digests = tmp_path / "digests"
    for platform in PLATFORMS:
        repo.builder(
            "build",
            "--only",
            "base",
            "--push-by-digest",
            "--platform",
            platform,
            "--digests-dir",
            str(digests / platform.replace("/", "-")),
            check_exit=0,
        )
    meta = tmp_path / "meta.json"
    repo.builder(
        "merge",
        "--only",
        "base",
        "--digests-dir",
        str(digests),
        "--sign",
        "--metadata-file",
        str(meta),
        env=signing_env(key, password),
        check_exit=0,
    )
    entry = repo.metadata(meta)["base"]
    assert entry["status"] == "built"
    assert imagetools_attestations(engine, str(entry["pinned"])) == list(PLATFORMS)
    assert entry["signature"]
    repo.builder("verify", "--metadata-file", str(meta), check_exit=0)


def test_bad_signing_and_generator_input_stops_before_any_push(
    make_build_repo: MakeRepo, engine: Engine, cosign: str, tmp_path: Path
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    key, public = key_pair(tmp_path / "keys", password)
    repo = supply_repo(make_build_repo, engine, public.read_text(encoding="utf-8"))
    names = ("base", "app")

    # No key (and no OIDC token).
    done = repo.builder("build", "--all", "--sign", env={"COSIGN_PASSWORD": password})
    error = assert_one_line_error(done, 2)
    assert "builder.yaml signs with the key cosign.pub, but COSIGN_KEY is not set" in error
    # A wrong password.
    done = repo.builder("build", "--all", "--sign", env=signing_env(key, "wrong"))
    error = assert_one_line_error(done, 2)
    assert "COSIGN_KEY cannot be used: decrypt" in error
    # A key that is not the one builder.yaml names.
    other, _ = key_pair(tmp_path / "other", password)
    done = repo.builder("build", "--all", "--sign", env=signing_env(other, password))
    error = assert_one_line_error(done, 2)
    assert "COSIGN_KEY is not the private half of signing.key cosign.pub" in error
    assert error.startswith("error: builder.yaml:")
    # An SBOM generator that does not exist.
    config = (repo.path / "builder.yaml").read_text(encoding="utf-8")
    repo.commit({"builder.yaml": config.replace(SCANNER, "tools/no-such-scanner:1")})
    done = repo.builder("build", "--all", "--sign", env=signing_env(key, password))
    error = assert_one_line_error(done, 2)
    assert "tools/no-such-scanner:1 does not exist" in error
    assert error.startswith("error: builder.yaml:")
    assert released(engine, repo, names) == {n: set() for n in names}  # nothing pushed

    # A generator that writes garbage: the bake fails, the image is named, nothing tagged.
    garbage = f"{engine.registry}/{repo.namespace}/garbage-scanner:1"
    context = tmp_path / "garbage"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {engine.busybox()}\n"
        'ENTRYPOINT ["sh", "-c", "echo not-json > $BUILDKIT_SCAN_DESTINATION/sbom.spdx.json"]\n',
        encoding="utf-8",
    )
    subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "--provenance=false",
            "--platform",
            ",".join(PLATFORMS),
            "-t",
            garbage,
            "--push",
            str(context),
        ],
        env=dict(engine.env),
        capture_output=True,
        check=True,
        timeout=300,
    )
    repo.commit({"builder.yaml": config.replace(f"{engine.registry}/{SCANNER}", garbage)})
    done = repo.builder("build", "--all", "--sign", env=signing_env(key, password))
    error = assert_one_line_error(done, 1)
    assert error == "error: 1 image(s) failed: base"  # app is skipped: its parent failed
    assert f"FAILED base: the SBOM generator {garbage} failed:" in done.stderr
    assert released(engine, repo, names) == {n: set() for n in names}
