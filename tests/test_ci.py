"""The CI facts: every variable GitHub Actions, GitLab CI and Jenkins set that builder reads,
what `compute_ci_facts` makes of it, and how the range, tags and reports follow from it.
Also: nothing in the package but ci.py, context.py and cli.py names a CI variable."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from builder.ci import DOTENV_FILE, JUNIT_FILE, NULL_SHA, CIFacts, compute_ci_facts
from builder.context import Credentials, compute_context, compute_credentials
from builder.errors import ConfigError
from builder.model import Settings
from builder.pipeline import compute_revision
from builder.repo import Overrides
from builder.reports import Selection
from builder.workspace import select
from tests.conftest import commit, git, invoke

MakeRepo = Callable[..., Path]
PACKAGE = Path(__file__).resolve().parent.parent / "builder"
SHA = "1" * 40
BEFORE = "2" * 40
BASE = "3" * 40
UNKNOWN_CI = (
    "CI=true but no CI system builder knows (it looked for GITHUB_ACTIONS, GITLAB_CI and "
    "JENKINS_URL): comparing with HEAD~1; pass --base to say more"
)
FIRST_JENKINS_BUILD = (
    "Jenkins gave no GIT_PREVIOUS_SUCCESSFUL_COMMIT (a first build): comparing with HEAD~1"
)
GITLAB = {"CI": "true", "GITLAB_CI": "true"}
GITLAB_REPORTS = {"junit": JUNIT_FILE, "dotenv": DOTENV_FILE}
JENKINS = {"CI": "true", "JENKINS_URL": "https://jenkins.example.invalid/"}


def facts(environ: Mapping[str, str], **files: str) -> CIFacts:
    """`compute_ci_facts` with GitHub's event file read from `files` (a path -> its text)."""

    def read_text(path: Path, encoding: str = "utf-8") -> str:
        assert encoding == "utf-8"
        if str(path) not in files:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return files[str(path)]

    return compute_ci_facts(environ, read_text=read_text)


# -- no CI, and a CI builder does not know ---------------------------------------------------


@pytest.mark.parametrize("environ", [{}, {"CI": "false"}, {"CI": ""}, {"GITLAB_CI": "false"}])
def test_outside_ci_there_are_no_facts(environ: dict[str, str]) -> None:
    assert facts(environ) == CIFacts()
    assert not facts(environ).active


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_an_unknown_ci_names_the_variables_it_looked_for(value: str) -> None:
    found = facts({"CI": value, "BUILDKITE": "true", "GIT_COMMIT": SHA})
    assert found == CIFacts(system="generic", warnings=(UNKNOWN_CI,))
    assert found.active
    assert not found.annotations


def test_gitlab_ci_local_says_gitlab_ci_false_and_is_an_unknown_ci() -> None:
    """gitlab-ci-local sets GITLAB_CI=false and CI=true; only a real runner says true."""
    assert facts({"CI": "true", "GITLAB_CI": "false", "CI_COMMIT_BEFORE_SHA": BEFORE}) == CIFacts(
        system="generic", warnings=(UNKNOWN_CI,)
    )


def test_github_beats_gitlab_beats_jenkins() -> None:
    """A runner inside a runner (GitLab's shell executor on a Jenkins agent, act on GitLab):
    the innermost system sets its own variable last, but builder's order is fixed."""
    every = {**JENKINS, **GITLAB, "GITHUB_ACTIONS": "true"}
    assert facts(every).system == "github"
    assert facts({**JENKINS, **GITLAB}).system == "gitlab"
    assert facts({**JENKINS, "JENKINS_URL": "", "JENKINS_HOME": "/var/jenkins"}).system == (
        "jenkins"
    )


# -- GitHub Actions ----------------------------------------------------------------------------


def github(event_name: str, **more: str) -> dict[str, str]:
    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": "/runner/event.json",
        "GITHUB_SHA": SHA,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/monorepo",
        "GITHUB_OUTPUT": "/runner/output",
        "GITHUB_STEP_SUMMARY": "/runner/summary.md",
        **more,
    }


