"""Generate a big, realistic monorepo of container images as a real git repository.

    python benchmarks/make_repo.py PATH [--images 1000] [--files 50000] [--seed 1]

The repo has ~5% base images under base-images/ in three layers (the first layer FROM
external images such as python:3.12-slim and debian:bookworm) and ETL images under images/,
each FROM one or two in-repo bases, written every way builder has to understand: plain
`FROM acme/<base>`, `ARG BUILDER_PREFIX` + `FROM ${BUILDER_PREFIX}/<base>`, multi-stage
builds, `COPY --from=` and `RUN --mount=from=` another in-repo image, image.yaml with
build_args, watch globs and a repo-root context, and .dockerignore files. The rest of the
file budget is source (py, sql, yaml, md) in the image contexts and a shared/ tree.

Two commits are made: the whole tree, then a small push touching a leaf image's source, a
base image's file, a watched shared/sql file and a .md file every context ignores. A
summary (including the files and images the push touched) is written to
`.git/bench-meta.json` inside the generated repo and printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

META_FILE = "bench-meta.json"  # under .git/, so it is never part of the tree
GIT_IDENTITY = (
    *("-c", "user.name=bench", "-c", "user.email=bench@example.invalid"),
    *("-c", "commit.gpgsign=false", "-c", "core.autocrlf=false"),
)
NAMESPACE = "acme"

EXTERNAL_BASES = (
    "python:3.12-slim",
    "debian:bookworm",
    "debian:bookworm-slim",
    "python:3.12-slim-bookworm",
    "ubuntu:24.04",
    "eclipse-temurin:21-jre",
    "python:3.11-slim@sha256:" + "4f5e" * 16,
)
FLAVOURS = (
    "python",
    "debian",
    "jvm",
    "spark",
    "dbt",
    "airflow",
    "duckdb",
    "geo",
    "ml",
    "node",
    "r",
    "go",
)
DOMAINS = (
    "billing",
    "crm",
    "ads",
    "finance",
    "inventory",
    "logistics",
    "marketing",
    "risk",
    "search",
    "support",
    "hr",
    "payments",
    "pricing",
    "catalog",
    "growth",
    "fraud",
)
VERBS = ("extract", "load", "transform", "dedupe", "enrich", "validate", "export", "sync")
NOUNS = ("orders", "invoices", "events", "accounts", "sessions", "refunds", "leads", "stock")
ENVS = ("dev", "staging", "prod")

DOCKERIGNORE = "*.md\n!README.md\ntests/\n**/__pycache__\n*.pyc\n.venv/\n"
ROOT_DOCKERIGNORE = (
    "# The repo-root context: only shared code and image sources, never docs or tests.\n"
    "*\n!shared/\n!images/\n**/*.md\n!**/README.md\n**/tests/\n**/__pycache__\n"
)


@dataclass
class Image:
    name: str
    root: str  # "base-images" or "images"
    layer: int  # 0, 1, 2 for bases; 3 for ETL images
    domain: str
    parents: list[str] = field(default_factory=list)
    dependants: int = 0
    root_context: bool = False
    has_ignore: bool = False
    notes_md: str | None = None  # a top-level .md its .dockerignore excludes
    watch: str | None = None  # shared/sql/<domain>/** when watched
    src_files: list[str] = field(default_factory=list)

    @property
    def directory(self) -> str:
        return f"{self.root}/{self.name}"

    @property
    def package(self) -> str:
        return self.name.replace("-", "_")


class Writer:
    """Writes files under a root, creating each directory once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self._dirs: set[str] = set()

    def write(self, relative: str, text: str) -> None:
        parent = relative.rpartition("/")[0]
        if parent and parent not in self._dirs:
            (self.root / parent).mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        (self.root / relative).write_text(text, encoding="utf-8")
        self.count += 1


# -- file contents --------------------------------------------------------------------------


