"""The GitHub Actions workflows: schema-valid, zizmor-clean, pinned, and shaped as issue 4 says.

Everything here is offline: check-jsonschema's vendored GitHub workflow schema ships inside
the package, and zizmor runs with `--offline`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
EXPECTED = {"build.yml", "build-fanout.yml", "ci.yml", "nightly.yml"}

SHA = re.compile(r"[0-9a-f]{40}")
PINNED_LINE = re.compile(r"uses:\s*(?P<action>[^\s@#]+)@(?P<ref>[^\s#]+)\s*#\s*v\d+\.\d+\.\d+\s*$")
# First-party actions only: no third-party change detection (builder does that itself).
ALLOWED_OWNERS = {"actions", "docker"}
NOT_ON_PULL_REQUEST = re.compile(r"""^github\.event_name\s*!=\s*['"]pull_request['"]$""")


def tool(name: str) -> str:
    """A dev tool from the venv running the tests (`.venv/bin`), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: .venv/bin/pip install -e '.[dev]'")
    return found


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    return doc


def triggers(doc: Mapping[Any, Any]) -> dict[str, Any]:
    """The `on:` block, which YAML 1.1 (pyyaml) reads as the key True."""
    on = doc["on"] if "on" in doc else doc[True]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on)


def steps(doc: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step


def step_named(doc: Mapping[str, Any], job_id: str, name: str) -> dict[str, Any]:
    for step in doc["jobs"][job_id]["steps"]:
        if step.get("name") == name:
            return dict(step)
    raise AssertionError(f"job {job_id} has no step {name!r}")


def uses_of(doc: Mapping[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for _, _, s in steps(doc) if str(s.get("uses", "")).split("@")[0] == action]


def mentions_secrets(value: Any) -> bool:
    return re.search(r"\bsecrets\s*[.\[]", json.dumps(value)) is not None


def excludes_pull_request(condition: Any) -> bool:
    """True when an `if:` can only hold outside pull_request events (a top-level `&&` term)."""
    if not isinstance(condition, str):
        return False
    text = condition.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2].strip()
    if "||" in text:
        return False  # too clever to prove by reading; keep the guards plain
    return any(NOT_ON_PULL_REQUEST.match(term.strip()) for term in text.split("&&"))


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in WORKFLOW_FILES}


def test_the_workflows_exist() -> None:
    assert {path.name for path in WORKFLOW_FILES} >= EXPECTED


# --- external linters ---------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_schema_valid(path: Path) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  j:\n    steps:\n      - run: true\n", encoding="utf-8")
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0, "the schema check accepts a job without runs-on"


def zizmor(target: Path) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--persona",
            "regular",
            "--min-severity",
            "medium",
            "--format",
            "json",
            "--no-progress",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.stdout.strip(), (
        f"zizmor printed no JSON (exit {result.returncode}):\n{result.stderr}"
    )
    return result, json.loads(result.stdout)


def describe(finding: Mapping[str, Any]) -> str:
    """One line per finding: audit, severity, and where (file:line: the flagged text)."""
    where = []
    for location in finding.get("locations", []):
        key = location.get("symbolic", {}).get("key", {})
        local = key.get("Local", {}) if isinstance(key, dict) else {}
        path = next(iter(local.values()), "?") if isinstance(local, dict) else "?"
        concrete = location.get("concrete", {})
        row = concrete.get("location", {}).get("start_point", {}).get("row", -1) + 1
        where.append(f"{path}:{row}: {concrete.get('feature', '')}")
    severity = finding.get("determinations", {}).get("severity")
    return f"{finding.get('ident')} ({severity}): {finding.get('desc')}: " + "; ".join(where)


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    result, findings = zizmor(WORKFLOWS)
    assert findings == [], "\n".join(describe(f) for f in findings)
    assert result.returncode == 0, result.stderr


def test_zizmor_does_audit(tmp_path: Path) -> None:
    """The same invocation flags an injectable, unpinned workflow: the check is not a no-op."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  j:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n",
        encoding="utf-8",
    )
    result, findings = zizmor(bad.parent)
    assert result.returncode != 0
    assert {"template-injection", "unpinned-uses"} <= {f["ident"] for f in findings}


