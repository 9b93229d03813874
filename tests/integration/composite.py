"""Run a composite action's `run:` steps the way the Actions runner does, on this machine.

What the runner does for a composite action, and so what this does:
- each `run:` step is written to a file and run as `bash --noprofile --norc -eo pipefail
  FILE` (the `shell: bash` template), in `working-directory` under the workspace;
- `${{ inputs.x }}` and `${{ steps.id.outputs.y }}` in `env:`, `working-directory`,
  `if:` and the action's `outputs:` are replaced by their values (inputs default to the
  action's `default:`); any other expression is an error here, not a silent empty string;
- each step gets fresh GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ENV and GITHUB_PATH
  files: outputs become `steps.<id>.outputs`, summaries are joined into the job summary,
  GITHUB_ENV and GITHUB_PATH reach the later steps;
- `if:` holds `success() &&` implicitly: after a failed step the rest are skipped;
- `uses:` steps cannot run here (they are JavaScript actions fetched from GitHub): their
  `if:` is evaluated and recorded, and the test asserts none of them would have run.

https://docs.github.com/en/actions/sharing-automations/creating-actions/metadata-syntax-for-github-actions#runs-for-composite-actions
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
COMPARISON = re.compile(r"""^(?P<ref>[\w.-]+)\s*(?P<op>==|!=)\s*'(?P<literal>[^']*)'$""")
BASH = ("bash", "--noprofile", "--norc", "-eo", "pipefail")


