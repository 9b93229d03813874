"""The GitHub Actions workflows and the builder action (action.yml): schema-valid,
zizmor-clean, pinned, and shaped as issues 4 and 12 say.

Everything here is offline: check-jsonschema's vendored GitHub workflow and action schemas
ship inside the package, and zizmor runs with `--offline`. The action is run for real in
tests/integration/test_action.py.
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
EXPECTED = {"build.yml", "build-fanout.yml", "ci.yml", "nightly.yml", "promote.yml"}
ACTION = ROOT / "action.yml"
PINNED_FILES = [*WORKFLOW_FILES, ACTION]

SHA = re.compile(r"[0-9a-f]{40}")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<value>.*?)\s*$")
# owner/repo[/path]@<40 hex> # vN[.N...]: the commit, and the release it is, for a reader.
PIN = re.compile(r"^(?P<ref>[\w.-]+/[\w.-]+(?:/[\w.-]+)*@[0-9a-f]{40})\s+#\s*v\d+(?:\.\d+)*\b")
# The Node 24 releases issue 12 verified (commit, tag); see the commit message for where.
NODE24 = {
    "actions/checkout": ("df4cb1c069e1874edd31b4311f1884172cec0e10", "v6.0.3"),
    "actions/setup-python": ("ece7cb06caefa5fff74198d8649806c4678c61a1", "v6.3.0"),
    "docker/setup-qemu-action": ("96fe6ef7f33517b61c61be40b68a1882f3264fb8", "v4.2.0"),
    "docker/setup-buildx-action": ("37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    # A composite action (no Node runtime): installs cosign for `sign: true` (issue 14).
    "sigstore/cosign-installer": ("d7d6e079ac29fd41e9a4c81c7a1b6e4e8b7fe1ec", "v3.7.0"),
}
# First-party actions only: no third-party change detection (builder does that itself).
# sigstore: cosign's own installer, the signing tool's publisher (issue 14).
ALLOWED_OWNERS = {"actions", "docker", "sigstore"}
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


def action_steps(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(doc["runs"]["steps"])


def uses_values(doc: Mapping[str, Any]) -> list[str]:
    """Every `uses:` of a workflow (steps and reusable-workflow jobs) or an action."""
    if "runs" in doc:
        return [str(s["uses"]) for s in action_steps(doc) if "uses" in s]
    found = [str(s["uses"]) for _, _, s in steps(doc) if "uses" in s]
    return found + [str(job["uses"]) for job in doc["jobs"].values() if "uses" in job]


def pin_problems(text: str) -> list[str]:
    """`uses:` lines that are not `owner/repo@<40 hex> # vN...` (or this repo's `./`)."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        found = USES_LINE.match(line)
        if found is None or found["value"].startswith("./"):
            continue
        if not PIN.match(found["value"]):
            problems.append(f"line {number}: {found['value']}")
    return problems


def this_action(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The steps of a workflow that run the builder action of this repository."""
    return [s for _, _, s in steps(doc) if s.get("uses") == "./"]


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


def test_action_schema_valid() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_schema_check_rejects_a_broken_action(tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    broken.write_text(
        "name: x\ndescription: x\nruns:\n  using: composite\n  steps:\n      - run: true\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(broken)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0, "the schema check accepts a composite run step without shell"


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


def test_zizmor_finds_nothing_in_the_action() -> None:
    result, findings = zizmor(ACTION)
    assert findings == [], "\n".join(describe(f) for f in findings)
    assert result.returncode == 0, result.stderr


def test_zizmor_audits_actions_too(tmp_path: Path) -> None:
    """An input interpolated into a composite step's script is flagged: not a no-op."""
    bad = tmp_path / "action.yml"
    bad.write_text(
        "name: bad\n"
        "description: bad\n"
        "inputs:\n"
        "  only:\n"
        "    description: x\n"
        "runs:\n"
        "  using: composite\n"
        "  steps:\n"
        "    - shell: bash\n"
        "      run: builder build --only ${{ inputs.only }}\n",
        encoding="utf-8",
    )
    result, findings = zizmor(bad)
    assert result.returncode != 0
    assert "template-injection" in {f["ident"] for f in findings}


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


@pytest.mark.parametrize("path", PINNED_FILES, ids=lambda p: p.name)
def test_every_action_is_first_party_and_pinned_by_sha(path: Path) -> None:
    refs = uses_values(load(path))
    assert refs, f"{path.name} uses no action"
    for ref in refs:
        if ref.startswith("./"):
            continue
        assert not ref.startswith("docker://"), f"{path.name}: {ref}: use an action"
        action, _, version = ref.partition("@")
        assert SHA.fullmatch(version), f"{path.name}: {ref} is not pinned by a full commit SHA"
        assert action.split("/")[0] in ALLOWED_OWNERS, f"{path.name}: third-party {action}"


@pytest.mark.parametrize("path", PINNED_FILES, ids=lambda p: p.name)
def test_every_pin_is_a_full_sha_with_a_version_comment(path: Path) -> None:
    """Line by line, as a reader (and Dependabot) sees them, and cross-checked with the
    parsed YAML so no `uses:` can hide from the line scan (flow style, quotes)."""
    text = path.read_text(encoding="utf-8")
    assert pin_problems(text) == [], f"{path.name}: pin by full commit SHA with # vX.Y.Z"
    on_lines = {
        found["value"].split("#")[0].strip()
        for line in text.splitlines()
        if (found := USES_LINE.match(line))
    }
    for value in uses_values(load(path)):
        assert value in on_lines, f"{path.name}: `uses: {value}` is not on a line of its own"


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("      - uses: actions/checkout@df4cb1c069e1874edd31b4311f1884172cec0e10 # v6.0.3", True),
        ("        uses: docker/setup-qemu-action@" + "a" * 40 + "  #v4", True),
        ("      uses: actions/upload-artifact/merge@" + "b" * 40 + " # v7.0.0", True),
        ("      - uses: ./", True),
        ("      - uses: actions/checkout@v6", False),
        ("      - uses: actions/checkout@v6 # v6.0.3", False),
        ("      - uses: actions/checkout@df4cb1c # v6.0.3", False),
        ("      - uses: actions/checkout@df4cb1c069e1874edd31b4311f1884172cec0e10", False),
        ("      - uses: actions/checkout@df4cb1c069e1874edd31b4311f1884172cec0e10 # latest", False),
        ("      - uses: actions/checkout@DF4CB1C069E1874EDD31B4311F1884172CEC0E10 # v6.0.3", False),
        ('      - uses: "actions/checkout@df4cb1c069e1874edd31b4311f1884172cec0e10" # v6', False),
        ("      - uses: docker://alpine:3.20 # v3.20", False),
    ],
)
def test_pin_check_reads_lines(line: str, ok: bool) -> None:
    assert (pin_problems(line) == []) is ok


