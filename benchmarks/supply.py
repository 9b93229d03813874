"""What provenance, SBOMs and signatures cost per image on the demo repo (issue 14).

    eval "$(scripts/engine env)"; .venv/bin/python benchmarks/supply.py [--repeat 3]

Works on a fresh clone of this repository (its 6 demo images, both platforms) pushed to
throwaway namespaces of the loopback registry. Needs the engine up, the bases and
builder's SBOM generator seeded (`scripts/engine seed`) and cosign (`scripts/engine
cosign`).

Two variants of `builder build --all --push --no-reconcile`, alternated, BuildKit's cache
warm for the images themselves:
- plain: `provenance: off`, no SBOM, no signing;
- supply chain: `provenance: max`, an SBOM per platform by builder's own generator, and
  `--sign` with a cosign key (transparency log off, as for any loopback registry).
Each supply-chain run uses a generator image of its own (the seeded one plus an ENV
line), so BuildKit scans every image and platform again instead of reusing the last
run's scan: the figure includes the scans, not only the export and the signing.

This is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDER = [sys.executable, "-m", "builder"]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
SCANNER = "tools/sbom-scanner:1"


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def configure(clone: Path, env: dict[str, str], extra: str) -> None:
    """builder.yaml as the clone has it, plus `extra`, committed."""
    config = (ROOT / "builder.yaml").read_text(encoding="utf-8") + extra
    (clone / "builder.yaml").write_text(config, encoding="utf-8")
    run(["git", "commit", "-qam", "bench: supply chain settings"], clone, env)


def fresh_generator(registry: str, namespace: str, nonce: str, env: dict[str, str]) -> str:
    """The seeded generator with one more ENV line: a new digest, so nothing is reused."""
    ref = f"{registry}/{namespace}/scanner:{nonce}"
    with tempfile.TemporaryDirectory(prefix="builder-bench-scanner-") as tmp:
        Path(tmp, "Dockerfile").write_text(
            f"FROM {registry}/{SCANNER}\nENV BENCH_NONCE={nonce}\n", encoding="utf-8"
        )
        run(
            ["docker", "buildx", "build", "--provenance=false", "--platform",
             "linux/amd64,linux/arm64", "-t", ref, "--push", tmp],
            Path(tmp),
            env,
        )  # fmt: skip
    return ref


def timed_build(clone: Path, env: dict[str, str], namespace: str, *extra: str) -> float:
    started = time.perf_counter()
    run(
        [*BUILDER, "build", "--all", "--push", "--no-reconcile", *extra],
        clone,
        {**env, "BUILDER_NAMESPACE": namespace},
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, **GIT_ENV, "CI": "true"}
    env.pop("GITHUB_ACTIONS", None)
    registry = env.get("BUILDER_TEST_REGISTRY", "127.0.0.1:5000")
    password = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="builder-bench-") as tmp:
        clone = Path(tmp) / "repo"
        run(["git", "clone", "-q", str(ROOT), str(clone)], ROOT, env)
        keys = Path(tmp) / "keys"
        keys.mkdir()
        run(["cosign", "generate-key-pair"], keys, {**env, "COSIGN_PASSWORD": password})
        (clone / "cosign.pub").write_bytes((keys / "cosign.pub").read_bytes())
        run(["git", "add", "cosign.pub"], clone, env)
        signing = {
            "COSIGN_KEY": (keys / "cosign.key").read_text(encoding="utf-8"),
            "COSIGN_PASSWORD": password,
        }
        graph = run([*BUILDER, "graph", "--format", "json"], clone, env).stdout
        images = len(json.loads(graph)["nodes"])
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        plain: list[float] = []
        attested: list[float] = []
        for attempt in range(args.repeat + 1):  # the first round warms the cache
            configure(clone, env, "provenance: off\nsbom: false\n")
            seconds = timed_build(clone, env, f"{prefix}p{attempt}")
            if attempt:
                plain.append(seconds)
            generator = fresh_generator(registry, prefix, f"n{attempt}", env)
            configure(
                clone,
                env,
                f"provenance: max\nsbom:\n  generator: {generator}\nsigning:\n  key: cosign.pub\n",
            )
            seconds = timed_build(clone, {**env, **signing}, f"{prefix}s{attempt}", "--sign")
            if attempt:
                attested.append(seconds)
            kind = "warm-up" if attempt == 0 else f"round {attempt}"
            print(f"{kind}: supply chain {seconds:.2f} s", file=sys.stderr)
        p, a = statistics.median(plain), statistics.median(attested)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average at the end: {load} on {os.cpu_count()} cores", file=sys.stderr)
        print(f"| plain `builder build --all --push` (median of {len(plain)}) | {p:.2f} |")
        print(f"| with provenance max, SBOMs and `--sign` (median of {len(attested)}) | {a:.2f} |")
        print(f"| overhead, {images} images | {a - p:.2f} |")
        print(f"| overhead per image | {(a - p) / images:.2f} |")


if __name__ == "__main__":
    main()
