"""The GitLab CI template (ci/gitlab/) run for real by gitlab-ci-local's shell executor,
against the real engine and the loopback registry.

gitlab-ci-local 4.60.0 (`.ci/install-gitlab-ci-local` puts it in .ci/node) runs each job
in an rsync'ed copy of the repository (`--shell-isolation`), with its state outside the
repository (`--state-dir`), so the checkout stays clean as on a real runner. builder comes
from this checkout's virtualenv: the template's `before_script` installs it only when
`builder` is not on PATH. The pipeline kind is GitLab's own variable, CI_PIPELINE_SOURCE.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import ROOT, MakeRepo, Repo
from tests.integration.test_faults import independent_images

pytestmark = pytest.mark.engine

TEMPLATE = ROOT / "ci" / "gitlab"
PIPELINE = "ci/gitlab/.gitlab-ci.yml"
VERSION = "4.60.0"


@dataclass(frozen=True)
class GitlabCiLocal:
    executable: str

    def run(
        self,
        repo: Repo,
        state: Path,
        *args: str,
        variables: Mapping[str, str] | None = None,
        file: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            self.executable,
            "--file",
            PIPELINE if file is None else os.path.relpath(file, repo.path),
            "--state-dir",
            os.path.relpath(state, repo.path),
            "--shell-isolation",
            "--no-color",
        ]
        # What a GitLab runner sets and gitlab-ci-local does not (it says GITLAB_CI=false).
        for key, value in {"GITLAB_CI": "true", **(variables or {})}.items():
            argv += ["--variable", f"{key}={value}"]
        env = {
            **repo.engine.env,
            # builder from this checkout: the template skips its pip install then.
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', os.defpath)}",
        }
        return subprocess.run(
            [*argv, *args],
            cwd=repo.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    def jobs(self, repo: Repo, state: Path, variables: Mapping[str, str]) -> set[str]:
        """The jobs a pipeline of this kind would run (rules evaluated by gitlab-ci-local)."""
        done = self.run(repo, state, "--list-json", variables=variables)
        assert done.returncode == 0, done.stdout + done.stderr
        listed = json.loads(done.stdout[done.stdout.index("\n[") :])
        return {job["name"] for job in listed if job.get("when") != "never"}


@pytest.fixture(scope="session")
def gitlab_ci_local() -> GitlabCiLocal:
    """gitlab-ci-local from .ci/node (or PATH); a loud failure under CI=true when missing."""
    local = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "gitlab-ci-local"
    executable = str(local) if local.exists() else shutil.which("gitlab-ci-local")
    problem = None
    if executable is None:
        problem = "gitlab-ci-local is not installed"
    elif shutil.which("rsync") is None:
        problem = "rsync is not installed (gitlab-ci-local's shell isolation needs it)"
    else:
        done = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        if done.stdout.strip() != VERSION:
            problem = f"gitlab-ci-local {VERSION} wanted, found {done.stdout.strip()!r}"
    if problem is not None:
        message = f"{problem}: run .ci/install-gitlab-ci-local"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)  # only outside CI: CI=true fails above
    assert executable is not None
    return GitlabCiLocal(executable)


def gitlab_repo(make_build_repo: MakeRepo, names: tuple[str, ...]) -> Repo:
    """A pushed repository with the template at ci/gitlab/, as a consumer would have it."""
    files = independent_images(names)
    for path in TEMPLATE.glob("*.yml"):
        files[f"ci/gitlab/{path.name}"] = path.read_text(encoding="utf-8")
    repo = make_build_repo(files)
    repo.git("remote", "add", "origin", "https://gitlab.example.invalid/acme/monorepo.git")
    repo.builder("build", "--all", check_exit=0)  # the state before the pipeline's push
    return repo


def job_output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


PLATFORMS = ("linux/amd64", "linux/arm64")


def slug(platform: str) -> str:
    return platform.replace("/", "-")


def expected_child(parents: Mapping[str, tuple[str, ...]]) -> dict[str, object]:
    """What `builder plan --format gitlab-ci` is to write for these images (image -> its
    in-repo parents built in the same plan): one job per image and platform, a merge job per
    image, all in one stage and ordered by `needs:` along the image graph. The jobs extend
    `.builder`, which the trigger includes from builder.gitlab-ci.yml."""
    child: dict[str, object] = {"stages": ["build"]}
    for image, image_parents in parents.items():
        for platform in PLATFORMS:
            child[f"build:{image}:{slug(platform)}"] = {
                "extends": ".builder",
                "stage": "build",
                "needs": [{"job": f"merge:{p}", "artifacts": False} for p in image_parents],
                "script": [
                    (
                        f"builder build --only {image} --platform {platform}"
                        " --push-by-digest --digests-dir digests"
                    )
                ],
                "artifacts": {"paths": ["digests/"]},
            }
        child[f"merge:{image}"] = {
            "extends": ".builder",
            "stage": "build",
            "needs": [{"job": f"build:{image}:{slug(p)}", "artifacts": True} for p in PLATFORMS],
            "script": [
                (
                    f"builder merge --only {image} --digests-dir digests"
                    " --metadata-file builder-metadata.json"
                )
            ],
            "artifacts": {
                "when": "always",
                "paths": ["builder-metadata.json"],
                "reports": {"junit": "builder-junit.xml", "dotenv": "builder.env"},
            },
        }
    return child


def run_child(
    gitlab_ci_local: GitlabCiLocal, repo: Repo, state: Path, child: Mapping[str, object]
) -> subprocess.CompletedProcess[str]:
    """The trigger's pipeline: builder.gitlab-ci.yml included beside the generated jobs.
    gitlab-ci-local does not run triggers, so the child runs as a pipeline of its own."""
    combined = {"include": [{"local": "ci/gitlab/builder.gitlab-ci.yml"}], **child}
    path = repo.path / "ci" / "gitlab" / "child-pipeline.yml"
    path.write_text(yaml.safe_dump(dict(combined), sort_keys=False), encoding="utf-8")
    return gitlab_ci_local.run(
        repo, state, variables={"CI_PIPELINE_SOURCE": "parent_pipeline"}, file=path
    )


def test_the_template_is_schema_valid_for_gitlab() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.gitlab-ci", *map(str, TEMPLATE.glob("*.yml"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.name for p in TEMPLATE.glob("*.yml")} == {".gitlab-ci.yml", "builder.gitlab-ci.yml"}


def test_each_pipeline_kind_runs_its_jobs(
    gitlab_ci_local: GitlabCiLocal, make_build_repo: MakeRepo, tmp_path: Path
):
    files = {f"ci/gitlab/{p.name}": p.read_text(encoding="utf-8") for p in TEMPLATE.glob("*.yml")}
    repo = make_build_repo({**independent_images(("alpha",)), **files})
    repo.git("remote", "add", "origin", "https://gitlab.example.invalid/acme/monorepo.git")
    state = tmp_path / "state"
    kinds = {
        "push": {"build"},
        "web": {"build"},
        "merge_request_event": {"build:mr"},
        "schedule": {"refresh"},
    }
    for source, expected in kinds.items():
        jobs = gitlab_ci_local.jobs(repo, state, {"CI_PIPELINE_SOURCE": source})
        assert jobs == expected, source
    fanout = {"CI_PIPELINE_SOURCE": "push", "BUILDER_FANOUT": "true"}
    assert gitlab_ci_local.jobs(repo, state, fanout) == {"plan", "fanout"}


def test_push_pipeline_builds_and_pushes_the_change(
    gitlab_ci_local: GitlabCiLocal, make_build_repo: MakeRepo, tmp_path: Path
):
    repo = gitlab_repo(make_build_repo, ("alpha", "beta"))
    before = repo.git("rev-parse", "HEAD")
    after = repo.commit({"images/alpha/payload.txt": "alpha v2\n"})
    done = gitlab_ci_local.run(
        repo,
        tmp_path / "state",
        "build",
        variables={"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BEFORE_SHA": before},
    )
    assert done.returncode == 0, job_output(done)
    assert "PASS  build" in done.stdout, job_output(done)
    assert "1 built" in done.stdout, job_output(done)
    api = repo.engine.api
    assert f"git-{after[:7]}" in api.release_tags(repo.repository("alpha"))
    assert f"git-{after[:7]}" not in api.release_tags(repo.repository("beta"))
    # The metadata file is the job's artifact, copied back beside the checkout.
    images = repo.metadata(repo.path / "builder-metadata.json")
    assert {n: d["status"] for n, d in images.items()} == {"alpha": "built", "beta": "unchanged"}


def test_merge_request_pipeline_builds_without_pushing(
    gitlab_ci_local: GitlabCiLocal, make_build_repo: MakeRepo, tmp_path: Path
):
    repo = gitlab_repo(make_build_repo, ("alpha", "beta"))
    base = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "-q", "-b", "feature")
    head = repo.commit({"images/beta/payload.txt": "beta v2\n"})
    done = gitlab_ci_local.run(
        repo,
        tmp_path / "state",
        "build:mr",
        variables={
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
        },
    )
    assert done.returncode == 0, job_output(done)
    assert "PASS  build:mr" in done.stdout, job_output(done)
    images = repo.metadata(repo.path / "builder-metadata.json")
    assert images["beta"]["status"] == "built"
    assert images["beta"]["digest"] is None, "a merge request pipeline never pushes"
    for name in ("alpha", "beta"):
        assert f"git-{head[:7]}" not in repo.engine.api.tags(repo.repository(name))


def test_schedule_pipeline_refreshes(
    gitlab_ci_local: GitlabCiLocal, make_build_repo: MakeRepo, tmp_path: Path
):
    repo = gitlab_repo(make_build_repo, ("alpha",))
    done = gitlab_ci_local.run(
        repo, tmp_path / "state", "refresh", variables={"CI_PIPELINE_SOURCE": "schedule"}
    )
    assert done.returncode == 0, job_output(done)
    assert "PASS  refresh" in done.stdout, job_output(done)
    images = repo.metadata(repo.path / "builder-metadata.json")
    assert images["alpha"]["status"] == "unchanged", "nothing moved upstream"


# -- what builder itself writes and generates under GitLab -------------------------------


def test_build_job_leaves_junit_and_dotenv_reports(
    gitlab_ci_local: GitlabCiLocal, make_build_repo: MakeRepo, tmp_path: Path
):
    """builder under GitLab CI writes builder-junit.xml (one test case per planned image)
    and builder.env (the outputs) in the directory it runs in. gitlab-ci-local keeps the
    dotenv report (and copies it back beside the checkout) but not the JUnit one: that is
    read from the job's own directory, where a runner would upload it from."""
    repo = gitlab_repo(make_build_repo, ("alpha", "beta"))
    before = repo.git("rev-parse", "HEAD")
    repo.commit({"images/alpha/payload.txt": "alpha v2\n"})
    state = tmp_path / "state"
    done = gitlab_ci_local.run(
        repo,
        state,
        "build",
        variables={"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BEFORE_SHA": before},
    )
    assert done.returncode == 0, job_output(done)
    assert "artifact reports dotenv 'builder.env' could not be found" not in done.stderr
    assert (
        state / "artifacts" / "build" / ".gitlab-ci-reports" / "dotenv" / "builder.env"
    ).is_file()

    junit = state / "builds" / "build" / "builder-junit.xml"
    report = ET.parse(junit).getroot()  # noqa: S314 (our own file)
    (suite,) = (s for s in report.iter("testsuite") if s.get("name") == "builder build")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"alpha"}
    assert cases["alpha"].find("failure") is None
    assert cases["alpha"].find("skipped") is None

    dotenv = dict(
        line.split("=", 1)
        for line in (repo.path / "builder.env").read_text(encoding="utf-8").splitlines()
        if line
    )
    assert json.loads(dotenv["BUILDER_BUILT"]) == ["alpha"]
    assert json.loads(dotenv["BUILDER_FAILED"]) == []
    assert json.loads(dotenv["BUILDER_TAGGED"]) == []
    assert dotenv["BUILDER_METADATA"] == "builder-metadata.json"


