"""GitHub Actions conventions: the step summary, step outputs and the fan-out matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.changes import compute_affected
from builder.ci import CIFacts, compute_ci_facts
from builder.executor import mark_unchanged
from builder.plan import BuildPlan, Options, Revision, compute_plan
from builder.publish import publish, write_outputs, write_summary
from builder.render.data import metadata_json
from builder.render.github import (
    compute_matrix,
    compute_matrix_outputs,
    compute_outputs,
    render_summary,
)
from builder.reports import BuildReport, ImageResult, Range, Selection
from tests.conftest import load_files

SHA = "0123456789abcdef0123456789abcdef01234567"
BASE_SHA = "e" * 40
DIGEST = "sha256:" + "a" * 64
TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": "FROM acme/base\nCOPY . /app\n",
    "images/worker/Dockerfile": "FROM acme/api\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
    "images/cli/image.yaml": "platforms: [linux/amd64]\n",
}
REPO = load_files(TREE)
REVISION = Revision(sha=SHA, branch="main")


def ci(environ: dict[str, str]) -> CIFacts:
    """What builder makes of an environment: GitHub's files count inside Actions only."""
    return compute_ci_facts(environ)


def in_actions(**files: str) -> CIFacts:
    return ci({"GITHUB_ACTIONS": "true", **files})


def make_plan(*changed: str, options: Options | None = None) -> BuildPlan:
    return compute_plan(
        REPO.graph,
        compute_affected(REPO.graph, changed),
        settings=REPO.settings,
        revision=REVISION,
        options=options or Options(),
    )


def make_report(warnings: tuple[str, ...] = ()) -> BuildReport:
    plan = make_plan("base-images/base/Dockerfile")
    base = plan.get("base")
    results = {
        "base": ImageResult(
            name="base",
            status="built",
            reason="Dockerfile changed: base-images/base/Dockerfile",
            repository=base.repository,
            digest=DIGEST,
            tags=base.tags,
            platforms=base.platforms,
        ),
        "api": ImageResult(
            name="api",
            status="failed",
            reason="ERROR: a | b\nexit code: 1",
            repository="docker.io/acme/api",
        ),
        "worker": ImageResult(
            name="worker",
            status="skipped",
            reason="parent api failed",
            repository="docker.io/acme/worker",
        ),
    }
    selection = Selection(
        repo=REPO,
        range=Range(base=BASE_SHA, head=SHA, base_label="HEAD~1", head_label="HEAD"),
        affected=compute_affected(REPO.graph, ["base-images/base/Dockerfile"]),
        warnings=warnings,
    )
    return BuildReport(
        selection=selection,
        plan=plan,
        revision=REVISION,
        results=mark_unchanged(plan, results),
    )


def parse_outputs(text: str) -> dict[str, str]:
    """Read $GITHUB_OUTPUT back as the runner does: `name<<DELIM` ... `DELIM`."""
    outputs: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        name, sep, delimiter = line.partition("<<")
        assert sep, line
        value = []
        for body in lines:
            if body == delimiter:
                break
            value.append(body)
        else:
            pytest.fail(f"no closing {delimiter}")
        outputs[name] = "\n".join(value)
    return outputs


# -- the step summary ------------------------------------------------------------------------


def test_summary() -> None:
    pinned = f"docker.io/acme/base@{DIGEST}"
    assert render_summary(make_report()) == "\n".join(
        [
            "## builder: 1 built, 1 failed, 1 skipped, 1 unchanged",
            "",
            "Compared `HEAD~1` .. `HEAD` at `0123456789ab`.",
            "",
            "| image | status | why | tags | pinned |",
            "| --- | --- | --- | --- | --- |",
            (
                "| base | ✅ built | Dockerfile changed: base-images/base/Dockerfile "
                f"| `git-0123456` `main` `latest` | `{pinned}` |"
            ),
            "| api | ❌ failed | ERROR: a \\| b exit code: 1 |  |  |",
            "| worker | ⏭️ skipped | parent api failed |  |  |",
            "| cli | ➖ unchanged | not affected |  |  |",
            "",
            "```mermaid",
            "graph TD",
            '  n0["base"]',
            '  n1["api"]',
            '  n2["cli"]',
            '  n3["worker"]',
            "  n1 --> n3",
            "  n0 --> n1",
            "  class n1 failed",
            "  class n0 built",
            "  class n3 skipped",
            "  classDef built fill:#2da44e,color:#fff",
            "  classDef tagged fill:#8250df,color:#fff",
            "  classDef failed fill:#cf222e,color:#fff",
            "  classDef skipped fill:#bf8700,color:#fff",
            "  classDef planned fill:#0969da,color:#fff",
            "```",
            "",
        ]
    )


def test_summary_warnings_are_alerts() -> None:
    summary = render_summary(make_report(("base gone | fetched\nagain", "second")))
    assert (
        "at `0123456789ab`.\n\n"
        "> [!WARNING]\n> base gone \\| fetched again\n\n"
        "> [!WARNING]\n> second\n\n"
        "| image |"
    ) in summary


