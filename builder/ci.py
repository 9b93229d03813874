"""What the CI system says about this run: its variables, read in one place (pure).

GitHub Actions, GitLab CI and Jenkins each name the commit built, the one to compare with,
the branch or tag and the kind of event in their own variables; `compute_ci_facts` turns
them into one `CIFacts`, and nothing else in builder reads a CI variable (a test greps the
package for them). A CI system builder does not know (`CI=true` alone) gets `HEAD~1` as its
base and a warning naming the variables it looked for; so does a known one whose variable
for the base is missing or unreadable: never a silent fallback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

System = Literal["github", "gitlab", "jenkins", "generic", "none"]
Event = Literal["push", "pull_request", "tag", "schedule", "manual", "unknown"]

NULL_SHA = "0" * 40
# Where GitHub has builder write its step outputs and job summary; named in messages.
OUTPUTS_VARIABLE = "GITHUB_OUTPUT"
SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
# The reports GitLab (`artifacts: reports:`) and Jenkins (`junit`) pick up, in the directory
# builder runs in (ci/gitlab/README.md); `--junit-file` / `--dotenv-file` move them.
JUNIT_FILE = Path("builder-junit.xml")
DOTENV_FILE = Path("builder.env")
_UNKNOWN_CI = (
    "CI=true but no CI system builder knows (it looked for GITHUB_ACTIONS, GITLAB_CI and "
    "JENKINS_URL): comparing with HEAD~1; pass --base to say more"
)
_FIRST_JENKINS_BUILD = (
    "Jenkins gave no GIT_PREVIOUS_SUCCESSFUL_COMMIT (a first build): comparing with HEAD~1"
)
_TRUE = ("true", "1")


@dataclass(frozen=True, slots=True, kw_only=True)
class CIFacts:
    system: System = "none"
    event: Event = "unknown"
    # The commit to compare with, as the CI names it (a push's `before`, a merge request's
    # diff base, the last successful build); None when it names none. All zeros: a new branch.
    base: str | None = None
    base_source: str = ""  # where `base` came from, for messages: "the push event"
    # `base` is a change request's target (a branch or its tip): compare with the merge base.
    base_is_branch: bool = False
    head: str | None = None  # the commit the CI checked out
    branch: str | None = None  # the branch a push is on; None for pull requests and tags
    tag: str | None = None  # the git tag a tag pipeline builds
    default_branch: str | None = None  # when the CI says which it is
    source_url: str | None = None  # the repository's web address
    outputs: Path | None = None  # GitHub's step outputs file
    summary: Path | None = None  # GitHub's job summary file
    junit: Path | None = None  # the JUnit report GitLab and Jenkins read
    dotenv: Path | None = None  # GitLab's dotenv report of the outputs
    warnings: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Running under a CI system: build HEAD, not the working tree; reconcile."""
        return self.system != "none"

    @property
    def annotations(self) -> bool:
        """The log understands `::warning::` and `::error file=...::` lines."""
        return self.system == "github"


def compute_ci_facts(
    environ: Mapping[str, str], *, read_text: Callable[..., str] = Path.read_text
) -> CIFacts:
    """The CI system's facts from its environment; `read_text` reads GitHub's event file."""
    if environ.get("GITHUB_ACTIONS") == "true":
        return _github(environ, read_text)
    if environ.get("GITLAB_CI", "").lower() in _TRUE:
        return _gitlab(environ)
    if environ.get("JENKINS_URL") or environ.get("JENKINS_HOME"):
        return _jenkins(environ)
    if environ.get("CI", "").lower() in _TRUE:
        return CIFacts(
            system="generic",
            warnings=(_UNKNOWN_CI,),
        )
    return CIFacts()


def _path(environ: Mapping[str, str], name: str) -> Path | None:
    value = environ.get(name)
    return Path(value) if value else None


_USERINFO_RE = re.compile(r"^(?P<scheme>https?://)[^/@]*@")