def test_github_push_reads_every_variable() -> None:
    event = {"before": BEFORE, "after": SHA, "repository": {"default_branch": "trunk"}}
    environ = github("push", GITHUB_REF_TYPE="branch", GITHUB_REF_NAME="feature/x")
    assert facts(environ, **{"/runner/event.json": json.dumps(event)}) == CIFacts(
        system="github",
        event="push",
        base=BEFORE,
        base_source="the push event",
        head=SHA,
        branch="feature/x",
        default_branch="trunk",
        source_url="https://github.com/acme/monorepo",
        outputs=Path("/runner/output"),
        summary=Path("/runner/summary.md"),
    )


def test_github_tag_push_and_pull_requests() -> None:
    pushed = {"/runner/event.json": json.dumps({"before": NULL_SHA})}
    tag = facts(github("push", GITHUB_REF_TYPE="tag", GITHUB_REF_NAME="v1.2.3"), **pushed)
    assert (tag.event, tag.base, tag.tag, tag.branch) == ("tag", NULL_SHA, "v1.2.3", None)

    pull = {"/runner/event.json": json.dumps({"pull_request": {"base": {"sha": BASE}}})}
    for name in ("pull_request", "pull_request_target"):
        found = facts(github(name, GITHUB_REF_TYPE="branch", GITHUB_REF_NAME="7/merge"), **pull)
        assert (found.event, found.base, found.branch) == ("pull_request", BASE, None)
        assert found.base_source == f"the {name} event"
        assert found.warnings == ()


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("schedule", "schedule"),
        ("workflow_dispatch", "manual"),
        ("repository_dispatch", "manual"),
        ("release", "unknown"),
    ],
)
def test_github_events_without_a_base(name: str, event: str) -> None:
    found = facts(github(name), **{"/runner/event.json": json.dumps({"before": BEFORE})})
    assert (found.event, found.base, found.warnings) == (event, None, ())


@pytest.mark.parametrize(
    ("name", "text", "warning"),
    [
        ("push", None, "cannot read the GitHub event file /runner/event.json (No such file"),
        ("push", "{not json", "cannot read the GitHub event file /runner/event.json (not JSON)"),
        ("push", "\udcff", "cannot read the GitHub event file /runner/event.json (not JSON)"),
        ("push", "[1, 2]", "the GitHub event file /runner/event.json is not an object"),
        ("push", "{}", "the push event in /runner/event.json has no before SHA"),
        ("push", '{"before": 42}', "the push event in /runner/event.json has no before SHA"),
        ("push", '{"before": ""}', "the push event in /runner/event.json has no before SHA"),
        (
            "pull_request",
            '{"pull_request": "odd"}',
            "the pull_request event in /runner/event.json has no pull_request.base.sha",
        ),
        (
            "pull_request_target",
            '{"pull_request": {"base": {}}}',
            "the pull_request_target event in /runner/event.json has no pull_request.base.sha",
        ),
    ],
)
def test_a_garbage_or_missing_github_event_file_warns(
    name: str, text: str | None, warning: str
) -> None:
    files = {} if text is None else {"/runner/event.json": text}
    found = facts(github(name), **files)
    assert found.base is None
    assert len(found.warnings) == 1
    assert found.warnings[0].startswith(warning), found.warnings


def test_github_without_an_event_path_warns_for_push_and_pull_requests() -> None:
    for name in ("push", "pull_request"):
        found = facts({**github(name), "GITHUB_EVENT_PATH": ""})
        assert found.warnings == ("GITHUB_EVENT_PATH is not set: comparing with HEAD~1",)
    assert facts({**github("schedule"), "GITHUB_EVENT_PATH": ""}).warnings == ()


def test_github_files_and_web_address_are_optional() -> None:
    bare = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "schedule"}
    assert facts(bare) == CIFacts(
        system="github", event="schedule", base_source="the schedule event"
    )


# -- GitLab CI --------------------------------------------------------------------------------


def test_gitlab_push_reads_every_variable() -> None:
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_SHA": SHA,
        "CI_COMMIT_BEFORE_SHA": BEFORE,
        "CI_COMMIT_BRANCH": "feature/x",
        "CI_DEFAULT_BRANCH": "trunk",
        "CI_PROJECT_URL": "https://gitlab.example.com/acme/monorepo",
    }
    assert facts(environ) == CIFacts(
        system="gitlab",
        event="push",
        base=BEFORE,
        base_source="CI_COMMIT_BEFORE_SHA",
        head=SHA,
        branch="feature/x",
        default_branch="trunk",
        source_url="https://gitlab.example.com/acme/monorepo",
        **GITLAB_REPORTS,
    )