def python_source(rng: random.Random, package: str, module: str, domain: str) -> str:
    verb, noun = rng.choice(VERBS), rng.choice(NOUNS)
    cls = noun.capitalize().rstrip("s")
    field_name = rng.choice(("customer_id", "region", "currency", "sku", "channel"))
    body = [
        f'"""{package}.{module}: {verb} {noun} for the {domain} pipeline."""',
        "",
        "from __future__ import annotations",
        "",
        "import logging",
        "from dataclasses import dataclass",
        "",
        "LOG = logging.getLogger(__name__)",
        f"BATCH_SIZE = {rng.choice((500, 1000, 5000, 10000))}",
        "",
        "",
        "@dataclass(frozen=True)",
        f"class {cls}:",
        "    id: int",
        f"    {field_name}: str",
        "    amount_cents: int",
        "",
    ]
    for i in range(rng.randint(1, 4)):
        body += [
            "",
            f"def {verb}_{noun}_{i}(rows: list[dict]) -> list[{cls}]:",
            "    out = []",
            "    for row in rows:",
            f'        if row.get("{field_name}") is None:',
            f'            LOG.warning("skipping row %s without {field_name}", row.get("id"))',
            "            continue",
            f"        out.append({cls}(",
            '            id=int(row["id"]),',
            f'            {field_name}=str(row["{field_name}"]),',
            '            amount_cents=round(float(row.get("amount", 0)) * 100),',
            "        ))",
            f'    LOG.info("{verb}_{noun}_{i}: %d rows", len(out))',
            "    return out",
            "",
        ]
    return "\n".join(body)


def sql_source(rng: random.Random, name: str, domain: str) -> str:
    table = f"{domain}.{rng.choice(NOUNS)}"
    column = rng.choice(("customer_id", "region", "currency", "sku", "channel"))
    return (
        f"-- {name}: daily {domain} rollup\n"  # noqa: S608 - fixture text, never executed
        f"WITH source AS (\n"
        f"    SELECT id, {column}, amount, updated_at\n"
        f"    FROM {table}\n"
        f"    WHERE updated_at >= DATE '{{{{ ds }}}}' - INTERVAL '{rng.randint(1, 30)}' DAY\n"
        f")\n"
        f"SELECT {column}, COUNT(*) AS n, SUM(amount) AS total\n"
        f"FROM source\n"
        f"GROUP BY {column}\n"
        f"ORDER BY total DESC;\n"
    )


def yaml_source(rng: random.Random, name: str, domain: str) -> str:
    return (
        f"# {name}\n"
        f"job: {name}\n"
        f"domain: {domain}\n"
        f"schedule: '{rng.randint(0, 59)} {rng.randint(0, 23)} * * *'\n"
        f"retries: {rng.randint(0, 5)}\n"
        f"source:\n  table: {domain}.{rng.choice(NOUNS)}\n"
        f"  batch_size: {rng.randint(1, 50) * 100}\n"
        f"sink:\n  bucket: s3://acme-{domain}-{rng.choice(ENVS)}\n  format: parquet\n"
    )


def markdown_source(rng: random.Random, title: str) -> str:
    return (
        f"# {title}\n\n"
        f"Owned by the {rng.choice(DOMAINS)} team. Runs {rng.choice(('hourly', 'daily'))}.\n\n"
        "## Operating\n\n- Re-run with `make backfill DS=YYYY-MM-DD`.\n"
        "- Alerts go to #data-oncall.\n"
    )


def requirements(rng: random.Random) -> str:
    pins = (
        "pandas==2.2.2",
        "pyarrow==16.1.0",
        "sqlalchemy==2.0.31",
        "boto3==1.34.131",
        "requests==2.32.3",
        "pydantic==2.7.4",
        "duckdb==1.0.0",
        "structlog==24.2.0",
    )
    return "\n".join(sorted(rng.sample(pins, rng.randint(2, 6)))) + "\n"


# -- Dockerfiles ----------------------------------------------------------------------------


