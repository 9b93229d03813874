"""The door to cosign (sigstore): signing and verifying pushed images; the only module
that runs it.

The command lines are values (`sign_argv`, `verify_argv`), so tests compare them and the
metadata file records the exact verify command. Secrets never reach an argv: a private
key's text stays in cosign's environment (`--key env://COSIGN_KEY`, cosign's own
convention), its password in COSIGN_PASSWORD, an OIDC token where cosign finds it itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder import proc
from builder.errors import SigningError

KEY_VARIABLE = "COSIGN_KEY"
# cosign signs offline in well under a second; keyless signing asks an OIDC issuer, Fulcio
# and Rekor. A hung network must not hang the run.
TIMEOUT = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Signer:
    """How this run signs."""

    key: str | None  # cosign's --key: a path, a KMS URI or env://COSIGN_KEY; None: keyless
    tlog: bool  # upload to the transparency log (Rekor)
    insecure_registry: bool  # a plain-HTTP loopback registry


@dataclass(frozen=True, slots=True, kw_only=True)
class Expected:
    """Who must have signed an image: a public key, or a keyless identity and issuer."""

    key: str | None = None  # the public key's path
    identity: str | None = None  # a regular expression for the certificate's identity
    issuer: str | None = None  # the OIDC issuer of that certificate
    tlog: bool = True  # the signature must be in the transparency log
    insecure_registry: bool = False

    def describe(self) -> str:
        if self.key is not None:
            return f"key {self.key}"
        return f"identity ~ {self.identity} from {self.issuer}"


def key_argument(key: str) -> str:
    """COSIGN_KEY as cosign's `--key`: a key's text stays in the environment; a path or a
    KMS URI (awskms://, gcpkms://, hashivault://, k8s://...) is no secret and is passed."""
    return f"env://{KEY_VARIABLE}" if "-----BEGIN" in key else key


def sign_argv(reference: str, signer: Signer) -> tuple[str, ...]:
    argv = ["cosign", "sign", "--yes"]
    if signer.key is not None:
        argv += ["--key", signer.key]
    argv.append(f"--tlog-upload={'true' if signer.tlog else 'false'}")
    if signer.insecure_registry:
        argv.append("--allow-insecure-registry")
    return (*argv, reference)


def verify_argv(reference: str, expected: Expected) -> tuple[str, ...]:
    argv = ["cosign", "verify"]
    if expected.key is not None:
        argv += ["--key", expected.key]
    else:
        argv += [
            "--certificate-identity-regexp",
            expected.identity or "",
            "--certificate-oidc-issuer",
            expected.issuer or "",
        ]
    if not expected.tlog:
        argv.append("--insecure-ignore-tlog")
    if expected.insecure_registry:
        argv.append("--allow-insecure-registry")
    return (*argv, reference)


def render_command(argv: tuple[str, ...]) -> str:
    return shlex.join(argv)


def signature_tag(digest: str) -> str:
    """Where cosign stores the signature of `digest`: the tag `sha256-<hex>.sig`."""
    return digest.replace(":", "-", 1) + ".sig"


Runner = Callable[..., proc.Result]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cosign:
    """cosign for one run: its environment (the secrets live there), and the docker config
    holding the run's registry logins."""

    environ: Mapping[str, str] = field(repr=False)
    docker_config: Path | None = None
    cwd: Path | None = None  # the repository's root: public keys are named relative to it
    secrets: tuple[str, ...] = field(default=(), repr=False)  # never shown in a message
    run: Runner = proc.run
    timeout: float = TIMEOUT

    def _env(self) -> dict[str, str]:
        env = dict(self.environ)
        # An encrypted key without a password would make cosign prompt; it gets none.
        env.setdefault("COSIGN_PASSWORD", "")
        if self.docker_config is not None:
            env["DOCKER_CONFIG"] = str(self.docker_config)
        return env

    def _run(self, argv: tuple[str, ...]) -> proc.Result:
        # stdin is empty: a prompt cosign would show reads nothing instead of waiting.
        return self.run(argv, env=self._env(), stdin=b"", timeout=self.timeout, cwd=self.cwd)

    def check(self) -> None:
        """Fail before any work when cosign is not installed."""
        result = self._run(("cosign", "version"))
        if result.returncode == 127:
            raise SigningError(
                "--sign needs cosign, and it is not installed",
                hint="scripts/engine cosign installs Debian's cosign 2.5; in GitHub Actions, "
                "sigstore/cosign-installer",
            )
        if not result.ok:
            raise SigningError(f"cosign does not run: {self._why(result)}")

    def public_key(self, key: str) -> str:
        """The public half of a private key; the check that the key opens with its password."""
        result = self._run(("cosign", "public-key", "--key", key_argument(key)))
        if not result.ok:
            raise SigningError(
                f"{KEY_VARIABLE} cannot be used: {self._why(result)}",
                hint="COSIGN_KEY is the private key (a path or its text) and COSIGN_PASSWORD "
                "its password",
            )
        return result.stdout.decode("utf-8", "replace").strip()

    def sign(self, reference: str, signer: Signer) -> str | None:
        """Sign one image; the reason it failed, or None."""
        result = self._run(sign_argv(reference, signer))
        return None if result.ok else self._why(result)

    def verify(self, reference: str, expected: Expected) -> str | None:
        """Check an image's signature; the reason it does not verify, or None."""
        result = self._run(verify_argv(reference, expected))
        return None if result.ok else self._why(result)

    def _why(self, result: proc.Result) -> str:
        """cosign's own error line (`Error: ...`), secrets blanked."""
        lines = [line.strip() for line in result.err_text().splitlines() if line.strip()]
        chosen = next((line for line in lines if line.startswith("Error:")), None)
        if chosen is None:
            chosen = lines[-1] if lines else f"cosign exited with {result.returncode}"
        text = chosen.removeprefix("Error:").strip()
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text