def test_a_child_pipeline_of_the_assumed_shape_builds_and_merges(
    gitlab_ci_local: GitlabCiLocal, make_build_repo: MakeRepo, tmp_path: Path
):
    """The fan-out half the template owns, today: a child of the shape builder is to
    generate (expected_child) runs with the trigger's include, passes digests from the
    per-platform jobs to the merge job, and pushes a multi-arch image."""
    repo = gitlab_repo(make_build_repo, ("alpha",))
    after = repo.commit({"images/alpha/payload.txt": "alpha v2\n"})
    done = run_child(gitlab_ci_local, repo, tmp_path / "state", expected_child({"alpha": ()}))
    assert done.returncode == 0, job_output(done)
    for job in ("build:alpha:linux-amd64", "build:alpha:linux-arm64", "merge:alpha"):
        assert f"PASS  {job}" in done.stdout, job_output(done)
    api = repo.engine.api
    assert f"git-{after[:7]}" in api.release_tags(repo.repository("alpha"))
    assert set(api.platforms(repo.repository("alpha"), f"git-{after[:7]}")) == set(PLATFORMS)


def test_plan_writes_the_child_pipeline_and_it_runs(
    gitlab_ci_local: GitlabCiLocal, make_build_repo: MakeRepo, tmp_path: Path
):
    """`plan` (BUILDER_FANOUT=true) writes child.yml: expected_child for the change, which
    then runs as the trigger would run it."""
    repo = gitlab_repo(make_build_repo, ("alpha",))
    before = repo.git("rev-parse", "HEAD")
    after = repo.commit(
        {
            "images/alpha/payload.txt": "alpha v2\n",
            "images/omega/Dockerfile": (
                "ARG BUILDER_PREFIX=docker.io/acme\nFROM ${BUILDER_PREFIX}/alpha\n"
                "COPY payload.txt /omega.txt\n"
            ),
            "images/omega/payload.txt": "omega\n",
        }
    )
    variables = {
        "CI_PIPELINE_SOURCE": "push",
        "BUILDER_FANOUT": "true",
        "CI_COMMIT_BEFORE_SHA": before,
    }
    planned = gitlab_ci_local.run(repo, tmp_path / "state", "plan", variables=variables)
    assert planned.returncode == 0, job_output(planned)
    child = yaml.safe_load((repo.path / "child.yml").read_text(encoding="utf-8"))
    assert child == expected_child({"alpha": (), "omega": ("alpha",)})

    done = run_child(gitlab_ci_local, repo, tmp_path / "child-state", child)
    assert done.returncode == 0, job_output(done)
    for image in ("alpha", "omega"):
        tags = repo.engine.api.release_tags(repo.repository(image))
        assert f"git-{after[:7]}" in tags
        assert set(repo.engine.api.platforms(repo.repository(image), "latest")) == set(PLATFORMS)
    # Each merge job leaves its image's JUnit report (gitlab-ci-local keeps it in the job's
    # directory; job names are encoded there, hence the glob).
    reports = sorted((tmp_path / "child-state" / "builds").glob("merge*/builder-junit.xml"))
    cases = [c for r in reports for c in ET.parse(r).getroot().iter("testcase")]  # noqa: S314
    assert sorted(c.get("name") for c in cases) == ["alpha", "omega"]
    assert all(list(c) and c[0].tag == "system-out" for c in cases), "both passed"