def test_gitlab_new_branch_has_an_all_zero_before() -> None:
    found = facts({**GITLAB, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BEFORE_SHA": NULL_SHA})
    assert (found.event, found.base, found.warnings) == ("push", NULL_SHA, ())


def test_gitlab_push_without_a_before_sha_warns() -> None:
    found = facts({**GITLAB, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"})
    assert found.base is None
    assert found.warnings == ("GitLab CI gave no CI_COMMIT_BEFORE_SHA: comparing with HEAD~1",)


def test_gitlab_tag_pipeline_names_the_tag_and_no_branch() -> None:
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_TAG": "v2.0.0",
        "CI_COMMIT_BRANCH": "main",  # GitLab leaves it unset here; gitlab-ci-local sets it
        "CI_COMMIT_BEFORE_SHA": NULL_SHA,  # always, in a tag pipeline
    }
    found = facts(environ)
    assert (found.event, found.tag, found.branch, found.base) == ("tag", "v2.0.0", None, None)
    assert found.warnings == ()


def test_gitlab_merge_request_compares_with_the_diff_base_and_has_no_branch() -> None:
    """A merge request pipeline builds without pushing (the template's `build:mr`); builder
    gives it no branch, so no plan of it carries the source branch's tag."""
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": BASE,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_COMMIT_BEFORE_SHA": NULL_SHA,
        "CI_COMMIT_BRANCH": "feature",  # as gitlab-ci-local sets it
        "CI_COMMIT_SHA": SHA,
    }
    assert facts(environ) == CIFacts(
        system="gitlab",
        event="pull_request",
        base=BASE,
        base_source="CI_MERGE_REQUEST_DIFF_BASE_SHA",
        head=SHA,
        **GITLAB_REPORTS,
    )


def test_gitlab_merge_request_without_a_diff_base() -> None:
    mr = {**GITLAB, "CI_PIPELINE_SOURCE": "merge_request_event"}
    target = facts({**mr, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"})
    assert (target.base, target.base_is_branch, target.warnings) == ("origin/main", True, ())
    assert target.base_source == "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
    assert facts(mr).warnings == (
        "GitLab CI gave no CI_MERGE_REQUEST_DIFF_BASE_SHA: comparing with HEAD~1",
    )


def test_gitlab_external_pull_request_compares_at_the_merge_base_with_the_target() -> None:
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "external_pull_request_event",
        "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA": BASE,
        "CI_COMMIT_BRANCH": "feature",
    }
    found = facts(environ)
    assert (found.event, found.base, found.base_is_branch, found.branch) == (
        "pull_request",
        BASE,
        True,
        None,
    )
    bare = facts({**environ, "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA": ""})
    assert bare.warnings == (
        "GitLab CI gave no CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA: comparing with HEAD~1",
    )


@pytest.mark.parametrize(
    ("source", "event"),
    [
        ("schedule", "schedule"),  # the nightly `builder refresh`
        ("web", "manual"),
        ("api", "manual"),
        ("trigger", "manual"),
        ("pipeline", "manual"),
        ("chat", "manual"),
        ("parent_pipeline", "unknown"),  # the fan-out child: its jobs name images with --only
        ("webide", "unknown"),
        ("", "unknown"),
    ],
)
def test_gitlab_pipelines_that_name_no_base(source: str, event: str) -> None:
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": source,
        "CI_COMMIT_BEFORE_SHA": NULL_SHA,  # what GitLab gives these pipelines
        "CI_COMMIT_BRANCH": "main",
    }
    found = facts(environ)
    assert (found.event, found.base, found.branch, found.warnings) == (event, None, "main", ())


@pytest.mark.parametrize("value", ["true", "1"])
def test_gitlab_reports_go_to_the_files_the_template_declares(value: str) -> None:
    found = facts({"GITLAB_CI": value})
    assert (found.system, found.junit, found.dotenv) == ("gitlab", JUNIT_FILE, DOTENV_FILE)
    assert (found.outputs, found.summary, found.annotations) == (None, None, False)
    assert str(JUNIT_FILE) == "builder-junit.xml"
    assert str(DOTENV_FILE) == "builder.env"


def test_gitlab_registry_login_is_the_job_token_for_its_own_registry() -> None:
    environ = {
        **GITLAB,
        "CI_REGISTRY": "registry.gitlab.example.com",
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": "job-token",
    }
    job_token = Credentials(username="gitlab-ci-token", password="job-token")
    assert compute_credentials("registry.gitlab.example.com", environ) == job_token
    assert compute_credentials("docker.io", environ) is None
    assert "job-token" not in repr(job_token)
    # BUILDER_REGISTRY_* (masked CI/CD variables) beat the job token.
    mine = {**environ, "BUILDER_REGISTRY_USER": "bot", "BUILDER_REGISTRY_PASSWORD": "pw"}
    assert compute_credentials("registry.gitlab.example.com", mine) == Credentials(
        username="bot", password="pw"
    )
    half = {**environ, "CI_REGISTRY_PASSWORD": ""}
    with pytest.raises(ConfigError, match="CI_REGISTRY_PASSWORD is not set but CI_REGISTRY_USER"):
        compute_credentials("registry.gitlab.example.com", half)


# -- Jenkins ----------------------------------------------------------------------------------


def test_jenkins_branch_build_reads_every_variable() -> None:
    environ = {
        **JENKINS,
        "GIT_COMMIT": SHA,
        "GIT_PREVIOUS_SUCCESSFUL_COMMIT": BEFORE,
        "GIT_PREVIOUS_COMMIT": BASE,  # the last build, green or not: not the base
        "BRANCH_NAME": "main",
        "GIT_BRANCH": "origin/main",
        "GIT_URL": "https://git.example.com/acme/monorepo.git",
    }
    assert facts(environ) == CIFacts(
        system="jenkins",
        event="push",
        base=BEFORE,
        base_source="GIT_PREVIOUS_SUCCESSFUL_COMMIT",
        head=SHA,
        branch="main",
        source_url="https://git.example.com/acme/monorepo",
        **GITLAB_REPORTS,
    )


def test_jenkins_first_build_compares_with_the_last_commit_and_says_so() -> None:
    found = facts({**JENKINS, "GIT_COMMIT": SHA, "BRANCH_NAME": "main"})
    assert (found.base, found.warnings) == (None, (FIRST_JENKINS_BUILD,))


def test_jenkins_pull_request_compares_with_its_target_and_has_no_branch() -> None:
    environ = {
        **JENKINS,
        "CHANGE_ID": "7",
        "CHANGE_TARGET": "main",
        "BRANCH_NAME": "PR-7",
        "GIT_PREVIOUS_SUCCESSFUL_COMMIT": BEFORE,
        "GIT_COMMIT": SHA,
    }
    assert facts(environ) == CIFacts(
        system="jenkins",
        event="pull_request",
        base="origin/main",
        base_source="CHANGE_TARGET",
        base_is_branch=True,
        head=SHA,
        **GITLAB_REPORTS,
    )
    lost = facts({**environ, "CHANGE_TARGET": ""})
    assert lost.base is None
    assert lost.warnings == ("Jenkins gave CHANGE_ID but no CHANGE_TARGET: comparing with HEAD~1",)


def test_jenkins_tag_build() -> None:
    found = facts({**JENKINS, "TAG_NAME": "v1.0.0", "BRANCH_NAME": "v1.0.0"})
    assert (found.event, found.tag, found.branch) == ("tag", "v1.0.0", None)


@pytest.mark.parametrize(
    ("git_branch", "branch"),
    [
        ("origin/main", "main"),
        ("origin/feature/x", "feature/x"),
        ("refs/remotes/origin/main", "main"),
        ("refs/heads/main", "main"),
        ("main", "main"),
        ("", None),
    ],
)
def test_a_plain_jenkins_pipeline_names_its_branch_in_git_branch(
    git_branch: str, branch: str | None
) -> None:
    """Only multibranch jobs set BRANCH_NAME: without GIT_BRANCH a plain Pipeline job on
    main would never earn `latest`."""
    assert facts({**JENKINS, "GIT_BRANCH": git_branch}).branch == branch


@pytest.mark.parametrize(
    ("url", "web"),
    [
        ("https://git.example.com/acme/monorepo.git", "https://git.example.com/acme/monorepo"),
        (
            "https://bot:s3cret@git.example.com/acme/monorepo.git",
            "https://git.example.com/acme/monorepo",
        ),
        ("http://git.example.com/acme/monorepo/", "http://git.example.com/acme/monorepo"),
        ("git@git.example.com:acme/monorepo.git", None),  # the git remote is asked instead
        ("/srv/git/monorepo.git", None),
        ("", None),
    ],
)
def test_jenkins_git_url_becomes_a_web_address_without_credentials(
    url: str, web: str | None
) -> None:
    assert facts({**JENKINS, "GIT_URL": url}).source_url == web


# -- the range, the tags and the messages that follow from the facts ------------------------

TREE = {
    "builder.yaml": "namespace: acme\n",
    "images/api/Dockerfile": "FROM python:3.12\nCOPY app.py /\n",
    "images/api/app.py": "\n",
    "images/worker/Dockerfile": "FROM acme/api\nCOPY job.py /\n",
    "images/worker/job.py": "\n",
    "images/cli/Dockerfile": "FROM alpine\nCOPY main.sh /\n",
    "images/cli/main.sh": "\n",
}


@pytest.fixture
def history(make_repo: MakeRepo) -> tuple[Path, list[str]]:
    """main: initial, cli changed, worker changed, api changed (newest last)."""
    repo = make_repo(TREE)
    shas = [git(repo, "rev-parse", "HEAD")]
    shas.append(commit(repo, {"images/cli/main.sh": "1\n"}))
    shas.append(commit(repo, {"images/worker/job.py": "2\n"}))
    shas.append(commit(repo, {"images/api/app.py": "3\n"}))
    return repo, shas


def in_ci(environ: Mapping[str, str]) -> dict[str, str]:
    """The test's own environment (git's pinned identity, PATH) plus the CI's variables."""
    return {**os.environ, **environ}


def select_in(repo: Path, environ: Mapping[str, str], base: str | None = None) -> Selection:
    return select(compute_context(repo, in_ci(environ)), base=base, overrides=Overrides())


def test_gitlab_push_compares_the_before_sha(history: tuple[Path, list[str]]) -> None:
    repo, shas = history
    selection = select_in(
        repo, {**GITLAB, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BEFORE_SHA": shas[1]}
    )
    assert selection.affected.names == ("api", "worker")
    assert (selection.range.base, selection.range.base_label) == (shas[1], shas[1][:12])
    assert selection.warnings == ()


def test_gitlab_new_branch_compares_with_the_default_branch_gitlab_names(
    history: tuple[Path, list[str]],
) -> None:
    """builder.yaml says main; CI_DEFAULT_BRANCH says trunk, and only trunk exists."""
    repo, shas = history
    git(repo, "branch", "-m", "main", "trunk")
    git(repo, "switch", "--quiet", "-c", "feature", shas[1])
    commit(repo, {"images/worker/job.py": "feature\n"})
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BEFORE_SHA": NULL_SHA,
        "CI_COMMIT_BRANCH": "feature",
        "CI_DEFAULT_BRANCH": "trunk",
    }
    selection = select_in(repo, environ)
    assert selection.affected.names == ("worker",)
    assert (selection.range.base, selection.range.base_label) == (shas[1], "merge-base(trunk)")
    assert selection.warnings == ("new branch: comparing with its merge base with trunk",)


def test_gitlab_default_branchs_first_push_builds_everything(
    history: tuple[Path, list[str]],
) -> None:
    repo, _ = history
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BEFORE_SHA": NULL_SHA,
        "CI_COMMIT_BRANCH": "main",
    }
    selection = select_in(repo, environ)
    assert selection.affected.names == ("api", "cli", "worker")
    assert selection.range.base is None


def test_gitlab_merge_request_compares_the_diff_base(history: tuple[Path, list[str]]) -> None:
    repo, shas = history
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": shas[0],
        "CI_COMMIT_BEFORE_SHA": NULL_SHA,
    }
    assert select_in(repo, environ).affected.names == ("api", "cli", "worker")


