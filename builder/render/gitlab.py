"""GitLab CI's own formats: the dotenv report of a run's outputs, and the fan-out child
pipeline `builder plan --format gitlab-ci` writes (pure). ci/gitlab/README.md is the
contract for both; tests/integration/test_gitlab.py runs them under gitlab-ci-local.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from builder.plan import BuildPlan
from builder.reports import BuildReport

# GitLab refuses a dotenv report of 5 KiB or more (the `dotenv_size` instance limit) and
# takes each line as KEY=VALUE verbatim: no quotes, comments, blank lines or line breaks.
DOTENV_LIMIT = 5 * 1024
DOTENV_KEYS = ("BUILDER_BUILT", "BUILDER_FAILED", "BUILDER_TAGGED")
# What the child pipeline's jobs extend and where they keep digests and reports; the same
# names as the template's (ci/gitlab/.gitlab-ci.yml, builder.gitlab-ci.yml).
BASE_JOB = ".builder"
STAGE = "build"
DIGESTS_DIR = "digests"
METADATA_FILE = "builder-metadata.json"
JUNIT_FILE = "builder-junit.xml"
DOTENV_FILE = "builder.env"


def compute_dotenv(report: BuildReport, metadata_file: Path | None) -> dict[str, str]:
    """BUILDER_BUILT, BUILDER_FAILED and BUILDER_TAGGED as compact JSON lists of image names,
    and BUILDER_METADATA, the metadata file's path as given ("" without one). Lists too long
    for GitLab's limit lose their last names, and BUILDER_TRUNCATED=true says so: the
    metadata file has them all."""
    lists = {
        key: [n for n, r in report.results.items() if r.status == status]
        for key, status in zip(DOTENV_KEYS, ("built", "failed", "tagged"), strict=True)
    }
    metadata = " ".join(str(metadata_file).splitlines()) if metadata_file is not None else ""
    truncated = False
    while True:
        values = {key: json.dumps(names, separators=(",", ":")) for key, names in lists.items()}
        values["BUILDER_METADATA"] = metadata
        if truncated:
            values["BUILDER_TRUNCATED"] = "true"
        if len(render_dotenv(values).encode("utf-8")) < DOTENV_LIMIT:
            return values
        longest = max(lists.values(), key=lambda names: len(json.dumps(names)))
        if not longest:  # only an absurd metadata path is left: it cannot shrink
            values["BUILDER_METADATA"] = ""
            return values
        longest.pop()
        truncated = True


def render_dotenv(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def slug(platform: str) -> str:
    """`linux/arm64/v8` -> `linux-arm64-v8`, for job names."""
    return platform.replace("/", "-")


def build_job_name(image: str, platform: str) -> str:
    return f"build:{image}:{slug(platform)}"


def merge_job_name(image: str) -> str:
    return f"merge:{image}"


def compute_child_pipeline(plan: BuildPlan) -> dict[str, Any]:
    """The fan-out child pipeline: per image and platform a job that builds it and pushes
    it by digest, per image a job that merges the digests into its multi-arch tags. One
    stage; `needs:` orders the jobs along the image graph, so an image starts as soon as
    its in-repo parents are merged (no waves), and builds on them by digest."""
    jobs: dict[str, Any] = {}
    for build in plan.images:
        builds = () if build.existing is not None else build.platforms
        for platform in builds:
            script = (
                f"builder build --only {build.name} --platform {platform}"
                f" --push-by-digest --digests-dir {DIGESTS_DIR}"
            )
            jobs[build_job_name(build.name, platform)] = {
                "extends": BASE_JOB,
                "stage": STAGE,
                "needs": [{"job": merge_job_name(p), "artifacts": False} for p in build.requires],
                "script": [script],
                "artifacts": {"paths": [f"{DIGESTS_DIR}/"]},
            }
        merge = (
            f"builder merge --only {build.name} --digests-dir {DIGESTS_DIR}"
            f" --metadata-file {METADATA_FILE}"
        )
        jobs[merge_job_name(build.name)] = {
            "extends": BASE_JOB,
            "stage": STAGE,
            "needs": [{"job": build_job_name(build.name, p), "artifacts": True} for p in builds],
            # Already pushed under its content key: nothing to build, the merge job only
            # gives it this run's tags, from an empty digests directory.
            "script": [merge] if builds else [f"mkdir -p {DIGESTS_DIR}", merge],
            "artifacts": {
                "when": "always",
                "paths": [METADATA_FILE],
                "reports": {"junit": JUNIT_FILE, "dotenv": DOTENV_FILE},
            },
        }
    if not jobs:
        # GitLab refuses a pipeline without jobs, and with it the trigger job.
        jobs["builder:nothing-to-build"] = {
            "stage": STAGE,
            "script": ["echo 'builder: no image to build'"],
        }
    return {"stages": [STAGE], **jobs}


def render_child_pipeline(plan: BuildPlan) -> str:
    header = (
        "# The fan-out child pipeline, from `builder plan --format gitlab-ci`: one job per\n"
        "# image and platform, one merge job per image. Its jobs extend .builder, which the\n"
        "# trigger includes beside this file (ci/gitlab/.gitlab-ci.yml).\n"
    )
    body = yaml.safe_dump(compute_child_pipeline(plan), sort_keys=False, width=1000)
    return header + body
