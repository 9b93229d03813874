"""The Jenkinsfile template (ci/jenkins/): no Jenkins runs here, so its builder stage's `sh`
script runs as Jenkins runs one (the text written to a file and executed, its `#!/bin/bash`
honoured), with the variables Jenkins and `withCredentials` would set, against the real
engine and the loopback registry."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.integration.conftest import GIT_ENV, ROOT, MakeRepo, Repo
from tests.integration.test_faults import independent_images, watching_argv

pytestmark = pytest.mark.engine

JENKINSFILE = ROOT / "ci" / "jenkins" / "Jenkinsfile"
SH_STEP = re.compile(r"sh '''(?P<script>#!.*?)'''", re.DOTALL)
ENVIRONMENT = re.compile(r"^    environment \{\n(?P<body>.*?)^    \}", re.DOTALL | re.MULTILINE)
ENTRY = re.compile(r"^\s*(?P<key>\w+) = '(?P<value>[^']*)'\s*$", re.MULTILINE)
USER = "jenkins-bot"


def stage_script() -> str:
    (script,) = [m["script"] for m in SH_STEP.finditer(JENKINSFILE.read_text(encoding="utf-8"))]
    return script


def pipeline_environment() -> dict[str, str]:
    """The pipeline's `environment {}` block, as Jenkins exports it to every step."""
    found = ENVIRONMENT.search(JENKINSFILE.read_text(encoding="utf-8"))
    assert found, "the Jenkinsfile has no environment block"
    return {m["key"]: m["value"] for m in ENTRY.finditer(found["body"])}


