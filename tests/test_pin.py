"""builder pin through the real CLI in real git repos: in place, --check, --partial,
all-or-none writes, --commit and --push-branch, and the metadata consistency rules."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from builder.consumers.metadata import compute_pins
from builder.consumers.model import ConsumerSpec, FileOutcome
from builder.consumers.pin import select_files, write_all
from builder.errors import UserError
from tests.conftest import commit, git, invoke, load_files

R = "registry.example/acme"
IMAGES = ("base", "api", "worker", "cli")


def digest(name: str, build: int = 1) -> str:
    return "sha256:" + hashlib.sha256(f"{name}{build}".encode()).hexdigest()


REPO_FILES = {
    "builder.yaml": (
        "registry: registry.example\nnamespace: acme\n"
        "consumers:\n"
        "  - deploy/argo/*.yaml\n"
        "  - glob: deploy/dags/*.py\n"
        "  - deploy/dags/images.lock.json\n"
    ),
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": f"FROM {R}/base\n",
    "images/worker/Dockerfile": f"FROM {R}/base\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
    "deploy/argo/wf.yaml": (
        "# jobs\napiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n"
        "  templates:\n"
        f"    - name: api\n      container:\n        image: {R}/api:latest\n"
        f"    - name: worker\n      container:\n        image: {R}/worker:latest\n"
        f"    - name: cli\n      container:\n        image: {R}/cli:latest\n"
    ),
    "deploy/dags/etl.py": (
        f'api = KubernetesPodOperator(task_id="api", image="{R}/api:latest")\n'
        f'cli = KubernetesPodOperator(task_id="cli", image="{R}/cli:latest")\n'
    ),
    "deploy/dags/images.lock.json": json.dumps({"worker": f"{R}/worker:latest"}, indent=2) + "\n",
}


def metadata_json(statuses: Mapping[str, str], build: int = 1) -> dict[str, object]:
    images = {}
    for name in IMAGES:
        status = statuses.get(name, "built")
        pushed = status in ("built", "tagged")
        images[name] = {
            "status": status,
            "reason": "boom" if status == "failed" else "",
            "repository": f"{R}/{name}",
            "tags": [f"{R}/{name}:latest"] if pushed else [],
            "digest": digest(name, build) if pushed else None,
            "pinned": f"{R}/{name}@{digest(name, build)}" if pushed else None,
            "platforms": ["linux/amd64"],
        }
    return {"revision": f"{build:040x}", "base": None, "push": True, "images": images}


@pytest.fixture
def repo(make_repo: Callable[..., Path]) -> Path:
    return make_repo(REPO_FILES)


def write_metadata(where: Path, statuses: Mapping[str, str] | None = None, build: int = 1) -> Path:
    path = where / f"meta{build}.json"
    path.write_text(json.dumps(metadata_json(statuses or {}, build)), encoding="utf-8")
    return path


def read(repo: Path, path: str) -> str:
    return (repo / path).read_text(encoding="utf-8")


def test_pin_in_place_then_check_is_clean(repo: Path, tmp_path: Path) -> None:
    meta = write_metadata(tmp_path)
    result = invoke("pin", "--metadata-file", meta, "-C", repo)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (f"deploy/argo/wf.yaml:8: api: {R}/api:latest -> {R}/api@{digest('api')}")
    assert lines[-1] == "pinned 9 reference(s) to 4 image(s) in 3 file(s), from 000000000000"
    assert read(repo, "deploy/argo/wf.yaml") == REPO_FILES["deploy/argo/wf.yaml"].replace(
        f"{R}/api:latest", f"{R}/api@{digest('api')}"
    ).replace(f"{R}/worker:latest", f"{R}/worker@{digest('worker')}").replace(
        f"{R}/cli:latest", f"{R}/cli@{digest('cli')}"
    )
    lock = json.loads(read(repo, "deploy/dags/images.lock.json"))
    assert lock == {n: f"{R}/{n}@{digest(n)}" for n in ("worker", "base", "api", "cli")}
    checked = invoke("pin", "--metadata-file", meta, "--check", "-C", repo)
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith("every reference to an in-repo image is pinned")
    again = invoke("pin", "--metadata-file", meta, "-C", repo)
    assert again.stdout.startswith("nothing to change: 3 consumer file(s)"), again.output


def test_check_lists_file_and_line_exits_1_and_writes_nothing(repo: Path, tmp_path: Path) -> None:
    invoke("pin", "--metadata-file", write_metadata(tmp_path, build=1), "-C", repo)
    commit(repo, message="pinned to build 1")
    newer = write_metadata(tmp_path, build=2)
    result = invoke("pin", "--metadata-file", newer, "--check", "-C", repo)
    assert result.exit_code == 1, result.output
    assert result.stderr == "error: 9 consumer reference(s) are mutable or stale\n"
    first = result.stdout.splitlines()[0]
    assert first == (
        f"deploy/argo/wf.yaml:8: api: pinned to {digest('api', 1)}, not the current digest "
        f"(current: {R}/api@{digest('api', 2)})"
    )
    assert git(repo, "status", "--porcelain") == ""


def test_keep_tag(repo: Path, tmp_path: Path) -> None:
    result = invoke("pin", "--metadata-file", write_metadata(tmp_path), "--keep-tag", "-C", repo)
    assert result.exit_code == 0, result.output
    assert f'image="{R}/api:latest@{digest("api")}"' in read(repo, "deploy/dags/etl.py")


def test_partial_keeps_failed_images_and_their_dependants(repo: Path, tmp_path: Path) -> None:
    meta = write_metadata(tmp_path, {"base": "failed", "api": "skipped", "worker": "built"})
    refused = invoke("pin", "--metadata-file", meta, "-C", repo)
    assert refused.exit_code == 2
    assert git(repo, "status", "--porcelain") == ""
    result = invoke("pin", "--metadata-file", meta, "--partial", "-C", repo)
    assert result.exit_code == 0, result.output
    assert "kept base (failed: boom): its references keep their old pins" in result.stdout
    assert "kept api (skipped)" in result.stdout
    # worker reports built, but on a base that failed: another runner's build, not pinned.
    assert "kept worker (built: built on base, which failed)" in result.stdout
    wf = read(repo, "deploy/argo/wf.yaml")
    assert f"{R}/api:latest" in wf
    assert f"{R}/worker:latest" in wf
    assert f"{R}/cli@{digest('cli')}" in wf


def test_one_unparsable_consumer_writes_nothing(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"deploy/dags/zz_broken.py": "def (:\n"})
    result = invoke("pin", "--metadata-file", write_metadata(tmp_path), "-C", repo)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: deploy/dags/zz_broken.py:1: cannot parse Python: invalid syntax\n"
    )
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_failed_write_renames_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "gone").mkdir()
    outcomes = [
        FileOutcome(
            path=p, kind="kubernetes", text="a: 1\n", new_text="a: 2\n", edits=(), findings=()
        )
        for p in ("a.yaml", "gone/b.yaml")  # b.yaml does not exist: its write fails
    ]
    with pytest.raises(UserError) as caught:
        write_all(tmp_path, outcomes)
    assert caught.value.render().startswith("gone/b.yaml: cannot write: No such file")
    assert (tmp_path / "a.yaml").read_text(encoding="utf-8") == "a: 1\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.yaml", "gone"]


def test_a_linked_consumer_stays_a_link(tmp_path: Path) -> None:
    """The file the link names gets the new text; the link is not replaced by a copy (a
    new user's trial found `git status` saying T for type change)."""
    (tmp_path / "argo").mkdir()
    (tmp_path / "k8s").mkdir()
    (tmp_path / "argo/cron.yaml").write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "k8s/link.yaml").symlink_to("../argo/cron.yaml")
    outcomes = [
        FileOutcome(
            path=p, kind="kubernetes", text="a: 1\n", new_text="a: 2\n", edits=(), findings=()
        )
        for p in ("k8s/link.yaml", "argo/cron.yaml")
    ]
    write_all(tmp_path, outcomes)
    assert (tmp_path / "k8s/link.yaml").is_symlink()
    assert (tmp_path / "argo/cron.yaml").read_text(encoding="utf-8") == "a: 2\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["argo", "cron.yaml", "k8s", "link.yaml"]

    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.yaml"
    outside.write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "k8s/out.yaml").symlink_to(outside)
    escaped = [
        FileOutcome(
            path="k8s/out.yaml",
            kind="kubernetes",
            text="a: 1\n",
            new_text="a: 2\n",
            edits=(),
            findings=(),
        )
    ]
    with pytest.raises(UserError, match=r"is a symbolic link to .*, outside"):
        write_all(tmp_path, escaped)
    assert outside.read_text(encoding="utf-8") == "a: 1\n"


