"""GitHub Actions' job summary, step outputs and fan-out matrices (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from builder.plan import BuildPlan
from builder.promotion import PromoteReport
from builder.render.data import metadata_json
from builder.render.graphs import render_mermaid
from builder.reports import BuildReport, TestResult

_STATUS_ICON = {
    "built": "✅",
    "tagged": "🏷️",
    "failed": "❌",
    "skipped": "⏭️",
    "unchanged": "➖",
    "planned": "📝",
}
_MERMAID_CLASSES = {
    "built": "fill:#2da44e,color:#fff",
    "tagged": "fill:#8250df,color:#fff",
    "failed": "fill:#cf222e,color:#fff",
    "skipped": "fill:#bf8700,color:#fff",
    "planned": "fill:#0969da,color:#fff",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_summary(report: BuildReport) -> str:
    counts: dict[str, int] = {}
    for result in report.results.values():
        counts[result.status] = counts.get(result.status, 0) + 1
    rng = report.selection.range
    lines = [
        "## builder: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
        "",
        f"Compared `{rng.base_label}` .. `{rng.head_label}` at `{report.revision.sha[:12]}`.",
        "",
    ]
    lines += [f"> [!WARNING]\n> {_cell(w)}\n" for w in report.selection.warnings]
    tested = any(r.tests for r in report.results.values())
    if tested:
        lines += [
            "| image | status | why | tests | tags | pinned |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
    else:
        lines += ["| image | status | why | tags | pinned |", "| --- | --- | --- | --- | --- |"]
    for name, result in report.results.items():
        tags = " ".join(f"`{t.rsplit(':', 1)[1]}`" for t in result.tags)
        pinned = f"`{result.pinned}`" if result.pinned else ""
        icon = _STATUS_ICON.get(result.status, "")
        status = "failed (test)" if result.test_failed else result.status
        tests = f" {_tests_cell(result.tests)} |" if tested else ""
        lines.append(
            f"| {name} | {icon} {status} | {_cell(result.reason)} |{tests} {tags} | {pinned} |"
        )
    graph = report.selection.repo.graph
    statuses = {n: r.status for n, r in report.results.items() if r.status in _MERMAID_CLASSES}
    lines += ["", "```mermaid", render_mermaid(graph, highlight=statuses)]
    lines += [f"  classDef {status} {style}" for status, style in _MERMAID_CLASSES.items()]
    lines += ["```", ""]
    return "\n".join(lines)


_TEST_ICON = {"passed": "✅", "failed": "❌", "timed out": "⏱️", "not run": "➖"}


def _tests_cell(tests: tuple[TestResult, ...]) -> str:
    """Per platform: an icon, the platform and the time, e.g. `✅ amd64 1.2s ❌ arm64 3.4s`."""
    return "<br>".join(
        f"{_TEST_ICON[t.verdict]} {t.platform.removeprefix('linux/')}"
        + (f" {t.seconds:.1f}s" if t.verdict != "not run" else " not run")
        for t in tests
    )


def compute_outputs(report: BuildReport) -> dict[str, str]:
    data = metadata_json(report)
    built = [n for n, r in report.results.items() if r.status == "built"]
    failed = [n for n, r in report.results.items() if r.status == "failed"]
    tagged = [n for n, r in report.results.items() if r.status == "tagged"]
    matrix = {
        "include": [
            {"image": b.name, "platforms": ",".join(b.platforms)} for b in report.plan.images
        ]
    }
    return {
        "images": json.dumps(data["images"], separators=(",", ":")),
        "built": json.dumps(built),
        "failed": json.dumps(failed),
        "tagged": json.dumps(tagged),
        "matrix": json.dumps(matrix, separators=(",", ":")),
    }


def matrix_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


DEFAULT_RUNNERS = {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}


def platform_family(platform: str) -> str:
    """`linux/arm64/v8` runs where `linux/arm64` does; `linux/amd64/v2` where amd64 does."""
    return "/".join(platform.split("/")[:2])


def runner_for(platform: str, runners: Mapping[str, str]) -> str:
    """A native runner for the platform, else an amd64 one (which needs QEMU)."""
    return runners.get(platform) or runners.get(platform_family(platform), runners["linux/amd64"])


def compute_matrix(
    plan: BuildPlan, runners: Mapping[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """One job per image and platform, tagged with its dependency wave (1-based)."""
    runners = {**DEFAULT_RUNNERS, **(runners or {})}
    wave_of = {name: i for i, wave in enumerate(plan.waves, 1) for name in wave}
    include = [
        {
            "generation": wave_of[build.name],
            "image": build.name,
            "platform": platform,
            "runner": runner_for(platform, runners),
            "emulated": platform_family(platform) not in runners,
        }
        for build in sorted(plan.images, key=lambda b: (wave_of[b.name], b.name))
        # Already pushed and tested: `builder merge` only tags it. Pushed but never tested,
        # it gets its jobs: each platform is tested on its own runner before merge tags it.
        if not build.tag_only
        for platform in build.platforms
    ]
    return {"include": include}


def compute_matrix_outputs(
    matrix: Mapping[str, list[dict[str, Any]]], waves: int, *, tag_only: int = 0
) -> dict[str, str]:
    """`matrix`, `generations` and a `waveN` matrix per wave for fixed workflow jobs, and
    `tag_only`: how many images need no build, only this run's tags (`builder merge`)."""
    include = matrix["include"]
    generations = max((e["generation"] for e in include), default=0)
    outputs = {
        "matrix": matrix_json(matrix),
        "generations": str(generations),
        "tag_only": str(tag_only),
    }
    for wave in range(1, max(waves, generations) + 1):
        entries = [e for e in include if e["generation"] == wave]
        outputs[f"wave{wave}"] = matrix_json({"include": entries})
        outputs[f"wave{wave}_size"] = str(len(entries))
    return outputs


_PROMOTE_ICON = {
    "moved": "✅",
    "already there": "➖",
    "would move": "📝",
    "missing": "❌",
    "incomplete": "❌",
    "failed": "❌",
    "not moved": "⏭️",
}


def render_promote_summary(report: PromoteReport) -> str:
    """The job summary of a promotion: each image, what the tag named and names now."""
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    title = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no images"
    dry = " (dry run)" if report.dry_run else ""
    lines = [
        f"## builder promote `{report.source}` -> `:{report.to}`{dry}: {title}",
        "",
        "| image | status | was | now | why |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in report.results:
        icon = _PROMOTE_ICON.get(r.status, "")
        was = f"`{r.previous}`" if r.previous else ""
        now = f"`{r.digest}`" if r.digest and r.status in ("moved", "already there") else ""
        lines.append(f"| {r.name} | {icon} {r.status} | {was} | {now} | {_cell(r.reason)} |")
    return "\n".join([*lines, ""]) + "\n"