def test_gitlab_merge_request_without_diff_base_meets_its_target_branch(
    history: tuple[Path, list[str]],
) -> None:
    """main moved on (api) after the branch left it: only the branch's own change counts."""
    repo, shas = history
    git(repo, "update-ref", "refs/remotes/origin/main", shas[3])
    git(repo, "switch", "--quiet", "-c", "feature", shas[2])
    commit(repo, {"images/cli/main.sh": "feature\n"})
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
    }
    selection = select_in(repo, environ)
    assert selection.range.base_label == "merge-base(origin/main)"
    assert selection.range.base == shas[2]
    assert selection.affected.names == ("cli",)


def test_gitlab_external_pull_request_target_sha_missing_from_the_clone(
    history: tuple[Path, list[str]],
) -> None:
    repo, _ = history
    environ = {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "external_pull_request_event",
        "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA": "ab" * 20,
    }
    selection = select_in(repo, environ)
    assert selection.affected.names == ("api", "cli", "worker")
    assert selection.warnings == (
        (
            "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA names abababababab, which this clone "
            "lacks: treating every image as affected"
        ),
    )


@pytest.mark.parametrize("source", ["schedule", "web", "parent_pipeline"])
def test_gitlab_pipelines_without_a_base_compare_with_the_last_commit_quietly(
    history: tuple[Path, list[str]], source: str
) -> None:
    repo, shas = history
    environ = {**GITLAB, "CI_PIPELINE_SOURCE": source, "CI_COMMIT_BEFORE_SHA": NULL_SHA}
    selection = select_in(repo, environ)
    assert (selection.range.base, selection.range.base_label) == (shas[2], "HEAD~1")
    assert selection.warnings == ()