def test_pins_are_the_verified_node24_releases() -> None:
    """One commit per action across every file, and it is the release issue 12 verified."""
    pins: dict[str, set[str]] = {}
    for path in PINNED_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            found = USES_LINE.match(line)
            if found is None or found["value"].startswith("./"):
                continue
            ref, _, comment = found["value"].partition("#")
            action, _, sha = ref.strip().partition("@")
            pins.setdefault(action, set()).add(f"{sha} {comment.strip()}")
    assert pins == {action: {f"{sha} {tag}"} for action, (sha, tag) in NODE24.items()}


@pytest.mark.parametrize("path", PINNED_FILES, ids=lambda p: p.name)
def test_no_expressions_in_run_scripts(path: Path) -> None:
    """Values reach scripts through `env:` and are quoted there, never interpolated."""
    doc = load(path)
    found = [("runs", s) for s in action_steps(doc)] if "runs" in doc else steps(doc)
    for job_id, *rest in found:
        step = rest[-1]
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
        granted = dict(job.get("permissions", {}))
        assert isinstance(granted, dict), f"{path.name}: job {job_id}: {granted!r}"
        signs = any(
            str(s.get("uses")) == "./" and s.get("with", {}).get("sign") == "true"
            for s in job.get("steps", [])
        )
        # Keyless signing needs the OIDC token: only a job that signs may ask for it.
        if granted.get("id-token") == "write":
            assert signs, f"{path.name}: job {job_id} asks for id-token but signs nothing"
            del granted["id-token"]
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


