"""What testing each image costs, per image and platform, on the demo repo.

    eval "$(scripts/engine env)"; .venv/bin/python benchmarks/tests.py [--repeat 3]

Works on a fresh clone of this repository (its demo images; the three ETL jobs have a
`test:` of two commands each) pushed to a throwaway namespace of the loopback registry.
Needs the engine up and the upstream bases seeded. Four measurements:

1. In a push: `builder build --all` and the seconds each image's tests took per
   platform, as the metadata file reports them (pulling the platform included).
2. Again, alone: `builder test --only NAME --platform P`, repeated; the seconds builder
   measured around the tests (the image is in the engine's store by then), and the
   command's wall time (start-up, planning, the registry's keys).
3. The floor per platform: one `docker run` of the same image doing nothing
   (`/bin/sh -c true`), and one starting Python (`python3 -c pass`): what any test
   command pays before it does anything; arm64 runs under QEMU here.
4. A whole warm build with the tests and without them (`test: false`), keys off so both
   rebuild from cache and push: what the tests add to a run's wall time (with -j 2, tests
   of one image overlap another's build).

This is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILDER = [sys.executable, "-m", "builder"]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
PLATFORMS = ("linux/amd64", "linux/arm64")
_TESTED_RE = re.compile(r"^tested (\S+) on (\S+): passed in ([0-9.]+)s", re.MULTILINE)


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed, done.stdout, done.stderr


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, **GIT_ENV, "CI": "true"}
    env.pop("GITHUB_ACTIONS", None)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="builder-bench-tests-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env["BUILDER_NAMESPACE"] = f"bench{uuid.uuid4().hex[:6]}"

        # 1. A push, tests included.
        meta = Path(tmp) / "meta.json"
        pushed, _, _ = run([*BUILDER, "build", "--all", "--metadata-file", str(meta)], clone, env)
        images = json.loads(meta.read_text(encoding="utf-8"))["images"]
        tested = {n: d for n, d in images.items() if d["tests"]}
        report["push with tests, wall (s)"] = round(pushed, 2)
        report["in the push (s)"] = {
            n: {t["platform"]: t["seconds"] for t in d["tests"]} for n, d in tested.items()
        }

        # 2. Each image and platform alone, with builder test.
        alone: dict[str, dict[str, dict[str, float]]] = {}
        for name in tested:
            for platform in PLATFORMS:
                inner, wall = [], []
                for _ in range(args.repeat):
                    argv = [*BUILDER, "test", "--only", name, "--platform", platform]
                    elapsed, _, stderr = run(argv, clone, env)
                    [(_, _, seconds)] = _TESTED_RE.findall(stderr)
                    inner.append(float(seconds))
                    wall.append(elapsed)
                alone.setdefault(name, {})[platform] = {
                    "tests (s)": median(inner),
                    "builder test wall (s)": median(wall),
                }
        report["alone, median (s)"] = alone

        # 3. The floor: a container that does nothing, and one that starts Python.
        reference = str(images["etl-orders"]["pinned"])
        floors: dict[str, dict[str, float]] = {}
        for platform in PLATFORMS:
            for label, argv in (
                ("sh -c true", ["--entrypoint", "/bin/sh", reference, "-c", "true"]),
                ("python3 -c pass", ["--entrypoint", "python3", reference, "-c", "pass"]),
            ):
                docker = [
                    "docker", "run", "--rm", "--pull", "never", "--network", "none",
                    "--platform", platform, *argv,
                ]  # fmt: skip
                times = [run(docker, clone, env)[0] for _ in range(args.repeat)]
                floors.setdefault(platform, {})[label] = median(times)
        report["one container, median (s)"] = floors

        # 4. A warm build with and without the tests.
        build_all = [*BUILDER, "build", "--all", "--no-reconcile"]
        run(build_all, clone, env)  # warm
        with_tests = median([run(build_all, clone, env)[0] for _ in range(args.repeat)])
        for config in clone.glob("images/*/image.yaml"):
            config.write_text("test: false\n", encoding="utf-8")
        subprocess.run(["git", "commit", "-qam", "bench: no tests"], cwd=clone, env=env, check=True)
        run(build_all, clone, env)  # warm, under this commit's tags
        without = median([run(build_all, clone, env)[0] for _ in range(args.repeat)])
        report["warm build --all, with tests (median s)"] = with_tests
        report["warm build --all, without tests (median s)"] = without
        report["tests add (s)"] = round(with_tests - without, 2)

    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