def run_stage(
    repo: Repo, tmp_path: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.sh"
    script.write_text(stage_script(), encoding="utf-8")
    script.chmod(0o700)
    workspace_tmp = tmp_path / "workspace@tmp"
    workspace_tmp.mkdir(exist_ok=True)
    base = {k: v for k, v in repo.engine.env.items() if k != "CI"}  # Jenkins sets none
    full_env = {
        **base,
        **GIT_ENV,
        **pipeline_environment(),
        # builder from this checkout: the script skips its pip install then.
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', os.defpath)}",
        "JENKINS_URL": "https://jenkins.example.invalid/",
        "BUILD_ID": "42",
        "WORKSPACE": str(repo.path),
        "WORKSPACE_TMP": str(workspace_tmp),
        "GIT_COMMIT": repo.git("rev-parse", "HEAD"),
        **env,
    }
    for key in ("GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_EVENT_NAME", "GITLAB_CI"):
        full_env.pop(key, None)
    return subprocess.run(
        [str(script)],
        cwd=repo.path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def test_the_jenkinsfile_is_declarative_and_keeps_secrets_out_of_groovy() -> None:
    text = JENKINSFILE.read_text(encoding="utf-8")
    assert text.lstrip("/ \n").startswith("builder on Jenkins")
    assert re.search(r"^pipeline \{$", text, re.MULTILINE)
    assert len(re.findall(r"\bstage\('", text)) == 1, "one builder stage"
    assert "usernamePassword(" in text
    assert "usernameVariable: 'BUILDER_REGISTRY_USER'" in text
    assert "passwordVariable: 'BUILDER_REGISTRY_PASSWORD'" in text
    assert "junit testResults: 'builder-junit.xml'" in text
    # No Groovy string interpolation anywhere near a secret: no "..." / \"\"\" sh steps.
    assert 'sh "' not in text
    assert '"""' not in text
    # builder reads GIT_PREVIOUS_SUCCESSFUL_COMMIT and CHANGE_TARGET itself (builder/ci.py).
    assert "--base" not in stage_script()
    assert pipeline_environment()["CI"] == "true"
    assert pipeline_environment()["BUILDER_PIP_SPEC"].startswith("git+https://")
    assert "PASSWORD" not in stage_script().replace(
        "unset BUILDER_REGISTRY_USER BUILDER_REGISTRY_PASSWORD", ""
    ), "the script never reads the password itself"


def test_a_branch_build_pushes_everything_since_the_last_green_build(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(independent_images(("alpha", "beta")))
    repo.builder("build", "--all", check_exit=0)
    green = repo.git("rev-parse", "HEAD")
    repo.commit({"images/alpha/payload.txt": "alpha v2\n"})  # its build failed, say
    head = repo.commit({"images/beta/payload.txt": "beta v2\n"})
    password = f"pw-{uuid.uuid4().hex}"
    needles = (password.encode(), base64.b64encode(f"{USER}:{password}".encode()))

    with watching_argv(*needles) as watch:
        done = run_stage(
            repo,
            tmp_path,
            {
                "BRANCH_NAME": "main",
                "GIT_PREVIOUS_SUCCESSFUL_COMMIT": green,
                "BUILDER_REGISTRY_USER": USER,  # as withCredentials binds them
                "BUILDER_REGISTRY_PASSWORD": password,
            },
        )
    assert done.returncode == 0, output(done)
    images = repo.metadata(repo.path / "builder-metadata.json")
    # HEAD~1 alone would have built beta only.
    assert {n: d["status"] for n, d in images.items()} == {"alpha": "built", "beta": "built"}
    for name in ("alpha", "beta"):
        assert f"git-{head[:7]}" in repo.engine.api.release_tags(repo.repository(name))
    assert f"logged in to {repo.engine.registry} as {USER}" in done.stderr
    assert "bake" in watch.commands, "the watch never saw buildx run: it proves nothing"
    assert watch.hits == []
    assert password not in done.stdout + done.stderr


def test_a_pull_request_build_compares_with_its_target_and_never_pushes(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(independent_images(("alpha", "beta")))
    repo.builder("build", "--all", check_exit=0)
    repo.git("update-ref", "refs/remotes/origin/main", "HEAD")
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"images/alpha/payload.txt": "alpha v2\n"})
    head = repo.commit({"README.md": "docs\n"})
    done = run_stage(
        repo,
        tmp_path,
        {
            "BRANCH_NAME": "PR-7",
            "CHANGE_ID": "7",
            "CHANGE_TARGET": "main",
            "BUILDER_REGISTRY_USER": USER,
            "BUILDER_REGISTRY_PASSWORD": "never-used",
        },
    )
    assert done.returncode == 0, output(done)
    assert "logged in" not in done.stderr
    images = repo.metadata(repo.path / "builder-metadata.json")
    assert images["alpha"]["status"] == "built", "the pull request's whole change"
    assert images["alpha"]["digest"] is None
    assert f"git-{head[:7]}" not in repo.engine.api.tags(repo.repository("alpha"))


def test_the_stage_leaves_the_junit_report_jenkins_archives(
    make_build_repo: MakeRepo, tmp_path: Path
):
    """The `junit` step's file: a test case per image the build planned, a failure with
    its log's tail for an image that failed, the image built on it skipped."""
    repo = make_build_repo(
        {
            **independent_images(("alpha", "beta")),
            "images/child/Dockerfile": (
                "ARG BUILDER_PREFIX=docker.io/acme\nFROM ${BUILDER_PREFIX}/beta\n"
            ),
        }
    )
    repo.builder("build", "--all", check_exit=0)
    green = repo.git("rev-parse", "HEAD")
    repo.commit(
        {
            "images/alpha/payload.txt": "alpha v2\n",
            "images/beta/Dockerfile": (
                "FROM 127.0.0.1:5000/upstream/busybox:latest\n"
                "RUN echo 'beta breaks here' && exit 3\n"
            ),
        }
    )
    done = run_stage(
        repo, tmp_path, {"BRANCH_NAME": "main", "GIT_PREVIOUS_SUCCESSFUL_COMMIT": green}
    )
    assert done.returncode == 1, output(done)  # an image failed: the stage fails

    report = ET.parse(repo.path / "builder-junit.xml").getroot()  # noqa: S314 (our own file)
    (suite,) = report.iter("testsuite")
    assert suite.get("name") == "builder build"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"alpha", "beta", "child"}, "beta's dependant too; unchanged none"
    assert [c.tag for c in cases["alpha"]] == ["system-out"]
    failure = cases["beta"].find("failure")
    assert failure is not None
    assert "beta breaks here" in (failure.text or "")
    skipped = cases["child"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "parent beta failed"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    # The outputs beside it, for a later stage's readProperties.
    env = (repo.path / "builder.env").read_text(encoding="utf-8").splitlines()
    assert env[:3] == ['BUILDER_BUILT=["alpha"]', 'BUILDER_FAILED=["beta"]', "BUILDER_TAGGED=[]"]