def test_a_file_matched_twice_through_a_link_is_written_once_or_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/values.yaml").write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "b").symlink_to("a")
    outcomes = [
        FileOutcome(path=p, kind="helm", text="a: 1\n", new_text=new, edits=(), findings=())
        for p, new in (("a/values.yaml", "a: 2\n"), ("b/values.yaml", "a: 3\n"))
    ]
    with pytest.raises(UserError) as caught:
        write_all(tmp_path, outcomes)
    assert caught.value.render().startswith(
        "b/values.yaml: is the same file as a/values.yaml (through a symbolic link)"
    )
    assert (tmp_path / "a/values.yaml").read_text(encoding="utf-8") == "a: 1\n"


def test_globs_skip_dotfiles_unless_they_name_them(tmp_path: Path) -> None:
    for name in ("deploy/a.yaml", "deploy/.a.yaml.1234.pin", "deploy/sub/b.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n", encoding="utf-8")
    star, hidden = ConsumerSpec(glob="deploy/**/*.yaml"), ConsumerSpec(glob="deploy/.*")
    assert select_files(tmp_path, [star]) == [("deploy/a.yaml", star), ("deploy/sub/b.yaml", star)]
    assert select_files(tmp_path, [hidden]) == [("deploy/.a.yaml.1234.pin", hidden)]


