"""Putting a run's results where CI and people find them: the metadata file, GitHub's step
outputs and job summary, the JUnit and dotenv reports GitLab and Jenkins read. The only
module that writes them; the text comes from render/."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path

from builder.ci import OUTPUTS_VARIABLE, SUMMARY_VARIABLE, CIFacts
from builder.errors import UserError
from builder.render.data import metadata_json
from builder.render.github import compute_outputs, render_summary
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


def publish(report: BuildReport, ci: CIFacts) -> None:
    """Summary and outputs, when running inside GitHub Actions."""
    if ci.system != "github":
        return
    write_summary(render_summary(report), ci)
    write_outputs(compute_outputs(report), ci)


def write_metadata(report: BuildReport, path: Path) -> None:
    try:
        path.write_text(json.dumps(metadata_json(report), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the metadata file: {exc.strerror}", file=str(path)) from None