def read_file_command(path: Path) -> dict[str, str]:
    """`name=value` lines and `name<<DELIMITER` heredocs, as GITHUB_OUTPUT/GITHUB_ENV hold."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, _, delimiter = line.partition("<<")
            end = lines.index(delimiter, i + 1)
            values[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        if line.strip():
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not a file command: {line!r}"
            values[name] = value
        i += 1
    return values


@dataclass
class StepRun:
    name: str
    id: str | None
    ran: bool
    uses: str | None = None
    condition: bool = True  # what `if:` evaluated to
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # the step's own `env:`, substituted
    cwd: Path | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]
    summary: str
    failed: bool

    def step(self, name: str) -> StepRun:
        (found,) = [s for s in self.steps if s.name == name]
        return found

    @property
    def log(self) -> str:
        return "".join(s.stdout + s.stderr for s in self.steps)


@dataclass
class Job:
    """One job on one runner: the workspace, RUNNER_TEMP and the environment steps see."""

    workspace: Path
    temp: Path
    env: dict[str, str]  # the runner's environment for every step
    extra_path: list[str] = field(default_factory=list)  # from GITHUB_PATH, newest first
    step_count: int = 0

    def run_action(
        self, action_path: Path, inputs: Mapping[str, str], *, timeout: float = 900
    ) -> ActionRun:
        action = yaml.safe_load((action_path / "action.yml").read_text(encoding="utf-8"))
        assert action["runs"]["using"] == "composite"
        declared = action.get("inputs", {})
        unknown = set(inputs) - set(declared)
        assert not unknown, f"the action has no inputs {sorted(unknown)}"
        values = {name: str(spec.get("default", "")) for name, spec in declared.items()}
        values.update(inputs)
        context: dict[str, Any] = {"inputs": values, "steps": {}}

        runs: list[StepRun] = []
        summary: list[str] = []
        failed = False
        for step in action["runs"]["steps"]:
            name = str(step.get("name") or step.get("id") or step.get("uses") or "run")
            condition = evaluate_if(step.get("if"), context)
            record = StepRun(name=name, id=step.get("id"), ran=False, condition=condition)
            runs.append(record)
            if "uses" in step:
                record.uses = str(step["uses"])
                continue  # recorded; the test asserts `condition` is False
            if failed or not condition:
                continue
            assert step.get("shell") == "bash", f"{name}: composite run steps need shell: bash"
            self._run_step(step, record, action_path, context, summary, timeout)
            if record.id:
                context["steps"][record.id] = {"outputs": record.outputs}
            failed = record.returncode != 0
        outputs = {
            key: substitute(str(spec.get("value", "")), context)
            for key, spec in action.get("outputs", {}).items()
        }
        return ActionRun(steps=runs, outputs=outputs, summary="".join(summary), failed=failed)

    def _run_step(
        self,
        step: Mapping[str, Any],
        record: StepRun,
        action_path: Path,
        context: Mapping[str, Any],
        summary: list[str],
        timeout: float,
    ) -> None:
        self.step_count += 1
        files = self.temp / "_runner_file_commands" / f"step{self.step_count}"
        files.mkdir(parents=True)
        commands = {
            key: files / key.lower()
            for key in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH")
        }
        for path in commands.values():
            path.write_text("", encoding="utf-8")
        script = files / "script.sh"
        script.write_text(str(step["run"]), encoding="utf-8")
        record.env = {k: substitute(str(v), context) for k, v in step.get("env", {}).items()}
        env = {
            **self.env,
            "PATH": ":".join([*self.extra_path, self.env["PATH"]]),
            "GITHUB_ACTION_PATH": str(action_path),
            **{key: str(path) for key, path in commands.items()},
            **record.env,
        }
        record.cwd = self.workspace / substitute(str(step.get("working-directory", ".")), context)
        record.argv = (*BASH, str(script))
        started = time.monotonic()
        done = subprocess.run(
            record.argv,
            cwd=record.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        record.ran, record.seconds = True, time.monotonic() - started
        record.returncode, record.stdout, record.stderr = done.returncode, done.stdout, done.stderr
        record.outputs = read_file_command(commands["GITHUB_OUTPUT"])
        summary.append(commands["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8"))
        self.env.update(read_file_command(commands["GITHUB_ENV"]))
        for line in commands["GITHUB_PATH"].read_text(encoding="utf-8").splitlines():
            if line.strip():
                self.extra_path.insert(0, line.strip())


def resolve(reference: str, context: Mapping[str, Any]) -> str:
    """`inputs.NAME` or `steps.ID.outputs.NAME`; a missing step output is '' as in Actions."""
    parts = reference.split(".")
    if parts[0] == "inputs" and len(parts) == 2:
        return str(context["inputs"][parts[1]])
    if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
        return str(context["steps"].get(parts[1], {}).get("outputs", {}).get(parts[3], ""))
    raise AssertionError(f"expression not supported by this runner stand-in: {reference}")


def substitute(text: str, context: Mapping[str, Any]) -> str:
    return EXPRESSION.sub(lambda m: resolve(m.group(1), context), text)


def evaluate_if(condition: Any, context: Mapping[str, Any]) -> bool:
    """`a == 'x'`, `a != 'x'` and `&&` of those; Actions compares strings ignoring case."""
    if condition is None:
        return True
    text = str(condition).strip()
    match = EXPRESSION.fullmatch(text)
    if match:
        text = match.group(1)
    assert "||" not in text, f"if: too clever for this stand-in: {text}"
    assert "(" not in text, f"if: too clever for this stand-in: {text}"
    for term in text.split("&&"):
        found = COMPARISON.match(term.strip())
        assert found, f"if: term not supported by this runner stand-in: {term.strip()!r}"
        equal = resolve(found["ref"], context).casefold() == found["literal"].casefold()
        if equal != (found["op"] == "=="):
            return False
    return True


def runner_env(base: Mapping[str, str], *, drop_path_under: Path) -> dict[str, str]:
    """The environment a hosted runner gives steps, minus this checkout's own virtualenv:
    the action must run the builder it installs, not the one running the tests."""
    env = {k: v for k, v in base.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = ":".join(
        entry
        for entry in env.get("PATH", os.defpath).split(":")
        if entry and not Path(entry).resolve().is_relative_to(drop_path_under.resolve())
    )
    return env