def test_commit_on_a_branch(repo: Path, tmp_path: Path) -> None:
    start = git(repo, "rev-parse", "HEAD")
    meta = write_metadata(tmp_path)
    result = invoke("pin", "--metadata-file", meta, "--commit", "builder/pin", "-C", repo)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("pin: committed ")
    assert git(repo, "branch", "--show-current") == "builder/pin"
    assert git(repo, "rev-parse", "HEAD~1") == start
    assert git(repo, "status", "--porcelain") == ""
    message = git(repo, "log", "-1", "--format=%B").splitlines()
    assert message[0] == "Pin 4 image(s) to the digests built from 000000000000"
    assert f"api: tag latest -> {digest('api')}" in message
    assert git(repo, "show", "--name-only", "--format=", "HEAD").splitlines() == [
        "deploy/argo/wf.yaml",
        "deploy/dags/etl.py",
        "deploy/dags/images.lock.json",
    ]


def test_commit_and_push_in_a_gitops_checkout(
    repo: Path, tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    gitops = make_repo({"apps/etl/wf.yaml": REPO_FILES["deploy/argo/wf.yaml"]})
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(gitops, "remote", "add", "origin", str(remote))
    git(gitops, "push", "--quiet", "origin", "main")
    commit(
        repo,
        {
            "builder.yaml": "registry: registry.example\nnamespace: acme\n"
            "consumers: [apps/*/wf.yaml]\n"
        },
    )
    meta = write_metadata(tmp_path)
    args = ("--commit", "pin/1", "--push-branch", "--repo-dir", gitops)
    result = invoke("pin", "--metadata-file", meta, *args, "-C", repo)
    assert result.exit_code == 0, result.output
    assert "; pushed to origin" in result.stdout
    pushed = git(remote, "log", "-1", "--format=%s", "pin/1")
    assert pushed == "Pin 3 image(s) to the digests built from 000000000000"
    assert f"{R}/api@{digest('api')}" in git(remote, "show", "pin/1:apps/etl/wf.yaml")
    assert git(repo, "status", "--porcelain") == ""  # the builder repo is untouched


def test_commit_refuses_a_consumer_with_uncommitted_edits(repo: Path, tmp_path: Path) -> None:
    (repo / "deploy/dags/etl.py").write_text("# edited\n" + read(repo, "deploy/dags/etl.py"))
    meta = write_metadata(tmp_path)
    result = invoke("pin", "--metadata-file", meta, "--commit", "builder/pin", "-C", repo)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: deploy/dags/etl.py has uncommitted changes")
    assert git(repo, "branch", "--show-current") == "main"
    assert f"{R}/api:latest" in read(repo, "deploy/argo/wf.yaml")


# -- the metadata file's rules, pure ------------------------------------------------------

GRAPH = load_files({k: v for k, v in REPO_FILES.items() if not k.startswith("deploy/")}).graph


def test_pins_take_every_pushed_digest_and_both_repository_spellings() -> None:
    data = metadata_json({"cli": "unchanged"})
    data["images"]["worker"]["repository"] = "mirror.example/acme/worker"  # type: ignore[index]
    data["images"]["worker"]["pinned"] = f"mirror.example/acme/worker@{digest('worker')}"  # type: ignore[index]
    pins = compute_pins(data, GRAPH, source="m.json")
    assert sorted(pins.targets) == ["api", "base", "worker"]
    assert pins.targets["worker"].pinned == f"mirror.example/acme/worker@{digest('worker')}"
    assert pins.repositories[f"{R}/worker"] == "worker"  # builder.yaml's repository
    assert pins.repositories["mirror.example/acme/worker"] == "worker"  # the pushed one
    assert pins.held == ()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda d: d["images"].update(web=d["images"]["api"]),
            "m.json: names 'web', not an image of this repository",
        ),
        (lambda d: d.update(push=False), "m.json: records a build that pushed nothing"),
        (
            lambda d: d["images"]["api"].update(status="planned"),
            "m.json: records a build that pushed nothing",
        ),
        (
            lambda d: d["images"]["api"].update(status="failed"),
            "m.json: image 'api' failed to build",
        ),
        (
            lambda d: d["images"]["api"].update(digest="sha256:12"),
            "m.json: image 'api' has an invalid digest 'sha256:12'",
        ),
        (
            lambda d: d["images"]["api"].update(pinned="x@" + digest("other")),
            "m.json: image 'api': 'pinned' ",
        ),
    ],
)
def test_metadata_rules(change: Callable[[dict[str, object]], None], error: str) -> None:
    data = metadata_json({})
    change(data)
    with pytest.raises(UserError) as caught:
        compute_pins(data, GRAPH, source="m.json")
    assert caught.value.render().startswith(error), caught.value.render()
