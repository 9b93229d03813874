"""The one door for child processes: run argv, return (rc, stdout, stderr)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def err_text(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()


def run(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
) -> Result:
    """Run a command to completion; a missing program is returncode 127, one still running
    after `timeout` seconds is killed and returncode 124 (as timeout(1)), never exceptions."""
    try:
        completed = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=stdin,
            capture_output=True,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError:
        return Result(argv=tuple(argv), returncode=127, stdout=b"", stderr=b"not found")
    except subprocess.TimeoutExpired as exc:
        return Result(
            argv=tuple(argv),
            returncode=124,
            stdout=exc.stdout or b"",
            stderr=(exc.stderr or b"") + f"\ntimed out after {timeout:g} s".encode(),
        )
    return Result(
        argv=tuple(argv),
        returncode=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
    )