def test_gitlab_push_without_before_warns_when_it_falls_back(
    history: tuple[Path, list[str]],
) -> None:
    repo, shas = history
    selection = select_in(repo, {**GITLAB, "CI_PIPELINE_SOURCE": "push"})
    assert selection.range.base == shas[2]
    assert selection.warnings == ("GitLab CI gave no CI_COMMIT_BEFORE_SHA: comparing with HEAD~1",)
    # --base says more: the fallback's warning is moot then.
    assert select_in(repo, {**GITLAB, "CI_PIPELINE_SOURCE": "push"}, base=shas[0]).warnings == ()


def test_jenkins_compares_everything_since_the_last_green_build(
    history: tuple[Path, list[str]],
) -> None:
    repo, shas = history
    environ = {**JENKINS, "GIT_PREVIOUS_SUCCESSFUL_COMMIT": shas[1], "BRANCH_NAME": "main"}
    selection = select_in(repo, environ)
    assert selection.affected.names == ("api", "worker")
    assert selection.range.base == shas[1]
    assert selection.warnings == ()


def test_jenkins_first_build_warns(history: tuple[Path, list[str]]) -> None:
    repo, shas = history
    selection = select_in(repo, {**JENKINS, "BRANCH_NAME": "main"})
    assert selection.range.base == shas[2]
    assert selection.warnings == (FIRST_JENKINS_BUILD,)