def base_dockerfile(rng: random.Random, image: Image, parent: str | None) -> str:
    lines: list[str] = []
    if parent is None:
        external = rng.choice(EXTERNAL_BASES)
        if external.startswith("python:3.12") and rng.random() < 0.5:
            lines += ["ARG PYTHON_VERSION=3.12", "FROM python:${PYTHON_VERSION}-slim"]
        else:
            lines += [f"FROM {external}"]
        lines += [
            "ARG DEBIAN_FRONTEND=noninteractive",
            "RUN apt-get update \\",
            " && apt-get install -y --no-install-recommends ca-certificates curl tini \\",
            " && rm -rf /var/lib/apt/lists/*",
        ]
    elif image.layer == 1 and rng.random() < 0.5:
        lines += [
            f"ARG BUILDER_PREFIX=docker.io/{NAMESPACE}",
            "FROM golang:1.22-bookworm AS tools",
            "RUN go install github.com/acme/etl-tools/cmd/etlctl@v1.4.2",
            "",
            f"FROM ${{BUILDER_PREFIX}}/{parent}",
            "COPY --from=tools /go/bin/etlctl /usr/local/bin/etlctl",
        ]
    else:
        lines += [f"FROM {NAMESPACE}/{parent}"]
    lines += [
        "COPY requirements.txt /tmp/requirements.txt",
        "RUN pip install --no-cache-dir -r /tmp/requirements.txt",
        "COPY scripts/ /usr/local/bin/",
        f'LABEL org.opencontainers.image.title="{image.name}"',
    ]
    if parent is None:
        lines.append('ENTRYPOINT ["tini", "--"]')
    return "\n".join(lines) + "\n"


def etl_dockerfile(
    rng: random.Random,
    image: Image,
    bases: list[str],
    copy_from: str | None,
    mount_from: str | None,
) -> str:
    src = f"{image.directory}/" if image.root_context else ""
    lines: list[str] = [f"# syntax=docker/dockerfile:1.7\n# {image.name}: {image.domain} ETL job"]
    style = rng.random()
    final = bases[-1]
    if len(bases) == 2:
        lines += [
            f"FROM {NAMESPACE}/{bases[0]} AS deps",
            f"COPY {src}requirements.txt /tmp/requirements.txt",
            "RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r /tmp/requirements.txt",
            "",
            f"FROM {NAMESPACE}/{final}",
            "COPY --from=deps /opt/venv /opt/venv",
        ]
    elif style < 0.35:
        lines += [
            f"ARG BUILDER_PREFIX=docker.io/{NAMESPACE}",
            "ARG JOB_ENV=prod",
            f"FROM ${{BUILDER_PREFIX}}/{final}",
            "ARG JOB_ENV",
            "ENV JOB_ENV=${JOB_ENV}",
            f"COPY {src}requirements.txt /tmp/requirements.txt",
            "RUN pip install --no-cache-dir -r /tmp/requirements.txt",
        ]
    else:
        lines += [
            f"FROM {NAMESPACE}/{final}",
            f"COPY {src}requirements.txt /tmp/requirements.txt",
            "RUN --mount=type=cache,target=/root/.cache/pip pip install -r /tmp/requirements.txt",
        ]
    lines += ["WORKDIR /app", f"COPY {src}src/ /app/src/"]
    if image.root_context:
        lines.append("COPY shared/python/ /app/shared/")
    if copy_from is not None:
        lines.append(
            f"COPY --from={NAMESPACE}/{copy_from}:latest /app/src/ /app/vendor/{copy_from}/"
        )
    if mount_from is not None:
        lines += [
            (
                f"RUN --mount=type=bind,from={NAMESPACE}/{mount_from},"
                "source=/app/src,target=/mnt/lib \\"
            ),
            "    cp -r /mnt/lib /app/lib",
        ]
    lines += [
        "USER 10001",
        f'ENTRYPOINT ["python", "-m", "src.{image.package}.main"]',
    ]
    return "\n".join(lines) + "\n"