def test_summary_tags_on_a_registry_with_a_port() -> None:
    report = make_report()
    result = ImageResult(
        name="base",
        status="built",
        reason="r",
        repository="localhost:5000/acme/base",
        digest=DIGEST,
        tags=("localhost:5000/acme/base:git-0123456",),
    )
    report.results["base"] = result
    assert "| base | ✅ built | r | `git-0123456` |" in render_summary(report)


# -- step outputs ----------------------------------------------------------------------------


def test_outputs() -> None:
    report = make_report()
    outputs = compute_outputs(report)
    assert set(outputs) == {"images", "built", "failed", "tagged", "matrix"}
    assert json.loads(outputs["tagged"]) == []
    assert json.loads(outputs["built"]) == ["base"]
    assert json.loads(outputs["failed"]) == ["api"]
    assert json.loads(outputs["images"]) == metadata_json(report)["images"]
    assert json.loads(outputs["matrix"]) == {
        "include": [
            {"image": "base", "platforms": "linux/amd64,linux/arm64"},
            {"image": "api", "platforms": "linux/amd64,linux/arm64"},
            {"image": "worker", "platforms": "linux/amd64,linux/arm64"},
        ]
    }
    assert "\n" not in outputs["images"]  # compact: one line per output


def test_metadata_json() -> None:
    data = metadata_json(make_report())
    assert data == {
        "revision": SHA,
        "base": BASE_SHA,
        "push": True,
        "removed": [],
        "images": {
            "base": {
                "status": "built",
                "reason": "Dockerfile changed: base-images/base/Dockerfile",
                "repository": "docker.io/acme/base",
                "tags": [
                    "docker.io/acme/base:git-0123456",
                    "docker.io/acme/base:main",
                    "docker.io/acme/base:latest",
                ],
                "digest": DIGEST,
                "pinned": f"docker.io/acme/base@{DIGEST}",
                "platforms": ["linux/amd64", "linux/arm64"],
                "tests": [],
                "attestations": {},
                "signature": None,
            },
            "api": {
                "status": "failed",
                "reason": "ERROR: a | b\nexit code: 1",
                "repository": "docker.io/acme/api",
                "tags": [],
                "digest": None,
                "pinned": None,
                "platforms": [],
                "tests": [],
                "attestations": {},
                "signature": None,
            },
            "worker": {
                "status": "skipped",
                "reason": "parent api failed",
                "repository": "docker.io/acme/worker",
                "tags": [],
                "digest": None,
                "pinned": None,
                "platforms": [],
                "tests": [],
                "attestations": {},
                "signature": None,
            },
            "cli": {
                "status": "unchanged",
                "reason": "not affected",
                "repository": None,
                "tags": [],
                "digest": None,
                "pinned": None,
                "platforms": [],
                "tests": [],
                "attestations": {},
                "signature": None,
            },
        },
    }
    assert list(data["images"]) == ["base", "api", "worker", "cli"]


