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
    timed_out: bool = False  # killed at `timeout`: stdout and stderr hold what came before

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
    interleave: bool = False,
) -> Result:
    """Run a command to completion; a missing program is returncode 127, never an exception.

    After `timeout` seconds the program is killed (SIGKILL) and the result says so:
    `timed_out`, returncode 124 (as timeout(1)), stderr ending in how long it ran. With
    `interleave`, stderr goes into stdout in the order the program wrote them."""
    try:
        completed = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if interleave else subprocess.PIPE,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError:
        return Result(argv=tuple(argv), returncode=127, stdout=b"", stderr=b"not found")
    except subprocess.TimeoutExpired as exc:
        return Result(
            argv=tuple(argv),
            returncode=124,
            stdout=_bytes(exc.stdout),
            stderr=_bytes(exc.stderr) + f"\ntimed out after {timeout:g} s".encode(),
            timed_out=True,
        )
    return Result(
        argv=tuple(argv),
        returncode=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr or b"",
    )


def _bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    return data.encode() if isinstance(data, str) else data