# -- the repo -------------------------------------------------------------------------------


def plan_images(rng: random.Random, total: int) -> tuple[list[Image], list[Image]]:
    n_base = max(3, round(total * 0.05))
    n_layer0 = max(1, round(n_base * 0.2))
    n_layer1 = max(1, round(n_base * 0.3))
    bases: list[Image] = []
    for i in range(n_base):
        layer = 0 if i < n_layer0 else 1 if i < n_layer0 + n_layer1 else 2
        flavour = FLAVOURS[i % len(FLAVOURS)]
        prefix = ("core", "runtime", "etl-base")[layer]
        bases.append(Image(f"{prefix}-{flavour}-{i:02d}", "base-images", layer, flavour))
    etls = []
    for i in range(total - n_base):
        domain = DOMAINS[i % len(DOMAINS)]
        job = f"{rng.choice(VERBS)}-{rng.choice(NOUNS)}"
        etls.append(Image(f"etl-{domain}-{job}-{i:04d}", "images", 3, domain))
    return bases, etls


def write_bases(rng: random.Random, w: Writer, bases: list[Image]) -> None:
    layers = [[b for b in bases if b.layer == k] for k in range(3)]
    for image in bases:
        parent = None
        if image.layer > 0:
            below = layers[image.layer - 1] or layers[0]
            parent = rng.choice(below).name
            image.parents.append(parent)
        d = image.directory
        w.write(f"{d}/Dockerfile", base_dockerfile(rng, image, parent))
        w.write(f"{d}/README.md", markdown_source(rng, image.name))
        w.write(f"{d}/requirements.txt", requirements(rng))
        w.write(f"{d}/scripts/entrypoint.sh", '#!/bin/sh\nset -eu\nexec "$@"\n')
        if rng.random() < 0.5:
            w.write(f"{d}/.dockerignore", DOCKERIGNORE)
            image.has_ignore = True
        if rng.random() < 0.3:
            w.write(
                f"{d}/image.yaml",
                "platforms: [linux/amd64, linux/arm64]\nbuild_args:\n  PYTHON_VERSION: '3.12'\n",
            )


def write_etls(rng: random.Random, w: Writer, bases: list[Image], etls: list[Image]) -> None:
    runtimes = [b.name for b in bases if b.layer == 1]
    etl_bases = [b.name for b in bases if b.layer == 2] or runtimes
    by_name = {b.name: b for b in bases}
    for i, image in enumerate(etls):
        d = image.directory
        image.root_context = rng.random() < 0.03
        chosen = [rng.choice(etl_bases)]
        if rng.random() < 0.15 and runtimes:
            chosen.insert(0, rng.choice(runtimes))
        copy_from = mount_from = None
        if i > 20 and rng.random() < 0.08:
            copy_from = etls[rng.randrange(i)].name
        if i > 20 and rng.random() < 0.02:
            mount_from = etls[rng.randrange(i)].name
        for parent in (*chosen, copy_from, mount_from):
            if parent is not None:
                image.parents.append(parent)
        for parent in image.parents:
            target = by_name.get(parent)
            if target is not None:
                target.dependants += 1
        by_name[image.name] = image
        w.write(f"{d}/Dockerfile", etl_dockerfile(rng, image, chosen, copy_from, mount_from))
        w.write(f"{d}/README.md", markdown_source(rng, image.name))
        w.write(f"{d}/requirements.txt", requirements(rng))
        pkg = f"{d}/src/{image.package}"
        w.write(f"{pkg}/__init__.py", f'"""{image.name}."""\n')
        w.write(f"{pkg}/main.py", python_source(rng, image.package, "main", image.domain))
        image.src_files.append(f"{pkg}/main.py")
        if rng.random() < 0.5:
            w.write(f"{d}/tests/test_main.py", "def test_imports():\n    import src  # noqa\n")
        yaml_lines = []
        if rng.random() < 0.15:
            yaml_lines += ["build_args:", f"  JOB_ENV: {rng.choice(ENVS)}"]
        if rng.random() < 0.12:
            image.watch = f"shared/sql/{image.domain}/**"
            yaml_lines += ["watch:", f"  - {image.watch}", "  - shared/config/prod/*.yaml"]
        if rng.random() < 0.05:
            yaml_lines += ["platforms: [linux/amd64]"]
        if image.root_context:
            yaml_lines += ["context: ../.."]
            if rng.random() < 0.5:  # BuildKit's per-Dockerfile ignore file beats the root one
                w.write(
                    f"{d}/Dockerfile.dockerignore",
                    f"*\n!{d}/\n!shared/python/\n**/*.md\n**/tests/\n",
                )
        if yaml_lines:
            w.write(f"{d}/image.yaml", "\n".join(yaml_lines) + "\n")
        if not image.root_context and rng.random() < 0.6:
            w.write(f"{d}/.dockerignore", DOCKERIGNORE)
            image.has_ignore = True
            if rng.random() < 0.6:
                image.notes_md = f"{d}/{rng.choice(('NOTES', 'CHANGELOG', 'RUNBOOK'))}.md"
                w.write(image.notes_md, markdown_source(rng, f"{image.name} notes"))


