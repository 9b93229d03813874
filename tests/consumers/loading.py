"""Running tests/consumers/validate.py in .venv-consumers, for any tier that pins files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALIDATE = Path(__file__).with_name("validate.py")
VENV = Path(os.environ.get("BUILDER_CONSUMERS_VENV", ROOT / ".venv-consumers"))
# Read at import: the autouse fixture of tests/conftest.py clears CI before each test.
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")


def consumers_python() -> Path:
    """The venv's interpreter; missing, a failure under CI=true and a skip elsewhere."""
    python = VENV / "bin" / "python"
    if not python.exists():
        message = f"{python} is missing: run scripts/consumers-env"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return python


def load(python: Path, *args: str | Path, home: Path) -> dict[str, Any]:
    """What validate.py reports; `home` is Airflow's scratch AIRFLOW_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    out = home / "loaded.json"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [str(python), str(VALIDATE), str(out), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def name_of(image: str) -> str:
    """`127.0.0.1:5000/demo/etl-orders:tag@sha256:...` -> `etl-orders`."""
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