# --- structure: every workflow ------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_first_party_and_pinned_by_sha(path: Path) -> None:
    doc = load(path)
    refs = [str(s["uses"]) for _, _, s in steps(doc) if "uses" in s]
    refs += [str(job["uses"]) for job in doc["jobs"].values() if "uses" in job]
    assert refs, f"{path.name} uses no action"
    for ref in refs:
        if ref.startswith("./"):
            continue
        assert not ref.startswith("docker://"), f"{path.name}: {ref}: use an action"
        action, _, version = ref.partition("@")
        assert SHA.fullmatch(version), f"{path.name}: {ref} is not pinned by a full commit SHA"
        assert action.split("/")[0] in ALLOWED_OWNERS, f"{path.name}: third-party {action}"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if "uses:" in line]
    for line in lines:
        if "uses: ./" not in line:
            assert PINNED_LINE.search(line), f"{path.name}: no `# vX.Y.Z` comment: {line.strip()}"


def test_one_sha_per_action_across_workflows(docs: dict[str, dict[str, Any]]) -> None:
    pins: dict[str, set[str]] = {}
    for doc in docs.values():
        for _, _, step in steps(doc):
            if "uses" in step:
                action, _, sha = str(step["uses"]).partition("@")
                pins.setdefault(action, set()).add(sha)
    assert {a: s for a, s in pins.items() if len(s) > 1} == {}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_no_expressions_in_run_scripts(path: Path) -> None:
    """Values reach scripts through `env:` and are quoted there, never interpolated."""
    for job_id, _, step in steps(load(path)):
        script = str(step.get("run", ""))
        where = f"{path.name}: job {job_id}, step {step.get('name')!r}"
        assert "${{ github.event" not in script.replace("${{github", "${{ github"), where
        assert "${{" not in script, f"{where} interpolates an expression into its script"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_minimal_permissions(path: Path) -> None:
    doc = load(path)
    assert "permissions" in doc, f"{path.name} sets no top-level permissions"
    assert doc["permissions"] == {"contents": "read"}
    for job_id, job in doc["jobs"].items():
        granted = job.get("permissions", {})
        assert isinstance(granted, dict), f"{path.name}: job {job_id}: {granted!r}"
        assert set(granted.values()) <= {"read", "none"}, f"{path.name}: job {job_id}: {granted}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_checkout_keeps_no_credentials(path: Path) -> None:
    doc = load(path)
    checkouts = uses_of(doc, "actions/checkout")
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, path.name


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_concurrency_and_timeouts(path: Path) -> None:
    doc = load(path)
    assert "github.ref" in str(doc["concurrency"]["group"]), path.name
    for job_id, job in doc["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{path.name}: job {job_id}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_pull_requests_never_see_secrets(path: Path) -> None:
    """A fork's pull request has no secrets and must never log in: no step that can run on
    pull_request gets one, and no workflow runs untrusted code with the base's secrets."""
    doc = load(path)
    on = triggers(doc)
    assert "pull_request_target" not in on, path.name
    assert "workflow_run" not in on, path.name
    if "pull_request" not in on:
        return
    assert not mentions_secrets(doc.get("env", {})), f"{path.name}: workflow env has secrets"
    for job_id, job in doc["jobs"].items():
        if excludes_pull_request(job.get("if")):
            continue
        assert not mentions_secrets(job.get("env", {})), f"{path.name}: job {job_id} env"
        assert "secrets" not in job, f"{path.name}: job {job_id} passes secrets on"
        for step in job.get("steps", []):
            if mentions_secrets(step):
                assert excludes_pull_request(step.get("if")), (
                    f"{path.name}: job {job_id}, step {step.get('name')!r} gets secrets on "
                    "pull_request; guard it with `if: github.event_name != 'pull_request'`"
                )


@pytest.mark.parametrize(
    ("condition", "excluded"),
    [
        ("github.event_name != 'pull_request'", True),
        ("${{ !cancelled() && github.event_name != 'pull_request' }}", True),
        ('github.event_name != "pull_request"', True),
        ("github.event_name == 'pull_request'", False),
        ("github.event_name != 'pull_request' || always()", False),
        ("always()", False),
        (None, False),
    ],
)
def test_pull_request_guard_reading(condition: str | None, excluded: bool) -> None:
    assert excludes_pull_request(condition) is excluded


# --- structure: each workflow -------------------------------------------------------------


def test_ci_runs_the_ci_entry_point(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["ci.yml"]
    assert {"push", "pull_request"} <= set(triggers(doc))
    (job,) = doc["jobs"].values()
    assert job["runs-on"] == "ubuntu-24.04"
    assert [s["run"] for s in job["steps"] if "run" in s] == ["bash .ci/run"]
    assert not mentions_secrets(doc)


def test_build_triggers(docs: dict[str, dict[str, Any]]) -> None:
    on = triggers(docs["build.yml"])
    assert set(on) == {"push", "pull_request", "workflow_dispatch"}
    assert not on["push"], "push builds every branch"
    assert on["workflow_dispatch"]["inputs"]["all"]["type"] == "boolean"


def test_build_setup(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["build.yml"]
    (checkout,) = uses_of(doc, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0, "the diff needs history"
    assert len(uses_of(doc, "docker/setup-qemu-action")) == 1
    (buildx,) = uses_of(doc, "docker/setup-buildx-action")
    # The docker driver cannot build a multi-platform image on a runner's engine.
    assert buildx.get("with", {}).get("driver", "docker-container") == "docker-container"
    (python,) = uses_of(doc, "actions/setup-python")
    assert python["with"]["python-version"] == "3.12"
    scripts = [str(s.get("run", "")) for _, _, s in steps(doc)]
    assert any(re.search(r"pip install \.$", s.strip()) for s in scripts), "install from repo"


def test_build_pushes_except_on_pull_requests(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["build.yml"]
    builds = [s for _, _, s in steps(doc) if re.search(r"\bbuild\b", str(s.get("run", "")))]
    on_push = [s for s in builds if excludes_pull_request(s.get("if"))]
    on_pr = [s for s in builds if s.get("if") == "github.event_name == 'pull_request'"]
    assert len(on_push) == 1
    assert len(on_pr) == 1
    assert len(builds) == 2
    push, pr = on_push[0], on_pr[0]

    assert "--push" in push["run"]
    assert "--metadata-file" in push["run"]
    assert set(push["env"]) >= {"DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"}
    assert push["env"]["DOCKERHUB_TOKEN"] == "${{ secrets.DOCKERHUB_TOKEN }}"
    # The dispatch input arrives as an env var and is tested by the shell.
    assert push["env"]["BUILD_ALL"] == "${{ inputs.all }}"
    assert '"${BUILD_ALL:-false}" = "true"' in push["run"]
    assert "--all" in push["run"]

    assert pr["run"].strip() == "builder build --no-push"
    assert "env" not in pr
    assert not mentions_secrets(pr)


def test_nightly_refreshes(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["nightly.yml"]
    on = triggers(doc)
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert on["schedule"] == [{"cron": "17 3 * * *"}]
    builder_steps = [s for _, _, s in steps(doc) if str(s.get("run", "")).startswith("builder ")]
    assert [s["run"].strip() for s in builder_steps] == ["builder refresh --push"]
    assert set(builder_steps[0]["env"]) == {"DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"}
    # The same setup as build.yml.
    setup = [str(s["uses"]).split("@")[0] for _, _, s in steps(doc) if "uses" in s]
    assert setup == [
        str(s["uses"]).split("@")[0]
        for _, _, s in steps(docs["build.yml"])
        if "uses" in s and "artifact" not in str(s["uses"])
    ]


def fanout_waves(doc: Mapping[str, Any]) -> list[int]:
    return sorted(int(j.removeprefix("wave-")) for j in doc["jobs"] if j.startswith("wave-"))


def test_fanout_plan_limits_generations_to_the_waves(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["build-fanout.yml"]
    waves = fanout_waves(doc)
    assert waves == list(range(1, len(waves) + 1))
    assert len(waves) >= 3
    assert {f"merge-{n}" for n in waves} <= set(doc["jobs"])

    plan = doc["jobs"]["plan"]
    (step,) = [s for s in plan["steps"] if s.get("id") == "plan"]
    assert "plan --format github-matrix" in step["run"]
    match = re.search(r"--max-generations (\d+)", step["run"])
    assert match, "builder plan must refuse a graph deeper than the workflow's waves"
    assert int(match.group(1)) == len(waves)
    for n in waves:
        assert plan["outputs"][f"wave{n}"] == f"${{{{ steps.plan.outputs.wave{n} }}}}"
        assert plan["outputs"][f"wave{n}_size"] == f"${{{{ steps.plan.outputs.wave{n}_size }}}}"


def as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_fanout_waves_build_by_digest_on_native_runners(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["build-fanout.yml"]
    for n in fanout_waves(doc):
        job = doc["jobs"][f"wave-{n}"]
        assert job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.plan.outputs.wave{n}) }}}}"
        assert job["strategy"]["fail-fast"] is False
        assert f"needs.plan.outputs.wave{n}_size != '0'" in job["if"], "skip an empty wave"
        assert job["runs-on"] == "${{ matrix.runner }}"
        needs = as_list(job["needs"])
        assert "plan" in needs
        if n > 1:
            assert f"merge-{n - 1}" in needs, f"wave {n} must wait for wave {n - 1}'s tags"
            assert "!failure()" in job["if"], f"wave {n} must not build on a failed parent"

        build = step_named(doc, f"wave-{n}", "Build and push by digest")
        assert "--only" in build["run"]
        assert "--platform" in build["run"]
        assert "--push-by-digest" in build["run"]
        assert '--digests-dir "$RUNNER_TEMP/digests"' in build["run"]
        assert build["env"]["BUILD_ALL"] == "${{ inputs.all }}", "same selection as the plan"
        assert build["env"]["IMAGE"] == "${{ matrix.image }}"
        assert build["env"]["PLATFORM"] == "${{ matrix.platform }}"

        (upload,) = uses_of({"jobs": {"j": job}}, "actions/upload-artifact")
        assert upload["with"]["name"].startswith(f"digests-{n}-")
        assert upload["with"]["if-no-files-found"] == "error"


def test_fanout_merges_each_wave(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["build-fanout.yml"]
    for n in fanout_waves(doc):
        job = doc["jobs"][f"merge-{n}"]
        assert f"wave-{n}" in as_list(job["needs"])
        (download,) = uses_of({"jobs": {"j": job}}, "actions/download-artifact")
        assert download["with"]["pattern"] == f"digests-{n}-*"
        assert download["with"]["merge-multiple"] is True
        assert download["with"]["path"] == "${{ runner.temp }}/digests"
        (merge,) = [s for s in job["steps"] if "args=(merge" in str(s.get("run", ""))]
        assert '--digests-dir "$RUNNER_TEMP/digests"' in merge["run"]
        assert merge["env"]["BUILD_ALL"] == "${{ inputs.all }}", "same selection as the plan"
        # imagetools create needs buildx.
        assert uses_of({"jobs": {"j": job}}, "docker/setup-buildx-action")