def write_root(w: Writer) -> None:
    w.write("builder.yaml", f"namespace: {NAMESPACE}\ndefault_branch: main\n")
    w.write(".dockerignore", ROOT_DOCKERIGNORE)
    w.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\n")
    w.write("README.md", "# acme data platform\n\nEvery ETL job ships as a container image.\n")
    w.write(
        ".github/workflows/images.yml",
        "name: images\non: [push, pull_request]\njobs:\n  build:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n        with: {fetch-depth: 0}\n"
        "      - run: builder build --push\n",
    )


def write_extras(rng: random.Random, w: Writer, images: list[Image], count: int) -> None:
    """Spread `count` source files over the image contexts (90%) and shared/ (10%)."""
    n_shared = count // 10
    weights = [rng.lognormvariate(0, 0.6) * (0.3 if i.layer < 3 else 1.0) for i in images]
    per_image = [0] * len(images)
    for index in rng.choices(range(len(images)), weights=weights, k=count - n_shared):
        per_image[index] += 1
    for image, n in zip(images, per_image, strict=True):
        d = image.directory
        for k in range(n):
            roll = rng.random()
            if image.layer < 3:
                w.write(f"{d}/scripts/step_{k:03d}.sh", f"#!/bin/sh\n# step {k}\nset -eu\n")
            elif roll < 0.5:
                path = f"{d}/src/{image.package}/mod_{k:03d}.py"
                w.write(path, python_source(rng, image.package, f"mod_{k:03d}", image.domain))
                image.src_files.append(path)
            elif roll < 0.7:
                w.write(f"{d}/sql/query_{k:03d}.sql", sql_source(rng, f"q{k}", image.domain))
            elif roll < 0.8:
                w.write(f"{d}/config/job_{k:03d}.yaml", yaml_source(rng, image.name, image.domain))
            elif roll < 0.95:
                w.write(f"{d}/tests/test_mod_{k:03d}.py", "def test_ok():\n    assert True\n")
            else:
                w.write(f"{d}/docs/page_{k:03d}.md", markdown_source(rng, f"{image.name} {k}"))
    for k in range(n_shared):
        domain = DOMAINS[k % len(DOMAINS)]
        roll = rng.random()
        if roll < 0.4:
            w.write(f"shared/sql/{domain}/view_{k:05d}.sql", sql_source(rng, f"v{k}", domain))
        elif roll < 0.8:
            lib = f"acme_{domain}"
            w.write(f"shared/python/{lib}/util_{k:05d}.py", python_source(rng, lib, "util", domain))
        elif roll < 0.95:
            env = ENVS[k % len(ENVS)]
            w.write(
                f"shared/config/{env}/{domain}_{k:05d}.yaml", yaml_source(rng, "shared", domain)
            )
        else:
            w.write(f"shared/docs/{domain}_{k:05d}.md", markdown_source(rng, f"shared {k}"))


