"""`builder doctor`: where builder.yaml and the Dockerfiles disagree, file by file."""

from __future__ import annotations

from dataclasses import dataclass

from builder.doctor import Finding, check_all
from builder.errors import UserError
from builder.git import Git
from builder.graph import ImageGraph
from builder.repo import Overrides
from builder.workspace import load_at


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorReport:
    findings: tuple[Finding, ...]
    graph: ImageGraph | None  # None when the repo could not be read at all

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")


def run_doctor(git: Git, *, rev: str | None, overrides: Overrides) -> DoctorReport:
    sha = git.resolve(rev) if rev is not None else None
    errors: list[UserError] = []
    try:
        repo = load_at(git, sha, overrides, errors=errors)
    except UserError as exc:
        # What stops every command is the first thing to fix; each image's own error is
        # named too, so a repo adopted with many of the same mistake hears of them at once.
        stopped = tuple(
            Finding(
                file=error.file or "builder.yaml",
                line=error.line,
                severity="error",
                message=error.message,
                hint=error.hint,
            )
            for error in (errors or [exc])
        )
        return DoctorReport(findings=stopped, graph=None)
    findings = check_all(repo.graph, git.all_files(sha), repo.settings.not_images)
    return DoctorReport(findings=tuple(findings), graph=repo.graph)
