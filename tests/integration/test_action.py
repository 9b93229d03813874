"""The composite action (action.yml) run step by step as the Actions runner would, against the
real engine and the loopback registry (tests/integration/composite.py is the runner)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.composite import ActionRun, Job, runner_env
from tests.integration.conftest import GIT_ENV, ROOT, MakeRepo, Repo
from tests.integration.test_faults import files_containing, independent_images, watching_argv

pytestmark = pytest.mark.engine

USER = "ci-bot"
SETUP_STEPS = {"Set up Python", "Set up QEMU", "Set up Docker Buildx", "Install cosign"}


@pytest.fixture(scope="module")
def action_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as the runner lays out an action it fetched: every file git would ship
    (tracked, or new and not ignored), nothing of the developer's .venv or caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = tmp_path_factory.mktemp("_actions") / "acme" / "builder" / "sha"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def make_job(repo: Repo, tmp_path: Path, event: dict[str, object]) -> Job:
    """A push job on a hosted runner: the workspace is the repo, the event is on disk."""
    temp = tmp_path / "runner-temp"
    (temp / "tmp").mkdir(parents=True)
    event_path = temp / "event.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    env = runner_env({**repo.engine.env, **GIT_ENV}, drop_path_under=ROOT)
    env.update(
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_SHA": repo.git("rev-parse", "HEAD"),
            "GITHUB_REPOSITORY": "acme/monorepo",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_WORKSPACE": str(repo.path),
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(temp),
            "TMPDIR": str(temp / "tmp"),  # builder's private docker config lands here
        }
    )
    for key in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH"):
        env.pop(key, None)  # per step, from the runner
    return Job(workspace=repo.path, temp=temp, env=env)


def assert_succeeded(run: ActionRun) -> None:
    assert not run.failed, "\n".join(
        f"--- {s.name} (exit {s.returncode})\n{s.stdout}{s.stderr}" for s in run.steps if s.ran
    )


def test_the_action_builds_the_push_and_sets_outputs_and_summary(
    make_build_repo: MakeRepo, action_path: Path, tmp_path: Path
):
    repo = make_build_repo(independent_images(("alpha", "beta")))
    # A consumer for `pin: true`: an Argo template running alpha by a moving tag.
    alpha = f"{repo.engine.registry}/{repo.repository('alpha')}"
    config = (repo.path / "builder.yaml").read_text()
    repo.commit(
        {
            "builder.yaml": config + "consumers: [deploy/*.yaml]\n",
            "deploy/etl.yaml": (
                "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\n"
                "metadata:\n  name: etl\nspec:\n  entrypoint: run\n  templates:\n"
                f"    - name: run\n      container:\n        image: {alpha}:latest\n"
            ),
        },
        "a consumer",
    )
    repo.builder("build", "--all", check_exit=0)  # the state before this push
    before = repo.git("rev-parse", "HEAD")
    after = repo.commit({"images/alpha/payload.txt": "alpha v2\n"})
    job = make_job(repo, tmp_path, {"before": before, "after": after, "ref": "refs/heads/main"})
    password = f"pw-{uuid.uuid4().hex}"
    needles = (password.encode(), base64.b64encode(f"{USER}:{password}".encode()))

    with watching_argv(*needles) as watch:
        run = job.run_action(
            action_path,
            {
                "push": "true",
                "registry": repo.engine.registry,
                "username": USER,
                "password": password,
                "metadata-file": "out/builder-metadata.json",
                "pin": "true",
            },
        )
    assert_succeeded(run)

    # This runner already has QEMU and buildx: the detection says so, no setup step runs.
    detect = run.step("Check the runner")
    assert detect.outputs == {"python": "false", "qemu": "false", "buildx": "false"}
    assert "builder: buildx builder with driver docker" in detect.stdout
    setups = {s.name: s for s in run.steps if s.uses}
    assert set(setups) == SETUP_STEPS
    assert not any(s.condition for s in setups.values()), "a setup step would have run"

    # builder came from the action's checkout, not from the environment running the tests.
    install = run.step("Install builder")
    builder_exe = Path(install.outputs["builder"])
    assert builder_exe.is_relative_to(job.temp)
    assert f"from {action_path}" in install.stdout
    build = run.step("Run builder")
    assert build.env["BUILDER"] == str(builder_exe)
    assert build.cwd == repo.path

    # Outputs, as a workflow reads them from the action.
    out = run.outputs
    assert json.loads(out["built"]) == ["alpha"]
    assert json.loads(out["failed"]) == []
    assert json.loads(out["tagged"]) == []
    assert json.loads(out["matrix"]) == {
        "include": [{"image": "alpha", "platforms": "linux/amd64,linux/arm64"}]
    }
    images = json.loads(out["images"])
    assert images["alpha"]["status"] == "built"
    assert images["beta"]["status"] == "unchanged"
    assert images["alpha"]["pinned"].startswith(
        f"{repo.engine.registry}/{repo.repository('alpha')}@sha256:"
    )
    metadata = repo.path / "out" / "builder-metadata.json"
    assert out["metadata"] == str(metadata)
    assert json.loads(metadata.read_text(encoding="utf-8"))["images"] == images
    # ... and pushed: the new commit's tag is in the registry, at the reported digest.
    tags = repo.engine.api.release_tags(repo.repository("alpha"))
    assert f"git-{after[:7]}" in tags
    digest = repo.engine.api.manifest(repo.repository("alpha"), f"git-{after[:7]}").digest
    assert images["alpha"]["pinned"].endswith(digest)

    # The job summary builder wrote through GITHUB_STEP_SUMMARY.
    assert "## builder: 1 built, 1 unchanged" in run.summary
    assert "| alpha | ✅ built | context file changed: images/alpha/payload.txt |" in run.summary
    assert "| beta | ➖ unchanged | not affected |" in run.summary
    assert f"Compared `{before[:12]}`" in run.summary

    # The credentials went to builder through the environment of one step only.
    assert build.env["BUILDER_REGISTRY_USER"] == USER
    assert f"logged in to {repo.engine.registry} as {USER}" in build.stderr
    assert not any(password in value for s in run.steps for value in s.argv)
    assert watch.scans > 20
    assert "bake" in watch.commands, "the watch never saw buildx run: it proves nothing"
    assert watch.hits == []
    assert password not in run.log + run.summary + json.dumps(run.outputs)
    assert files_containing(tmp_path, needles) == []
    assert list((job.temp / "tmp").iterdir()) == [], "builder left temporary files behind"

    # pin: true before `builder pin` exists says so and pins nothing; after, it runs.
    pin = run.step("Pin consumers")
    assert pin.ran
    has_pin = subprocess.run([builder_exe, "pin", "--help"], capture_output=True, check=False)
    if has_pin.returncode != 0:
        assert "::notice::pin: true, but builder " in pin.stdout
        assert "has no pin command; nothing pinned" in pin.stdout
    else:
        pinned = (repo.path / "deploy/etl.yaml").read_text()
        assert f"image: {images['alpha']['pinned']}\n" in pinned


def test_refresh_and_bad_inputs_in_the_same_job(
    make_build_repo: MakeRepo, action_path: Path, tmp_path: Path
):
    """nightly.yml's use: `command: refresh`; a second use in one job reuses the install."""
    repo = make_build_repo(independent_images(("gamma",)))
    repo.builder("build", "--all", check_exit=0)
    head = repo.git("rev-parse", "HEAD")
    job = make_job(repo, tmp_path, {"before": head, "after": head})

    refresh = job.run_action(action_path, {"command": "refresh"})
    assert_succeeded(refresh)
    assert json.loads(refresh.outputs["built"]) == []
    assert json.loads(refresh.outputs["failed"]) == []
    assert refresh.outputs["metadata"] == str(job.temp / "builder-metadata.json")
    assert "## builder:" in refresh.summary

    # A typo in an input stops the run before builder starts, with an annotation.
    bad = job.run_action(action_path, {"push": "yes"})
    assert bad.failed
    assert bad.step("Install builder").outputs == refresh.step("Install builder").outputs
    step = bad.step("Run builder")
    assert step.returncode == 2
    assert "::error::input push must be true, false or by-digest, not 'yes'" in step.stderr
    assert not bad.step("Pin consumers").ran
    assert bad.outputs["built"] == ""

    only = job.run_action(action_path, {"command": "refresh", "only": "gamma"})
    assert only.failed
    assert "::error::command refresh takes no all, only or platforms" in only.log