def _web_address(url: str | None) -> str | None:
    """A clone URL as a browser address, never with credentials; None for ssh and paths."""
    if not url or not url.startswith(("https://", "http://")):
        return None
    return _USERINFO_RE.sub(r"\g<scheme>", url).removesuffix("/").removesuffix(".git")


def _github(environ: Mapping[str, str], read_text: Callable[..., str]) -> CIFacts:
    name = environ.get("GITHUB_EVENT_NAME", "")
    pull_request = name in ("pull_request", "pull_request_target")
    warnings: list[str] = []
    event: dict[str, Any] = {}
    path = environ.get("GITHUB_EVENT_PATH")
    readable = False
    if path:
        try:
            loaded = json.loads(read_text(Path(path), encoding="utf-8"))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not JSON"
            warnings.append(f"cannot read the GitHub event file {path} ({reason}): HEAD~1 base")
        else:
            if isinstance(loaded, dict):
                event, readable = loaded, True
            else:
                warnings.append(f"the GitHub event file {path} is not an object: HEAD~1 base")
    elif name == "push" or pull_request:
        warnings.append("GITHUB_EVENT_PATH is not set: comparing with HEAD~1")
    base: str | None = None
    kind: Event = "unknown"
    if pull_request:
        kind = "pull_request"
        pull = event.get("pull_request")
        sha = ((pull or {}).get("base") or {}).get("sha") if isinstance(pull, dict) else None
        base = sha if isinstance(sha, str) and sha else None
        if base is None and readable:
            warnings.append(
                f"the {name} event in {path} has no pull_request.base.sha: comparing with HEAD~1"
            )
    elif name == "push":
        before = event.get("before")
        base = before if isinstance(before, str) and before else None
        kind = "tag" if environ.get("GITHUB_REF_TYPE") == "tag" else "push"
        if base is None and readable:
            warnings.append(f"the push event in {path} has no before SHA: comparing with HEAD~1")
    elif name == "schedule":
        kind = "schedule"
    elif name in ("workflow_dispatch", "repository_dispatch"):
        kind = "manual"
    ref_type, ref_name = environ.get("GITHUB_REF_TYPE"), environ.get("GITHUB_REF_NAME")
    server, repository = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    repo_facts = event.get("repository")
    default = repo_facts.get("default_branch") if isinstance(repo_facts, dict) else None
    return CIFacts(
        system="github",
        event=kind,
        base=base,
        base_source=f"the {name} event",
        head=environ.get("GITHUB_SHA") or None,
        branch=ref_name if ref_type == "branch" and kind != "pull_request" else None,
        tag=ref_name if ref_type == "tag" else None,
        default_branch=default if isinstance(default, str) and default else None,
        source_url=f"{server}/{repository}" if server and repository else None,
        outputs=_path(environ, OUTPUTS_VARIABLE),
        summary=_path(environ, SUMMARY_VARIABLE),
        warnings=tuple(warnings),
    )


_GITLAB_EVENTS: dict[str, Event] = {
    "push": "push",
    "merge_request_event": "pull_request",
    "external_pull_request_event": "pull_request",
    "schedule": "schedule",
    "web": "manual",
    "api": "manual",
    "trigger": "manual",
    "pipeline": "manual",
    "chat": "manual",
}


def _gitlab(environ: Mapping[str, str]) -> CIFacts:
    source = environ.get("CI_PIPELINE_SOURCE", "")
    kind = _GITLAB_EVENTS.get(source, "unknown")
    tag = environ.get("CI_COMMIT_TAG") or None
    if tag is not None and kind == "push":
        kind = "tag"
    base, base_source, merge_base, warning = _gitlab_base(environ, source, kind)
    return CIFacts(
        system="gitlab",
        event=kind,
        base=base,
        base_source=base_source,
        base_is_branch=merge_base,
        head=environ.get("CI_COMMIT_SHA") or None,
        # GitLab sets no branch in merge request and tag pipelines (gitlab-ci-local does):
        # a merge request's build must not earn its source branch's tag.
        branch=None if kind in ("pull_request", "tag") else environ.get("CI_COMMIT_BRANCH") or None,
        tag=tag,
        default_branch=environ.get("CI_DEFAULT_BRANCH") or None,
        source_url=_web_address(environ.get("CI_PROJECT_URL")),
        junit=JUNIT_FILE,
        dotenv=DOTENV_FILE,
        warnings=(warning,) if warning else (),
    )


