"""What the CI system says about this run: its variables, read in one place (pure).

GitHub Actions, GitLab CI and Jenkins each name the commit built, the one to compare with,
the branch or tag and the kind of event in their own variables; `compute_ci_facts` turns
them into one `CIFacts`, and nothing else in builder reads a CI variable. A CI system
builder does not know (`CI=true` alone) gets `HEAD~1` as its base and a warning naming the
variables it looked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

System = Literal["github", "gitlab", "jenkins", "generic", "none"]
Event = Literal["push", "pull_request", "tag", "schedule", "manual", "unknown"]

NULL_SHA = "0" * 40
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
    base_is_branch: bool = False  # `base` is a target branch: compare with the merge base
    head: str | None = None  # the commit the CI checked out
    branch: str | None = None  # the branch a push is on; None for pull requests and tags
    tag: str | None = None  # the git tag a tag pipeline builds
    default_branch: str | None = None  # when the CI says which it is
    source_url: str | None = None  # the repository's web address
    outputs: Path | None = None  # GitHub's step outputs file
    summary: Path | None = None  # GitHub's job summary file
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


def _github(environ: Mapping[str, str], read_text: Callable[..., str]) -> CIFacts:
    name = environ.get("GITHUB_EVENT_NAME", "")
    warnings: list[str] = []
    event: dict[str, Any] = {}
    path = environ.get("GITHUB_EVENT_PATH")
    if path:
        try:
            loaded = json.loads(read_text(Path(path), encoding="utf-8"))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not JSON"
            warnings.append(f"cannot read the GitHub event file {path} ({reason}): HEAD~1 base")
        else:
            if isinstance(loaded, dict):
                event = loaded
            else:
                warnings.append(f"the GitHub event file {path} is not an object: HEAD~1 base")
    elif name in ("push", "pull_request", "pull_request_target"):
        warnings.append("GITHUB_EVENT_PATH is not set: comparing with HEAD~1")
    base: str | None = None
    kind: Event = "unknown"
    if name in ("pull_request", "pull_request_target"):
        kind = "pull_request"
        pull = event.get("pull_request")
        sha = ((pull or {}).get("base") or {}).get("sha") if isinstance(pull, dict) else None
        base = sha if isinstance(sha, str) else None
    elif name == "push":
        before = event.get("before")
        base = before if isinstance(before, str) else None
        kind = "tag" if environ.get("GITHUB_REF_TYPE") == "tag" else "push"
    elif name == "schedule":
        kind = "schedule"
    elif name in ("workflow_dispatch", "repository_dispatch"):
        kind = "manual"
    ref_type, ref_name = environ.get("GITHUB_REF_TYPE"), environ.get("GITHUB_REF_NAME")
    server, repository = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    default = (event.get("repository") or {}).get("default_branch")
    return CIFacts(
        system="github",
        event=kind,
        base=base,
        base_source=f"the {name} event",
        head=environ.get("GITHUB_SHA") or None,
        branch=ref_name if ref_type == "branch" and kind != "pull_request" else None,
        tag=ref_name if ref_type == "tag" else None,
        default_branch=default if isinstance(default, str) else None,
        source_url=f"{server}/{repository}" if server and repository else None,
        outputs=_path(environ, "GITHUB_OUTPUT"),
        summary=_path(environ, "GITHUB_STEP_SUMMARY"),
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
}


def _gitlab(environ: Mapping[str, str]) -> CIFacts:
    source = environ.get("CI_PIPELINE_SOURCE", "")
    kind = _GITLAB_EVENTS.get(source, "unknown")
    tag = environ.get("CI_COMMIT_TAG") or None
    if tag is not None and kind == "push":
        kind = "tag"
    base, base_source = None, ""
    if kind == "pull_request":
        base = environ.get("CI_MERGE_REQUEST_DIFF_BASE_SHA") or None
        base_source = "CI_MERGE_REQUEST_DIFF_BASE_SHA"
    elif kind == "push":
        # All zeros on a branch's first push, as GitHub's `before`.
        base = environ.get("CI_COMMIT_BEFORE_SHA") or None
        base_source = "CI_COMMIT_BEFORE_SHA"
    return CIFacts(
        system="gitlab",
        event=kind,
        base=base,
        base_source=base_source,
        head=environ.get("CI_COMMIT_SHA") or None,
        branch=environ.get("CI_COMMIT_BRANCH") or None,  # unset in merge request pipelines
        tag=tag,
        default_branch=environ.get("CI_DEFAULT_BRANCH") or None,
        source_url=environ.get("CI_PROJECT_URL") or None,
    )


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
    elif base is None:
        warnings = (_FIRST_JENKINS_BUILD,)
    url = environ.get("GIT_URL")
    return CIFacts(
        system="jenkins",
        event=kind,
        base=base,
        base_source="CHANGE_TARGET" if pull else "GIT_PREVIOUS_SUCCESSFUL_COMMIT",
        base_is_branch=pull,
        head=environ.get("GIT_COMMIT") or None,
        branch=None if pull or tag else environ.get("BRANCH_NAME") or None,
        tag=tag,
        source_url=url if url and url.startswith(("https://", "http://")) else None,
        warnings=warnings,
    )
