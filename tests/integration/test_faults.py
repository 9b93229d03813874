"""Faults and secrets on the real engine (issue 6): an authenticating registry, a registry
killed mid-push, an unreachable dockerd, two builds at once, and BuildKit secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.conftest import (
    GIT_ENV,
    Engine,
    LocalRegistry,
    MakeRepo,
    Repo,
    StartRegistry,
    free_port,
)
from tests.integration.registry_api import INDEX_TYPES, MANIFEST_TYPES, BlobReader

pytestmark = pytest.mark.engine

PLATFORMS = {"linux/amd64", "linux/arm64"}
MOVING = ("latest", "main")
BUSYBOX_COPY = "ARG BUSYBOX_IMAGE=busybox\nFROM ${BUSYBOX_IMAGE}\nCOPY payload.txt /payload.txt\n"


# -- helpers --------------------------------------------------------------------------------


def repo_on(engine: Engine, registry: str, path: Path, files: Mapping[str, str]) -> Repo:
    """A git repo whose builder.yaml pushes to `registry`; busybox still comes from :5000."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    path.mkdir()
    repo = Repo(path=path, namespace=namespace, engine=Engine(registry=registry, env=engine.env))
    repo.git("init", "-q", "-b", "main")
    config = (
        f"registry: {registry}\nnamespace: {namespace}\n"
        f"build_args:\n  BUSYBOX_IMAGE: {engine.busybox()}\n"
    )
    repo.commit({"builder.yaml": config, **files}, "initial")
    return repo


def independent_images(names: tuple[str, ...], payload_bytes: int = 0) -> dict[str, str]:
    """Images that share nothing but busybox; a random payload makes each push take a while."""
    files: dict[str, str] = {}
    for name in names:
        files[f"images/{name}/Dockerfile"] = BUSYBOX_COPY
        files[f"images/{name}/payload.txt"] = f"{name}\n" + os.urandom(payload_bytes).hex()
    return files


def release_tags(tags: Mapping[str, str] | list[str]) -> set[str]:
    """The tags people pull: without the build cache and the content-key tags (`key-<hex>`)."""
    return {tag for tag in tags if tag != "buildcache" and not tag.startswith("key-")}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    """builder failed with `code` and said why in exactly one line, without a traceback."""
    output = f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == code, output
    assert "Traceback" not in done.stdout + done.stderr, output
    lines = error_lines(done.stderr)
    # Progress lines may come first ("engine: ...", warnings); the error is the one line
    # that says error, the last, and nothing else (a docker CLI's own words) leaks out.
    errors = [line for line in lines if line.lower().startswith("error")]
    assert len(errors) == 1, output
    assert lines[-1] == errors[0], output
    assert errors[0].startswith("error: "), output
    return errors[0]