def test_build_is_checkout_then_the_action(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["build.yml"]
    (checkout,) = uses_of(doc, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0, "the diff needs history"
    used = [str(s["uses"]).split("@")[0] for _, _, s in steps(doc) if "uses" in s]
    assert used == ["actions/checkout", "./", "./", "actions/upload-artifact"]
    assert not [s for _, _, s in steps(doc) if "run" in s], "the action is the one step"
    text = (WORKFLOWS / "build.yml").read_text(encoding="utf-8")
    assert "uses: <org>/builder@<full commit sha>" in text, "say how another repo pins it"


def test_build_pushes_except_on_pull_requests(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["build.yml"]
    builds = this_action(doc)
    on_push = [s for s in builds if excludes_pull_request(s.get("if"))]
    on_pr = [s for s in builds if s.get("if") == "github.event_name == 'pull_request'"]
    assert len(on_push) == len(on_pr) == 1
    assert len(builds) == 2
    push, pr = on_push[0]["with"], on_pr[0]["with"]

    assert push["push"] == "true"
    assert push["metadata-file"] == "${{ runner.temp }}/builder-metadata.json"
    assert push["username"] == "${{ secrets.DOCKERHUB_USERNAME }}"
    assert push["password"] == "${{ secrets.DOCKERHUB_TOKEN }}"
    assert push["all"] == "${{ inputs.all }}", "the dispatch input reaches the action"
    assert push["sign"] == "true", "pushes are signed, keyless"
    assert doc["jobs"]["build"]["permissions"] == {"contents": "read", "id-token": "write"}

    assert pr == {"push": "false"}
    assert not mentions_secrets(on_pr[0])
    (upload,) = uses_of(doc, "actions/upload-artifact")
    assert upload["with"]["path"] == push["metadata-file"]
    assert upload["with"]["overwrite"] is True, "artifacts are immutable: re-runs replace"


def test_nightly_refreshes(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["nightly.yml"]
    on = triggers(doc)
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert on["schedule"] == [{"cron": "17 3 * * *"}]
    (refresh,) = this_action(doc)
    assert refresh["with"] == {
        "command": "refresh",
        "push": "true",
        "sign": "true",
        "username": "${{ secrets.DOCKERHUB_USERNAME }}",
        "password": "${{ secrets.DOCKERHUB_TOKEN }}",
    }
    used = [str(s["uses"]).split("@")[0] for _, _, s in steps(doc) if "uses" in s]
    assert used == ["actions/checkout", "./"]


def test_promote_is_dispatched_with_from_and_to(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["promote.yml"]
    on = triggers(doc)
    assert set(on) == {"workflow_dispatch"}
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["from"]["required"] is True
    assert inputs["to"]["required"] is True
    (job,) = doc["jobs"].values()
    assert job["environment"] == "${{ inputs.to }}"  # prod can require a reviewer
    (step,) = [s for s in job["steps"] if s.get("name") == "Promote"]
    assert step["env"]["FROM_TAG"] == "${{ inputs.from }}"
    assert step["env"]["TO_TAG"] == "${{ inputs.to }}"
    assert 'promote "${args[@]}"' in step["run"]
    (upload,) = uses_of(doc, "actions/upload-artifact")
    assert upload["with"]["path"] == "${{ runner.temp }}/builder-promoted.json"


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

        (build,) = this_action({"jobs": {"j": job}})
        assert build["with"] == {
            "only": "${{ matrix.image }}",
            "platforms": "${{ matrix.platform }}",
            "push": "by-digest",
            "digests-dir": "${{ runner.temp }}/digests",
            "all": "${{ inputs.all }}",  # same selection as the plan
            "username": "${{ secrets.DOCKERHUB_USERNAME }}",
            "password": "${{ secrets.DOCKERHUB_TOKEN }}",
        }
        # The action sets up QEMU and buildx itself, only where the runner lacks them.
        assert not uses_of({"jobs": {"j": job}}, "docker/setup-qemu-action")

        (upload,) = uses_of({"jobs": {"j": job}}, "actions/upload-artifact")
        assert upload["with"]["name"].startswith(f"digests-{n}-")
        assert upload["with"]["path"] == "${{ runner.temp }}/digests/*.digest"
        assert upload["with"]["if-no-files-found"] == "error"
        assert upload["with"]["overwrite"] is True, "artifacts are immutable: re-runs replace"


def test_fanout_merges_each_wave(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["build-fanout.yml"]
    for n in fanout_waves(doc):
        job = doc["jobs"][f"merge-{n}"]
        assert f"wave-{n}" in as_list(job["needs"])
        (download,) = uses_of({"jobs": {"j": job}}, "actions/download-artifact")
        assert download["with"]["pattern"] == f"digests-{n}-*"
        assert download["with"]["merge-multiple"] is True
        assert download["with"]["path"] == "${{ runner.temp }}/digests"
        assert "digest-mismatch" not in download["with"], "v8's default: a mismatch fails"
        (merge,) = this_action({"jobs": {"j": job}})
        assert merge["with"]["command"] == "merge"
        assert merge["with"]["digests-dir"] == download["with"]["path"]
        assert merge["with"]["all"] == "${{ inputs.all }}", "same selection as the plan"
        names = [s.get("name") for s in job["steps"]]
        assert names.index(download["name"]) < names.index(merge["name"])


# --- the action --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return load(ACTION)


def test_action_interface(action: dict[str, Any]) -> None:
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {
        "command",
        "push",
        "all",
        "only",
        "platforms",
        "metadata-file",
        "digests-dir",
        "registry",
        "username",
        "password",
        "sign",
        "pin",
        "working-directory",
    }
    assert {k: v["default"] for k, v in action["inputs"].items() if k != "command"} == {
        "push": "true",
        "all": "false",
        "only": "",
        "platforms": "",
        "metadata-file": "",
        "digests-dir": "",
        "registry": "",
        "username": "",
        "password": "",
        "sign": "false",
        "pin": "false",
        "working-directory": ".",
    }
    outputs = {"images", "built", "failed", "tagged", "matrix", "metadata"}
    assert set(action["outputs"]) == outputs
    for name in outputs:
        assert action["outputs"][name]["value"] == f"${{{{ steps.builder.outputs.{name} }}}}"


def test_action_sets_up_only_what_the_runner_lacks(action: dict[str, Any]) -> None:
    setups = {str(s["uses"]).split("@")[0]: s for s in action_steps(action) if "uses" in s}
    assert set(setups) == {
        "actions/setup-python",
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "sigstore/cosign-installer",
    }
    # cosign only when the caller signs.
    assert setups["sigstore/cosign-installer"]["if"] == "inputs.sign == 'true'"
    for name, output in (
        ("actions/setup-python", "python"),
        ("docker/setup-qemu-action", "qemu"),
        ("docker/setup-buildx-action", "buildx"),
    ):
        assert setups[name]["if"] == f"steps.detect.outputs.{output} == 'true'"
    # setup-buildx v4 dropped `install`, `config` and `config-inline`.
    assert not set(setups["docker/setup-buildx-action"].get("with", {})) & {
        "install",
        "config",
        "config-inline",
    }
    (detect,) = [s for s in action_steps(action) if s.get("id") == "detect"]
    assert "docker buildx version" in detect["run"]
    assert "docker buildx inspect --bootstrap" in detect["run"]


def test_action_installs_its_own_checkout(action: dict[str, Any]) -> None:
    (install,) = [s for s in action_steps(action) if s.get("id") == "install"]
    assert 'pip install --quiet --disable-pip-version-check "$GITHUB_ACTION_PATH"' in install["run"]
    assert '"$GITHUB_ACTION_PATH/pyproject.toml"' in install["run"], "checks the version"
    assert "GITHUB_PATH" not in install["run"], "steps call builder by path; PATH is left alone"


def test_action_secrets_reach_builder_only_through_its_environment(
    action: dict[str, Any],
) -> None:
    text = ACTION.read_text(encoding="utf-8")
    assert text.count("inputs.password") == 1
    assert text.count("inputs.username") == 1
    (run,) = [s for s in action_steps(action) if s.get("id") == "builder"]
    assert run["env"]["BUILDER_REGISTRY_PASSWORD"] == "${{ inputs.password }}"
    assert run["env"]["BUILDER_REGISTRY_USER"] == "${{ inputs.username }}"
    assert "BUILDER_REGISTRY_PASSWORD" not in run["run"].replace(
        '[ -n "$BUILDER_REGISTRY_PASSWORD" ] || unset BUILDER_REGISTRY_PASSWORD', ""
    ), "the script never reads the password itself"
    for step in action_steps(action):
        assert step.get("shell", "bash") == "bash"
        if "run" in step:
            for value in step.get("env", {}).values():
                assert re.fullmatch(r"\$\{\{ (inputs|steps)\.[\w.-]+ \}\}", value), value
