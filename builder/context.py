"""The run context: what a run needs to know about the world, worked out once at the edge.

The CLI builds one `RunContext` from the environment, git and the command's flags; every
command takes it with its own small request. Nothing below reads `os.environ`: the CI's
facts (`ci.CIFacts`), the commit being built (`Head`), registry credentials, how to reach
the engine (`EngineOptions`) and the reconcile policy are answered here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.ci import CIFacts, compute_ci_facts
from builder.errors import ConfigError, GitError, UserError
from builder.git import Git
from builder.refs import is_docker_hub


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A registry login from the environment; the password never prints."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    """How to reach docker and buildx; the buildx door takes this and nothing else."""

    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    builder: str | None = None  # a buildx builder by name; None: the current one

    @property
    def host(self) -> str | None:
        return self.environ.get("DOCKER_HOST") or None

    @property
    def docker_config(self) -> Path:
        configured = self.environ.get("DOCKER_CONFIG")
        return Path(configured) if configured else Path.home() / ".docker"


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    """The commit a run reads and describes, and how the checkout relates to it."""

    commit: str | None  # what tags and labels describe; None only in a repo without commits
    tree: str | None  # the commit to read; None: the working tree (local runs)
    label: str  # "working tree", "HEAD" or the --head text, for messages
    is_head: bool  # `commit` is what the checkout has out
    # Whether the working tree differs from HEAD (tracked or untracked files): asked of
    # git once, when first needed (`git status` walks the whole tree).
    check_dirty: Callable[[], bool] = field(default=lambda: False, compare=False, repr=False)
    _memo: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @property
    def dirty(self) -> bool:
        if "dirty" not in self._memo:
            self._memo["dirty"] = self.check_dirty()
        return self._memo["dirty"]

    @property
    def from_disk(self) -> bool:
        """The disk holds exactly what is built: the working tree, or a clean HEAD. Anything
        else builds from a throwaway worktree of the commit, so tags never describe other
        files."""
        return self.tree is None or (self.is_head and not self.dirty)

    @property
    def dirty_build(self) -> bool:
        """A build of the working tree with edits no commit holds."""
        return self.tree is None and self.dirty


def compute_head(git: Git, head: str | None, ci: CIFacts) -> Head:
    """`--head REV` names the commit; in CI it is HEAD; locally the working tree."""
    now = git.head()

    def dirty() -> bool:
        return now is not None and git.is_dirty()

    if head is not None:
        sha = git.resolve(head)
        return Head(commit=sha, tree=sha, label=head, is_head=sha == now, check_dirty=dirty)
    if ci.active:
        if now is None:
            raise GitError("the repository has no commits", hint="commit something first")
        return Head(commit=now, tree=now, label="HEAD", is_head=True, check_dirty=dirty)
    return Head(commit=now, tree=None, label="working tree", is_head=True, check_dirty=dirty)


_HUB_PAIRS = (("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"),)
_ANY_PAIRS = (("BUILDER_REGISTRY_USER", "BUILDER_REGISTRY_PASSWORD"),)
_GITLAB_PAIR = ("CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD")


def compute_credentials(registry: str, environ: Mapping[str, str]) -> Credentials | None:
    """A login for `registry` from the environment (never from argv), or None: the
    existing `docker login` is used then. GitLab's own registry takes its job token."""
    pairs = list(_ANY_PAIRS)
    if is_docker_hub(registry):
        pairs = [*_HUB_PAIRS, *pairs]
    if environ.get("CI_REGISTRY") and environ.get("CI_REGISTRY") == registry:
        pairs.append(_GITLAB_PAIR)
    for user_key, secret_key in pairs:
        user, secret = environ.get(user_key), environ.get(secret_key)
        if user and secret:
            return Credentials(username=user, password=secret)
        if bool(user) != bool(secret):
            missing = secret_key if user else user_key
            raise ConfigError(f"{missing} is not set but {user_key if user else secret_key} is")
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningEnv:
    """What the environment gives cosign (`--sign`): a private key (COSIGN_KEY: a path, a
    KMS URI or the key's PEM text) and its password (COSIGN_PASSWORD), or an OIDC token for
    keyless signing. Secrets never print; cosign gets them in its environment, never argv."""

    key: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    oidc: str | None = None  # where a keyless signature's token comes from; None: nowhere
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)  # cosign's own


def compute_signing_env(environ: Mapping[str, str]) -> SigningEnv:
    """COSIGN_KEY/COSIGN_PASSWORD, and an OIDC token cosign finds itself: GitHub Actions'
    (a job with `permissions: id-token: write`) or SIGSTORE_ID_TOKEN (GitLab's id_tokens)."""
    oidc = None
    if environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") and environ.get(
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
    ):
        oidc = "GitHub Actions' OIDC token"
    elif environ.get("SIGSTORE_ID_TOKEN"):
        oidc = "SIGSTORE_ID_TOKEN"
    return SigningEnv(
        key=environ.get("COSIGN_KEY") or None,
        password=environ.get("COSIGN_PASSWORD"),
        oidc=oidc,
        environ=dict(environ),
    )


def reconcile_policy(requested: bool | None, *, ci: bool, pushing: bool) -> bool:
    """Reconcile with the registry's content keys: when asked; otherwise in CI, and for
    every real push (a push without keys would leave the next CI run nothing to recognise,
    so it would build everything again)."""
    return requested if requested is not None else ci or pushing


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """Everything about the world a command needs, computed once by the CLI."""

    git: Git
    ci: CIFacts
    head: Head
    engine: EngineOptions
    _environ: Mapping[str, str] = field(repr=False)

    def credentials(self, registry: str) -> Credentials | None:
        return compute_credentials(registry, self._environ)

    def signing(self) -> SigningEnv:
        return compute_signing_env(self._environ)

    def check_secret_sources(self, secrets: tuple[str, ...]) -> None:
        check_secret_sources(secrets, self._environ)


def check_secret_sources(secrets: tuple[str, ...], environ: Mapping[str, str]) -> None:
    """A `--secret` whose source is missing must stop the run: BuildKit would silently
    mount nothing, and a cached step would even succeed on stale inputs."""
    for spec in secrets:
        fields = dict(part.split("=", 1) for part in spec.split(","))
        if "env" in fields and not environ.get(fields["env"]):
            raise UserError(
                f"--secret {spec}: environment variable {fields['env']} is not set or empty"
            )
        if "src" in fields and not Path(fields["src"]).is_file():
            raise UserError(f"--secret {spec}: file {fields['src']} does not exist")


def compute_context(
    cwd: Path,
    environ: Mapping[str, str],
    *,
    head: str | None = None,
    builder: str | None = None,
) -> RunContext:
    """The one place the environment is read for a run."""
    env = dict(environ)
    ci = compute_ci_facts(env)
    git = Git.discover(cwd, environ=env)
    return RunContext(
        git=git,
        ci=ci,
        head=compute_head(git, head, ci),
        engine=EngineOptions(environ=env, builder=builder),
        _environ=env,
    )