def test_write_outputs_round_trips_any_value(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier<<EOF\nkept\nEOF\n", encoding="utf-8")
    values = {
        "plain": "x",
        "multi": "line one\nline two\n\nEOF\nname<<EOF",
        "empty": "",
        "json": json.dumps({"a": [1, 2]}),
    }
    write_outputs(values, in_actions(GITHUB_OUTPUT=str(path)))
    assert parse_outputs(path.read_text(encoding="utf-8")) == {"earlier": "kept", **values}


def test_write_outputs_uses_fresh_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "output"
    write_outputs({"a": "1", "b": "2"}, in_actions(GITHUB_OUTPUT=str(path)))
    heads = [line for line in path.read_text(encoding="utf-8").splitlines() if "<<" in line]
    delimiters = [h.partition("<<")[2] for h in heads]
    assert len(set(delimiters)) == 2
    assert all(d.startswith("builder_") for d in delimiters)


def test_write_outputs_outside_actions_writes_nothing(tmp_path: Path) -> None:
    write_outputs({"a": "1"}, ci({}))
    write_summary("text", ci({}))
    assert list(tmp_path.iterdir()) == []


def test_publish_only_inside_github_actions(tmp_path: Path) -> None:
    environ = {
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }
    publish(make_report(), ci(environ))
    assert list(tmp_path.iterdir()) == []
    publish(make_report(), ci({**environ, "GITHUB_ACTIONS": "true"}))
    summary = (tmp_path / "summary").read_text(encoding="utf-8")
    assert summary == render_summary(make_report())
    outputs = parse_outputs((tmp_path / "output").read_text(encoding="utf-8"))
    assert outputs == compute_outputs(make_report())


# -- the fan-out matrix ----------------------------------------------------------------------


def test_matrix_one_job_per_image_and_platform() -> None:
    plan = make_plan("base-images/base/Dockerfile", "images/cli/Dockerfile")
    assert compute_matrix(plan) == {
        "include": [
            {
                "generation": 1,
                "image": "base",
                "platform": "linux/amd64",
                "runner": "ubuntu-24.04",
                "emulated": False,
            },
            {
                "generation": 1,
                "image": "base",
                "platform": "linux/arm64",
                "runner": "ubuntu-24.04-arm",
                "emulated": False,
            },
            {
                "generation": 1,
                "image": "cli",
                "platform": "linux/amd64",
                "runner": "ubuntu-24.04",
                "emulated": False,
            },
            {
                "generation": 2,
                "image": "api",
                "platform": "linux/amd64",
                "runner": "ubuntu-24.04",
                "emulated": False,
            },
            {
                "generation": 2,
                "image": "api",
                "platform": "linux/arm64",
                "runner": "ubuntu-24.04-arm",
                "emulated": False,
            },
            {
                "generation": 3,
                "image": "worker",
                "platform": "linux/amd64",
                "runner": "ubuntu-24.04",
                "emulated": False,
            },
            {
                "generation": 3,
                "image": "worker",
                "platform": "linux/arm64",
                "runner": "ubuntu-24.04-arm",
                "emulated": False,
            },
        ]
    }


@pytest.mark.parametrize(
    ("platform", "runners", "expected", "emulated"),
    [
        ("linux/arm64", None, "ubuntu-24.04-arm", False),
        ("linux/arm64/v8", None, "ubuntu-24.04-arm", False),  # the same machine
        ("linux/amd64", None, "ubuntu-24.04", False),
        ("linux/riscv64", None, "ubuntu-24.04", True),  # QEMU on the default runner
        ("linux/arm/v7", None, "ubuntu-24.04", True),
        ("linux/arm64", {"linux/arm64": "self-hosted-arm"}, "self-hosted-arm", False),
        ("linux/s390x", {"linux/s390x": "big-iron"}, "big-iron", False),
    ],
)
def test_matrix_runner_per_platform(
    platform: str, runners: dict[str, str] | None, expected: str, emulated: bool
) -> None:
    options = Options(platforms=(platform,), push_by_digest=True)
    plan = make_plan("images/cli/Dockerfile", options=options)
    jobs = compute_matrix(plan, runners)["include"]
    assert [(e["runner"], e["emulated"]) for e in jobs] == [(expected, emulated)]


def test_matrix_leaves_already_pushed_images_to_merge() -> None:
    plan = compute_plan(
        REPO.graph,
        compute_affected(REPO.graph, ["images/api/app.py"]),  # api, then worker
        settings=REPO.settings,
        revision=REVISION,
        options=Options(),
        existing={"api": DIGEST},
    )
    assert {e["image"] for e in compute_matrix(plan)["include"]} == {"worker"}
    assert [e["generation"] for e in compute_matrix(plan)["include"]] == [2, 2]


def test_matrix_of_an_empty_plan() -> None:
    assert compute_matrix(make_plan()) == {"include": []}


def test_matrix_outputs_one_per_wave_and_empty_waves() -> None:
    matrix = compute_matrix(make_plan("images/api/app.py"))  # api, then worker
    outputs = compute_matrix_outputs(matrix, 4)
    api = [
        {"generation": 1, "image": "api", "platform": "linux/amd64", "runner": "ubuntu-24.04"},
        {"generation": 1, "image": "api", "platform": "linux/arm64", "runner": "ubuntu-24.04-arm"},
    ]
    api = [{**e, "emulated": False} for e in api]
    assert {k: json.loads(v) for k, v in outputs.items()} == {
        "matrix": matrix,
        "generations": 2,
        "tag_only": 0,
        "wave1": {"include": api},
        "wave1_size": 2,
        "wave2": {"include": [{**e, "generation": 2, "image": "worker"} for e in api]},
        "wave2_size": 2,
        "wave3": {"include": []},
        "wave3_size": 0,
        "wave4": {"include": []},
        "wave4_size": 0,
    }
    assert outputs["wave3"] == '{"include":[]}'  # compact JSON for `fromJSON`


def test_matrix_outputs_cover_more_generations_than_asked() -> None:
    matrix = compute_matrix(make_plan("base-images/base/Dockerfile"))
    outputs = compute_matrix_outputs(matrix, 1)
    assert outputs["generations"] == "3"
    assert [k for k in outputs if k.endswith("_size")] == ["wave1_size", "wave2_size", "wave3_size"]


def test_matrix_outputs_of_nothing() -> None:
    assert compute_matrix_outputs({"include": []}, 2) == {
        "matrix": '{"include":[]}',
        "generations": "0",
        "tag_only": "0",
        "wave1": '{"include":[]}',
        "wave1_size": "0",
        "wave2": '{"include":[]}',
        "wave2_size": "0",
    }