def test_jenkins_pull_request_meets_its_target(history: tuple[Path, list[str]]) -> None:
    repo, shas = history
    git(repo, "update-ref", "refs/remotes/origin/main", shas[3])
    git(repo, "switch", "--quiet", "-c", "feature", shas[1])
    commit(repo, {"images/cli/main.sh": "pr\n"})
    commit(repo, {"README.md": "docs\n"})
    environ = {**JENKINS, "CHANGE_ID": "7", "CHANGE_TARGET": "main", "BRANCH_NAME": "PR-7"}
    selection = select_in(repo, environ)
    assert selection.range.base == shas[1]
    assert selection.range.base_label == "merge-base(origin/main)"
    assert selection.affected.names == ("cli",), "the whole pull request, not its last commit"


def test_jenkins_pull_request_whose_target_was_not_fetched(
    history: tuple[Path, list[str]],
) -> None:
    repo, _ = history
    environ = {**JENKINS, "CHANGE_ID": "7", "CHANGE_TARGET": "release"}
    selection = select_in(repo, environ)
    assert selection.affected.names == ("api", "cli", "worker")
    assert selection.warnings == (
        (
            "CHANGE_TARGET names origin/release, which this clone lacks: "
            "treating every image as affected"
        ),
    )


def test_an_unknown_ci_compares_with_the_last_commit_and_warns(
    history: tuple[Path, list[str]],
) -> None:
    repo, shas = history
    selection = select_in(repo, {"CI": "true"})
    assert (selection.range.base, selection.range.base_label) == (shas[2], "HEAD~1")
    assert selection.warnings == (UNKNOWN_CI,)
    result = invoke("affected", "--repo", repo, "--no-reconcile", env={"CI": "true"})
    assert result.exit_code == 0, result.stderr
    assert f"warning: {UNKNOWN_CI}\n" in result.stderr
    assert "::warning::" not in result.stderr, "only GitHub reads annotations"


