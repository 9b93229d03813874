"""Putting a run's results where CI and people find them: the metadata file, GitHub's step
outputs and job summary, the JUnit and dotenv reports GitLab and Jenkins read. The only
module that writes them; the text comes from render/."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.ci import OUTPUTS_VARIABLE, SUMMARY_VARIABLE, CIFacts
from builder.errors import UserError
from builder.promotion import PromoteReport
from builder.render.data import metadata_json, promote_json
from builder.render.github import compute_outputs, render_summary
from builder.render.gitlab import compute_dotenv, render_dotenv
from builder.render.junit import render_report_junit
from builder.reports import BuildReport


def _append(path: Path, text: str, variable: str) -> None:
    """Append to the file a CI variable names; a failure is the variable's fault."""
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UserError(
            f"cannot write {variable} {path}: {exc.strerror or exc}",
            hint=f"the runner sets {variable} to a writable file; check the workflow's env",
        ) from None


def check_writable(ci: CIFacts) -> None:
    """Fail before any work, not after a long build, when a CI file is unwritable."""
    if ci.outputs is not None:
        _append(ci.outputs, "", OUTPUTS_VARIABLE)
    if ci.summary is not None:
        _append(ci.summary, "", SUMMARY_VARIABLE)


def write_outputs(outputs: Mapping[str, str], ci: CIFacts) -> None:
    """Append to the step outputs file with heredoc delimiters, safe for any value."""
    if ci.outputs is None:
        return
    text = ""
    for key, value in outputs.items():
        delimiter = f"builder_{uuid.uuid4().hex}"
        text += f"{key}<<{delimiter}\n{value}\n{delimiter}\n"
    _append(ci.outputs, text, OUTPUTS_VARIABLE)


def write_summary(text: str, ci: CIFacts) -> None:
    if ci.summary is not None:
        _append(ci.summary, text, SUMMARY_VARIABLE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFiles:
    """Where a building command writes its reports: the flags, else what the CI reads."""

    metadata: Path | None = None
    junit: Path | None = None
    dotenv: Path | None = None


def report_files(
    ci: CIFacts,
    *,
    metadata: Path | None = None,
    junit: Path | None = None,
    dotenv: Path | None = None,
) -> ReportFiles:
    """`--junit-file` and `--dotenv-file` beat the files GitLab and Jenkins pick up, which
    are written there only; the flags work anywhere."""
    return ReportFiles(
        metadata=metadata,
        junit=junit if junit is not None else ci.junit,
        dotenv=dotenv if dotenv is not None else ci.dotenv,
    )


def check_report_files(files: ReportFiles) -> None:
    """Fail before any work, not after a long build, when a report cannot be written."""
    for path, what in ((files.junit, "JUnit report"), (files.dotenv, "dotenv report")):
        if path is None:
            continue
        if path.is_dir():
            raise UserError(f"cannot write the {what} {path}: is a directory")
        if not path.parent.is_dir():
            raise UserError(
                f"cannot write the {what} {path}: directory {path.parent} does not exist",
                hint="create it first",
            )


def publish(report: BuildReport, ci: CIFacts, files: ReportFiles | None = None) -> None:
    """Summary and outputs inside GitHub Actions; the JUnit and dotenv reports where
    `files` names them (GitLab, Jenkins, or the flags)."""
    if ci.system == "github":
        write_summary(render_summary(report), ci)
        write_outputs(compute_outputs(report), ci)
    files = files or ReportFiles()
    if files.junit is not None:
        _write(files.junit, render_report_junit(report), "JUnit report")
    if files.dotenv is not None:
        _write(files.dotenv, render_dotenv(compute_dotenv(report, files.metadata)), "dotenv report")


def _write(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the {what}: {exc.strerror or exc}", file=str(path)) from None


def write_metadata(report: BuildReport, path: Path) -> None:
    try:
        path.write_text(json.dumps(metadata_json(report), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the metadata file: {exc.strerror}", file=str(path)) from None


def write_promotion(report: PromoteReport, path: Path) -> None:
    """The promoted set as a metadata file, for `builder pin --metadata-file`."""
    try:
        path.write_text(json.dumps(promote_json(report), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the metadata file: {exc.strerror}", file=str(path)) from None