def files_containing(root: Path, needles: tuple[bytes, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {needle!r}" for needle in needles if needle in data]
    return found


@dataclass
class ArgvWatch:
    """Reads every process's argv (/proc/*/cmdline) every 50 ms, looking for secrets."""

    needles: tuple[bytes, ...]
    hits: list[str] = field(default_factory=list)
    commands: set[str] = field(default_factory=set)  # docker subcommands seen, e.g. "bake"
    scans: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def scan(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                argv = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue  # gone already, or a kernel thread
            words = argv.split(b"\0")
            for needle in self.needles:
                if needle in argv:
                    self.hits.append(f"pid {entry.name}: {b' '.join(words)!r}")
            if words and Path(words[0].decode(errors="replace")).name.startswith("docker"):
                self.commands.update(w.decode(errors="replace") for w in words[1:])
        self.scans += 1

    def run(self) -> None:
        while not self._stop.is_set():
            self.scan()
            self._stop.wait(0.05)


@contextmanager
def watching_argv(*needles: bytes) -> Iterator[ArgvWatch]:
    watch = ArgvWatch(needles=needles)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch._stop.set()
        thread.join(timeout=10)


def assert_consistent(api: BlobReader, repository: str) -> dict[str, str]:
    """Every tag of `repository` resolves completely: an image index holding amd64 and arm64,
    each manifest's config and layers present. Returns tag -> digest."""
    digests = {}
    for tag in api.tags(repository):
        index = api.manifest(repository, tag)
        digests[tag] = index.digest
        assert index.media_type in INDEX_TYPES, f"{repository}:{tag} is {index.media_type}"
        if tag == "buildcache":  # a cache manifest list: its entries are blobs
            for entry in index.body["manifests"]:
                assert api.has_blob(repository, entry["digest"]), f"{repository}:{tag} {entry}"
            continue
        assert set(api.platforms(repository, tag)) == PLATFORMS, f"{repository}:{tag}"
        for entry in index.body["manifests"]:  # the attestation manifests too
            assert entry["mediaType"] in MANIFEST_TYPES, f"{repository}:{tag} {entry}"
            manifest = api.manifest(repository, entry["digest"])
            for blob in (manifest.body["config"], *manifest.body["layers"]):
                assert api.has_blob(repository, blob["digest"]), f"{repository}:{tag} {blob}"
    return digests


# -- 1. a registry with authentication ------------------------------------------------------

AUTH_USER = "ci-bot"
AUTH_FILES = independent_images(("alpha", "beta"))


def test_right_credentials_push_and_the_password_goes_nowhere(
    engine: Engine, local_registry: StartRegistry, tmp_path: Path
):
    password = f"pw-{uuid.uuid4().hex}"
    registry = local_registry(users={AUTH_USER: password})
    repo = repo_on(engine, registry.address, tmp_path / "repo", AUTH_FILES)
    sha = repo.git("rev-parse", "HEAD")
    tmp, docker_config = tmp_path / "tmp", tmp_path / "docker-config"
    tmp.mkdir()
    docker_config.mkdir()
    (docker_config / "config.json").write_text("{}\n", encoding="utf-8")
    meta = tmp_path / "meta.json"
    basic = base64.b64encode(f"{AUTH_USER}:{password}".encode())
    needles = (password.encode(), basic)

    with watching_argv(*needles) as watch:
        done = repo.builder(
            "build",
            "--all",
            "--metadata-file",
            str(meta),
            env={
                "BUILDER_REGISTRY_USER": AUTH_USER,
                "BUILDER_REGISTRY_PASSWORD": password,
                "TMPDIR": str(tmp),  # builder's private docker config goes here
                "DOCKER_CONFIG": str(docker_config),  # the user's own login, left alone
            },
            check_exit=0,
        )

    # The pushed images, read back through the registry's API with basic auth.
    api = registry.api(auth=(AUTH_USER, password))
    # The images, and the reconcile state the push recorded beside them.
    state = repo.repository("builder-state")
    assert api.catalog() == sorted([state, *(repo.repository(n) for n in ("alpha", "beta"))])
    images = repo.metadata(meta)
    for name in ("alpha", "beta"):
        tags = assert_consistent(api, repo.repository(name))
        assert release_tags(tags) == {f"git-{sha[:7]}", *MOVING}
        assert images[name]["status"] == "built"
        assert images[name]["digest"] == tags["latest"] == tags[f"git-{sha[:7]}"]
    # The password (or user:password in base64) was in no child's argv, ever.
    assert watch.scans > 20
    assert "bake" in watch.commands, "the watch never saw buildx run: it proves nothing"
    assert watch.hits == []
    # ... nor in builder's output, nor in any file left behind: the metadata, the repo and
    # its .git, the user's docker config (untouched), and builder's private config (gone).
    assert password not in done.stdout + done.stderr
    assert f"logged in to {registry.address} as {AUTH_USER}" in done.stderr
    assert files_containing(tmp_path, needles) == []
    assert (docker_config / "config.json").read_text(encoding="utf-8") == "{}\n"
    assert list(tmp.iterdir()) == [], "builder left temporary files behind"


def build_with_wrong_password(
    engine: Engine, local_registry: StartRegistry, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], LocalRegistry, str, str]:
    password = f"pw-{uuid.uuid4().hex}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    registry = local_registry(users={AUTH_USER: password})
    repo = repo_on(engine, registry.address, tmp_path / "repo", AUTH_FILES)
    done = repo.builder(
        "build",
        "--all",
        "--metadata-file",
        str(tmp_path / "meta.json"),
        env={"BUILDER_REGISTRY_USER": AUTH_USER, "BUILDER_REGISTRY_PASSWORD": wrong},
    )
    return done, registry, password, wrong


def test_a_wrong_password_is_a_clear_error_and_pushes_nothing(
    engine: Engine, local_registry: StartRegistry, tmp_path: Path
):
    done, registry, password, wrong = build_with_wrong_password(engine, local_registry, tmp_path)

    output = f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 2, output
    assert "Traceback" not in done.stdout + done.stderr, output
    line = error_lines(done.stderr)[-1]
    assert line.startswith("error: login to "), output
    assert registry.address in line, output
    assert AUTH_USER in line, output
    assert "building" not in done.stderr, "the login is checked before any image is built"
    assert wrong not in done.stdout + done.stderr
    assert password not in done.stdout + done.stderr
    assert not (tmp_path / "meta.json").exists()
    assert files_containing(tmp_path / "repo", (wrong.encode(),)) == []
    assert registry.api(auth=(AUTH_USER, password)).catalog() == []


def test_docker_logins_own_output_never_reaches_builders(
    engine: Engine, local_registry: StartRegistry, tmp_path: Path
):
    done, _, password, _ = build_with_wrong_password(engine, local_registry, tmp_path)
    line = assert_one_line_error(done, 2)
    assert "401" in line or "unauthorized" in line.lower()  # the registry's reason
    assert "no details" not in line

    repo = Repo(path=tmp_path / "repo", namespace="", engine=engine)
    done = repo.builder(
        "build",
        "--all",
        "--only",
        "alpha",
        env={"BUILDER_REGISTRY_USER": AUTH_USER, "BUILDER_REGISTRY_PASSWORD": password},
        check_exit=0,
    )
    assert "Login Succeeded" not in done.stdout  # stdout is builder's report alone
    assert "WARNING! Your credentials are stored unencrypted" not in done.stderr


# -- 2. the registry is killed in the middle of a push --------------------------------------

KILL_NAMES = ("img1", "img2", "img3", "img4")


def kill_when_second_push_starts(
    registry: LocalRegistry, namespace: str, builder_done: Callable[[], int | None]
) -> str:
    """Wait until a second repository appears in the registry's storage (with -j 1 the first
    image is then pushed and verified, and the second one's blobs are going up); SIGKILL."""
    repositories = registry.storage / "docker/registry/v2/repositories" / namespace
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and builder_done() is None:
        present = sorted(p.name for p in repositories.iterdir()) if repositories.is_dir() else []
        if len(present) >= 2:
            registry.kill()
            return ", ".join(present)
        time.sleep(0.005)
    pytest.fail("the second image's push never started")


def test_registry_killed_mid_push_leaves_no_partial_tags_and_a_rerun_completes(
    engine: Engine, local_registry: StartRegistry, tmp_path: Path
):
    registry = local_registry()
    repo = repo_on(
        engine, registry.address, tmp_path / "repo", independent_images(KILL_NAMES, 3_000_000)
    )
    sha = repo.git("rev-parse", "HEAD")
    immutable = f"git-{sha[:7]}"
    meta = tmp_path / "meta1.json"
    env = {**repo.engine.env, **GIT_ENV, "CI": "true"}
    started = time.monotonic()
    with (tmp_path / "run1.out").open("w+") as out, (tmp_path / "run1.err").open("w+") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "builder", "build", "--all", "-j", "1", "--metadata-file", meta],
            cwd=repo.path,
            env=env,
            stdout=out,
            stderr=err,
            text=True,
        )
        try:
            seen = kill_when_second_push_starts(registry, repo.namespace, process.poll)
            killed_at = time.monotonic() - started
            returncode = process.wait(timeout=600)
        finally:
            if process.poll() is None:
                process.kill()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    finished_at = time.monotonic() - started
    report = (
        f"killed at {killed_at:.1f}s (storage held {seen})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    )

    # builder says which images failed: the first one is built, the other three failed.
    assert returncode == 1, report
    assert "Traceback" not in stdout + stderr, report
    images = repo.metadata(meta)
    status = {name: images[name]["status"] for name in KILL_NAMES}
    assert status == {"img1": "built", "img2": "failed", "img3": "failed", "img4": "failed"}, report
    assert "error: 3 image(s) failed: img2, img3, img4" in stderr, report
    for name in ("img2", "img3", "img4"):
        assert images[name]["reason"], report
        assert images[name]["digest"] is None, report
        assert images[name]["pinned"] is None, report
    assert finished_at - killed_at < 240, "builder took too long to give up on a dead registry"

    # The registry back on the same storage: every tag is complete, no moving tag points
    # where the immutable one does not, and the images that failed earned no moving tag.
    registry.start()
    api = registry.api()
    state = repo.repository("builder-state")
    assert set(api.catalog()) <= {state, *(repo.repository(n) for n in KILL_NAMES)}
    first = assert_consistent(api, repo.repository("img1"))
    assert first[immutable] == images["img1"]["digest"]
    assert {first[t] for t in MOVING} == {first[immutable]}
    for name in ("img2", "img3", "img4"):
        tags = assert_consistent(api, repo.repository(name))
        assert not set(MOVING) & set(tags), f"{name} failed but has moving tags {tags}"

    # A rerun of the same commit (no --all: what CI would run again) pushes what is
    # missing: img2..img4. img1 is complete already and keeps the digest Airflow pinned.
    platforms_before = api.platforms(repo.repository("img1"), immutable)
    meta2 = tmp_path / "meta2.json"
    rerun_done = repo.builder("build", "-j", "1", "--metadata-file", str(meta2), check_exit=0)
    rerun = repo.metadata(meta2)
    report = f"rerun stderr:\n{rerun_done.stderr}"
    for name in KILL_NAMES:
        tags = assert_consistent(api, repo.repository(name))
        assert release_tags(tags) == {immutable, *MOVING}, report
        assert len({tags[t] for t in (immutable, *MOVING)}) == 1, report
    assert {n: rerun[n]["status"] for n in ("img2", "img3", "img4")} == dict.fromkeys(
        ("img2", "img3", "img4"), "built"
    ), report
    for name in ("img2", "img3", "img4"):
        assert api.manifest(repo.repository(name), "latest").digest == rerun[name]["digest"]
    assert api.platforms(repo.repository("img1"), immutable) == platforms_before
    assert rerun["img1"]["status"] == "unchanged", report
    assert api.manifest(repo.repository("img1"), "latest").digest == images["img1"]["digest"]


# -- 3. dockerd unreachable ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing socket", "not a socket", "closed tcp port"])
def test_an_unreachable_docker_daemon_is_one_clear_error_before_any_work(
    make_build_repo: MakeRepo, tmp_path: Path, kind: str
):
    repo = make_build_repo(independent_images(("solo",)))
    if kind == "missing socket":
        host = f"unix://{tmp_path}/nothing-here/docker.sock"
    elif kind == "not a socket":
        (tmp_path / "plain-file.sock").write_text("not a socket\n", encoding="utf-8")
        host = f"unix://{tmp_path}/plain-file.sock"
    else:
        host = f"tcp://127.0.0.1:{free_port()}"
    meta = tmp_path / "meta.json"
    started = time.monotonic()
    done = repo.builder("build", "--all", "--metadata-file", str(meta), env={"DOCKER_HOST": host})
    elapsed = time.monotonic() - started

    line = assert_one_line_error(done, 2)
    assert "Docker daemon" in line
    assert host in line
    assert "DOCKER_HOST" in line  # how to fix it
    assert done.stdout == ""
    assert "building" not in done.stderr
    assert not meta.exists()
    assert elapsed < 30
    assert repo.engine.api.tags(repo.repository("solo")) == []


# -- 4. two builds at once in one checkout ----------------------------------------------------


def test_a_second_build_in_the_same_checkout_fails_fast_and_the_first_succeeds(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(independent_images(("left", "right")))
    sha = repo.git("rev-parse", "HEAD")
    meta = tmp_path / "meta.json"  # the same file for both: the loser must not clobber it
    env = {**repo.engine.env, **GIT_ENV, "CI": "true"}
    argv = [sys.executable, "-m", "builder", "build", "--all", "--metadata-file", str(meta)]
    processes = [
        subprocess.Popen(
            argv, cwd=repo.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    ended: dict[int, float] = {}
    outputs: dict[int, tuple[str, str]] = {}

    def wait(index: int) -> None:
        outputs[index] = processes[index].communicate(timeout=600)
        ended[index] = time.monotonic()

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=620)
    codes = [p.returncode for p in processes]
    report = "\n".join(f"#{i} exit {codes[i]}: {outputs.get(i)}" for i in range(2))

    assert sorted(codes) == [0, 2], report
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    line = error_lines(outputs[loser][1])
    assert len(line) == 1, report
    assert "another builder build is running in this checkout" in line[0], report
    assert f"pid {processes[winner].pid}" in line[0], report
    assert ended[loser] < ended[winner], "the second build waited instead of failing fast"
    assert outputs[loser][0] == "", report

    images = repo.metadata(meta)  # the winner's, whole
    assert {n: d["status"] for n, d in images.items()} == {"left": "built", "right": "built"}
    api = repo.engine.api
    for name in ("left", "right"):
        repository = repo.repository(name)
        assert api.release_tags(repository) == {f"git-{sha[:7]}", *MOVING}
        assert api.manifest(repository, "latest").digest == images[name]["digest"]
        assert set(api.platforms(repository, "latest")) == PLATFORMS
    # The lock went with the winner: the next run in this checkout is not refused.
    repo.builder("build", "--all", "--dry-run", check_exit=0)


# -- 5. build secrets --------------------------------------------------------------------------

SECRET_DOCKERFILE = (
    "ARG BUSYBOX_IMAGE=busybox\nFROM ${BUSYBOX_IMAGE}\n"
    # BuildKit's cache key of a RUN leaves secrets out: without this nonce the RUN below
    # could come from an earlier run's cache and prove nothing about this run's secret.
    "COPY nonce.txt /nonce.txt\n"
    "RUN --mount=type=secret,id=token "
    "sh -c 'test -s /run/secrets/token && wc -c < /run/secrets/token > /token-length'\n"
    "RUN --mount=type=secret,id=token sha256sum < /run/secrets/token > /token-sha256\n"
)


def test_a_build_secret_reaches_run_and_lands_in_no_layer_config_or_output(
    make_build_repo: MakeRepo, tmp_path: Path
):
    token = f"tok-{secrets.token_hex(secrets.randbelow(24) + 16)}"
    repo = make_build_repo(
        {
            "images/uses-secret/Dockerfile": SECRET_DOCKERFILE,
            "images/uses-secret/nonce.txt": f"{uuid.uuid4()}\n",
        }
    )
    meta = tmp_path / "meta.json"
    with watching_argv(token.encode()) as watch:
        done = repo.builder(
            "build",
            "--all",
            "--secret",
            "id=token,env=BUILD_TOKEN",
            "--metadata-file",
            str(meta),
            env={"BUILD_TOKEN": token},
            check_exit=0,
        )
    assert repo.metadata(meta)["uses-secret"]["status"] == "built"
    repository = repo.repository("uses-secret")
    api = BlobReader(repo.engine.registry)

    # The RUN step saw the secret (its length is right), on both platforms.
    for platform in sorted(PLATFORMS):
        length = api.read_file(repository, "latest", platform, "/token-length")
        assert length is not None, platform
        assert int(length.decode().strip()) == len(token), platform
        digest = api.read_file(repository, "latest", platform, "/token-sha256")
        assert digest is not None, platform
        assert digest.split()[0].decode() == hashlib.sha256(token.encode()).hexdigest()

    # The value is in no blob the registry holds for this repository: every layer and
    # config of both platforms, the attestations and the registry build cache.
    needle = token.encode()
    scanned = 0
    for tag in api.tags(repository):
        index = api.manifest(repository, tag)
        assert needle not in json.dumps(index.body).encode()
        for entry in index.body["manifests"]:
            if entry["mediaType"] in MANIFEST_TYPES:
                manifest = api.manifest(repository, entry["digest"])
                assert needle not in json.dumps(manifest.body).encode()
                blobs = [manifest.body["config"], *manifest.body["layers"]]
            else:
                blobs = [entry]
            for blob in blobs:
                assert needle not in api.blob(repository, blob["digest"]), (tag, blob)
                scanned += 1
    assert scanned >= 8  # per platform: config + busybox + RUN layer; cache blobs
    # ... nor in the image config and its history, read as Airflow/Argo would.
    for platform, digest in api.platforms(repository, "latest").items():
        config = json.dumps(api.config(repository, digest))
        assert token not in config, platform
        assert "BUILD_TOKEN" not in config, platform  # not smuggled in as a build arg
        assert "/token-length" in config, platform  # the RUN is in the history, and clean

    # ... nor in builder's output, the metadata or any child's argv.
    assert token not in done.stdout + done.stderr
    assert files_containing(tmp_path, (needle,)) == []
    assert "bake" in watch.commands
    assert watch.hits == []


def test_a_secret_whose_variable_is_unset_stops_the_run_before_any_work(
    make_build_repo: MakeRepo,
):
    repo = make_build_repo(
        {"images/solo/Dockerfile": "FROM scratch\nCOPY x /x\n", "images/solo/x": "x\n"}
    )
    done = repo.builder(
        "build", "--all", "--secret", "id=token,env=BUILD_TOKEN_UNSET", check_exit=2
    )
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --secret id=token,env=BUILD_TOKEN_UNSET: "
        "environment variable BUILD_TOKEN_UNSET is not set or empty"
    )
    assert repo.engine.api.tags(repo.repository("solo")) == []