def _gitlab_base(
    environ: Mapping[str, str], source: str, kind: Event
) -> tuple[str | None, str, bool, str]:
    """(base, where it came from, compare with the merge base, warning when it is missing)."""
    if source == "merge_request_event":
        diff_base = environ.get("CI_MERGE_REQUEST_DIFF_BASE_SHA")
        if diff_base:
            return diff_base, "CI_MERGE_REQUEST_DIFF_BASE_SHA", False, ""
        target = environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
        if target:  # GitLab before 13.x: the target branch, compared at the merge base
            return f"origin/{target}", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME", True, ""
        missing = "CI_MERGE_REQUEST_DIFF_BASE_SHA"
    elif source == "external_pull_request_event":
        # The target branch's tip when the pipeline started: compared at the merge base.
        target_sha = environ.get("CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA")
        if target_sha:
            return target_sha, "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA", True, ""
        missing = "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA"
    elif kind == "push":
        # All zeros on a branch's first push, as GitHub's `before`.
        before = environ.get("CI_COMMIT_BEFORE_SHA")
        if before:
            return before, "CI_COMMIT_BEFORE_SHA", False, ""
        missing = "CI_COMMIT_BEFORE_SHA"
    else:
        # Schedules, manual, tag and child pipelines name no base (GitLab's
        # CI_COMMIT_BEFORE_SHA is all zeros there): the last commit, as on GitHub.
        return None, "", False, ""
    return None, "", False, f"GitLab CI gave no {missing}: comparing with HEAD~1"


def _jenkins(environ: Mapping[str, str]) -> CIFacts:
    pull = bool(environ.get("CHANGE_ID"))
    tag = environ.get("TAG_NAME") or None
    kind: Event = "pull_request" if pull else "tag" if tag else "push"
    base = environ.get("GIT_PREVIOUS_SUCCESSFUL_COMMIT") or None
    warnings: tuple[str, ...] = ()
    if pull:
        # A change request is compared with its target branch (the merge base of the two).
        target = environ.get("CHANGE_TARGET")
        base = f"origin/{target}" if target else None
        if base is None:
            warnings = ("Jenkins gave CHANGE_ID but no CHANGE_TARGET: comparing with HEAD~1",)
    elif base is None:
        warnings = (_FIRST_JENKINS_BUILD,)
    # A multibranch job names the branch BRANCH_NAME; a plain Pipeline job only GIT_BRANCH,
    # as the remote-tracking name (`origin/main`).
    branch = environ.get("BRANCH_NAME") or _local_branch(environ.get("GIT_BRANCH"))
    return CIFacts(
        system="jenkins",
        event=kind,
        base=base,
        base_source="CHANGE_TARGET" if pull else "GIT_PREVIOUS_SUCCESSFUL_COMMIT",
        base_is_branch=pull,
        head=environ.get("GIT_COMMIT") or None,
        branch=None if pull or tag else branch,
        tag=tag,
        source_url=_web_address(environ.get("GIT_URL")),
        junit=JUNIT_FILE,
        dotenv=DOTENV_FILE,
        warnings=warnings,
    )


def _local_branch(name: str | None) -> str | None:
    if not name:
        return None
    for prefix in ("refs/remotes/origin/", "refs/heads/", "origin/"):
        if name.startswith(prefix):
            return name.removeprefix(prefix) or None
    return name
