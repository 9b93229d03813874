"""The error tree builder raises, and the exit code each one maps to.

    BuilderError                 any failure builder understands (exit 3 if raised bare)
    ├── UserError                bad input or environment the user can fix (exit 2)
    │   ├── ConfigError          builder.yaml / image.yaml
    │   ├── DockerfileError      a Dockerfile builder cannot read
    │   ├── GraphError           a cycle or an unknown depends_on name
    │   ├── GitError             not a repo, unknown revision, git failed
    │   ├── EngineError          no docker daemon / buildx
    │   ├── RegistryError        login refused, registry unreachable
    │   └── SigningError         no cosign, no key or a wrong password for --sign
    └── BuildFailed              one or more images failed to build or push (exit 1)

Everything else escaping to the CLI is a bug: exit 3 with "please report".
"""

from __future__ import annotations

from pathlib import PurePosixPath

EXIT_BUILD_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_BUG = 3


class BuilderError(Exception):
    """Base of every error builder raises on purpose."""

    exit_code = EXIT_BUG

    def __init__(
        self,
        message: str,
        *,
        file: PurePosixPath | str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        # One line, always: multi-line input (a YAML snippet, git's stderr) is folded.
        self.message = " ".join(message.split())
        self.file = _printable(str(file)) if file is not None else None
        self.line = line
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"


def _printable(text: str) -> str:
    """A path as one line: a directory named `new\\n` must not split the message."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class UserError(BuilderError):
    exit_code = EXIT_USER_ERROR


class ConfigError(UserError):
    pass


class DockerfileError(UserError):
    pass


class GraphError(UserError):
    pass


class GitError(UserError):
    pass


class EngineError(UserError):
    pass


class RegistryError(UserError):
    pass


class SigningError(UserError):
    pass


class BuildFailed(BuilderError):
    exit_code = EXIT_BUILD_FAILED