def git(path: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=path, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)


def generate(path: Path, *, images: int, files: int, seed: int) -> dict[str, object]:
    started = time.perf_counter()
    if path.exists() and any(path.iterdir()):
        # Only ever replace a repo this script made: never a directory someone pointed at.
        if read_meta(path) is None:
            raise RuntimeError(f"{path} exists and is not a generated benchmark repo")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    # Mark the directory as ours at once, so an interrupted run can be replaced later.
    (path / ".git" / META_FILE).write_text('{"partial": true}\n', encoding="utf-8")
    rng = random.Random(seed)
    w = Writer(path)
    bases, etls = plan_images(rng, images)
    write_root(w)
    write_bases(rng, w, bases)
    write_etls(rng, w, bases, etls)
    all_images = bases + etls
    extras = max(0, files - w.count)
    write_extras(rng, w, all_images, extras)
    shared_sql = sorted(p.relative_to(path).as_posix() for p in path.glob("shared/sql/*/*.sql"))
    written = time.perf_counter()

    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Import the data platform")
    first = time.perf_counter()

    # The push: a leaf image's source, a base image's file, a watched shared/sql file and a
    # .md file that every context ignores.
    leaves = [i for i in etls if i.dependants == 0 and not i.root_context and i.src_files]
    leaf = rng.choice(leaves)
    base = rng.choice([b for b in bases if b.layer == 2] or bases)
    watched = {i.watch.split("/")[2] for i in etls if i.watch}
    sql = next((p for p in shared_sql if p.split("/")[2] in watched), None) or (
        shared_sql[0] if shared_sql else None
    )
    noted = [i for i in etls if i.notes_md and i is not leaf]
    md = rng.choice(noted).notes_md if noted else None
    changed = [rng.choice(leaf.src_files), f"{base.directory}/requirements.txt"]
    changed += [p for p in (sql, md) if p is not None]
    for rel in changed:
        append_line(path / rel, "\n" if rel.endswith(".md") else "# touched by the push\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Tweak a job, bump a base, edit a view, fix the notes")

    # A file for benchmarks to modify without committing: another leaf's source.
    others = [i for i in leaves if i is not leaf] or leaves
    worktree_file = rng.choice(rng.choice(others).src_files)
    tracked = len(git(path, "ls-files", "-z").split("\0")) - 1
    meta: dict[str, object] = {
        "images": images,
        "files": files,
        "seed": seed,
        "tracked_files": tracked,
        "base_images": len(bases),
        "etl_images": len(etls),
        "root_context_images": sum(i.root_context for i in etls),
        "watching_images": sum(bool(i.watch) for i in etls),
        "dockerignores": sum(i.has_ignore for i in all_images),
        "push_changed": changed,
        "push_leaf_image": leaf.name,
        "push_base_image": base.name,
        "worktree_file": worktree_file,
        "seconds_write": round(written - started, 2),
        "seconds_git": round(first - written, 2),
        "seconds_total": round(time.perf_counter() - started, 2),
    }
    (path / ".git" / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def read_meta(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads((path / ".git" / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", type=Path, help="where to create the repo (an earlier generated one is replaced)"
    )
    parser.add_argument("--images", type=int, default=1000, help="images in total (default 1000)")
    parser.add_argument("--files", type=int, default=50_000, help="tracked files (default 50000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    if args.images < 10 or args.files < 0:
        parser.error("--images must be at least 10 and --files not negative")
    try:
        meta = generate(args.path.resolve(), images=args.images, files=args.files, seed=args.seed)
    except (OSError, RuntimeError) as exc:
        print(f"make_repo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