def test_a_garbage_github_event_file_warns_through_the_cli(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, shas = history
    event = tmp_path / "event.json"
    event.write_text("{garbage", encoding="utf-8")
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
    }
    assert select_in(repo, env).range.base == shas[2]
    result = invoke("affected", "--repo", repo, "--no-reconcile", "--format", "names", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["api", "worker"]
    message = f"cannot read the GitHub event file {event} (not JSON): HEAD~1 base"
    assert f"::warning::{message}\n" in result.stderr
    assert f"warning: {message}\n" in result.stderr


@pytest.mark.parametrize(
    ("environ", "branch", "version"),
    [
        ({**GITLAB, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "dev"}, "dev", None),
        (
            {
                **GITLAB,
                "CI_PIPELINE_SOURCE": "merge_request_event",
                "CI_COMMIT_BRANCH": "dev",
            },
            None,
            None,
        ),
        ({**GITLAB, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v3.1.4"}, None, "v3.1.4"),
        ({**JENKINS, "BRANCH_NAME": "dev"}, "dev", None),
        ({**JENKINS, "GIT_BRANCH": "origin/dev"}, "dev", None),
        ({**JENKINS, "CHANGE_ID": "7", "CHANGE_TARGET": "main", "BRANCH_NAME": "PR-7"}, None, None),
        ({**JENKINS, "TAG_NAME": "v3.1.4", "BRANCH_NAME": "v3.1.4"}, None, "v3.1.4"),
    ],
)
def test_the_revision_takes_branch_and_tag_from_the_ci(
    make_repo: MakeRepo, environ: dict[str, str], branch: str | None, version: str | None
) -> None:
    """The checkout is detached, as CI has it: the branch tag comes from the CI alone."""
    repo = make_repo(TREE)
    git(repo, "switch", "--quiet", "--detach")
    revision = compute_revision(compute_context(repo, in_ci(environ)), Settings())
    assert (revision.branch, revision.version_tag) == (branch, version)


# -- one place for CI variables ---------------------------------------------------------------

# The variables of GitHub Actions, GitLab CI and Jenkins, and the bare `CI` as a string.
CI_NAMES = re.compile(r"GITHUB_|\bCI_|GITLAB|JENKINS|\bGIT_COMMIT\b|[\"']CI[\"']")
ALLOWED = {"ci.py", "context.py", "cli.py"}


def test_nothing_but_ci_context_and_cli_names_a_ci_variable() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30, "the package was not found"
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in modules
        if path.relative_to(PACKAGE).as_posix() not in ALLOWED
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if CI_NAMES.search(line)
    ]
    assert offenders == []


def test_the_grep_would_see_a_ci_variable() -> None:
    for line in (
        'environ.get("GITHUB_REF")',
        "os.environ['CI_COMMIT_SHA']",
        'getenv("GITLAB_CI")',
        'env["JENKINS_URL"]',
        'environ.get("GIT_COMMIT")',
        'environ.get("CI")',
    ):
        assert CI_NAMES.search(line), line
    for line in ("git var GIT_COMMITTER_IDENT", "BUILDER_CI_MODE", "CIFacts", "ci.system"):
        assert not CI_NAMES.search(line), line
