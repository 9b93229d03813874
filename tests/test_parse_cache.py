"""The parsed-Dockerfile cache: same answers as the parser, and never trusted blindly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder import parse_cache
from builder.dockerfiles import ParseRequest, parse_dockerfile
from builder.errors import DockerfileError
from builder.parse_cache import ParseCache

TEXT = "ARG BUILDER_PREFIX=docker.io/acme\nFROM ${BUILDER_PREFIX}/base AS b\nFROM python:3.12\n"


def test_a_cached_parse_equals_a_fresh_one(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    first = ParseCache(path)
    info = first.parse(TEXT, path="images/a/Dockerfile", build_args={"BUILDER_PREFIX": "r/ns"})
    first.save()
    second = ParseCache(path)
    again = second.parse(TEXT, path="images/a/Dockerfile", build_args={"BUILDER_PREFIX": "r/ns"})
    assert (
        again
        == info
        == parse_dockerfile(TEXT, path="images/a/Dockerfile", build_args={"BUILDER_PREFIX": "r/ns"})
    )
    assert again.base is not None
    assert again.base.text == "python:3.12"


def test_build_args_are_part_of_the_key(tmp_path: Path) -> None:
    cache = ParseCache(tmp_path / "cache.json")
    one = cache.parse(TEXT, path="Dockerfile", build_args={"BUILDER_PREFIX": "a/x"})
    two = cache.parse(TEXT, path="Dockerfile", build_args={"BUILDER_PREFIX": "b/y"})
    assert one.references[0].text == "a/x/base"
    assert two.references[0].text == "b/y/base"


def test_errors_are_not_cached_and_still_raised(tmp_path: Path) -> None:
    cache = ParseCache(tmp_path / "cache.json")
    for _ in range(2):
        with pytest.raises(DockerfileError, match="no FROM instruction"):
            cache.parse("# nothing\nARG X\n", path="Dockerfile")


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"parser": "other-version", "entries": {}}), json.dumps([1, 2])],
)
def test_a_foreign_or_broken_cache_is_ignored(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cache.json"
    path.write_text(content, encoding="utf-8")
    info = ParseCache(path).parse(TEXT, path="Dockerfile")
    assert info == parse_dockerfile(TEXT, path="Dockerfile")


def test_only_entries_used_this_run_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    cache = ParseCache(path)
    cache.parse(TEXT, path="a/Dockerfile")
    cache.parse(TEXT, path="b/Dockerfile")
    cache.save()
    later = ParseCache(path)
    later.parse(TEXT, path="a/Dockerfile")
    later.save()
    assert len(json.loads(path.read_text(encoding="utf-8"))["entries"]) == 1


READS = (
    "FROM alpine AS t\nONBUILD COPY . /app\nFROM t AS built\nARG X\nCOPY src/ $X /app/\n"
    "RUN --mount=type=bind,source=req.txt,target=/r true\nONBUILD RUN true\n"
)


def test_context_reads_survive_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    first = ParseCache(path)
    info = first.parse(READS, path="images/a/Dockerfile", platforms=("linux/amd64", "linux/arm64"))
    first.save()
    again = ParseCache(path).parse(
        READS, path="images/a/Dockerfile", platforms=("linux/amd64", "linux/arm64")
    )
    assert again == info
    assert [r.path for r in again.reads] == [".", ".", "src", "req.txt"]
    assert again.onbuild == (7, "ONBUILD RUN true")


def test_an_entry_without_its_reads_is_parsed_again(tmp_path: Path) -> None:
    """An entry that lost its reads must never read as "reads nothing"."""
    path = tmp_path / "cache.json"
    cache = ParseCache(path)
    info = cache.parse(READS, path="Dockerfile")
    cache.save()
    data = json.loads(path.read_text())
    for entry in data["entries"].values():
        del entry["reads"]
    path.write_text(json.dumps(data))
    assert ParseCache(path).parse(READS, path="Dockerfile") == info


# -- parsing ahead on several cores -------------------------------------------------------

# Run in a fresh interpreter: the test process has loaded the parser binding (and Go's
# runtime with it), after which ParseCache.warm must not fork.
WARM_SCRIPT = r"""
import json, os, sys
from builder import parse_cache
from builder.dockerfiles import ParseRequest
from builder.parse_cache import ParseCache, info_to_json

forks = []
fork = os.fork
def counting_fork():
    forks.append(1)
    return fork()
os.fork = counting_fork
parse_cache._cores = lambda: 3
broken_child = sys.argv[1] == "broken-child"
if broken_child:
    parent = os.getpid()
    dump = json.dump
    def failing_dump(obj, fp, **kw):
        if os.getpid() != parent:
            raise OSError("the pipe broke")
        return dump(obj, fp, **kw)
    parse_cache.json.dump = failing_dump

requests = []
for i in range(240):
    kind = i % 6
    if kind == 0:
        text = f"ARG BUILDER_PREFIX\nFROM ${{BUILDER_PREFIX}}/base-{i % 7}\nCOPY src/ /app/\n"
    elif kind == 1:
        text = (f"FROM python:3.12 AS deps\nRUN pip install x\n"
                f"FROM acme/runtime-{i}\nCOPY --from=deps /x /x\n")
    elif kind == 2:
        text = f"FROM alpine\nRUN --mount=type=bind,from=acme/tools-{i},target=/t true\n"
    elif kind == 3:
        text = "# nothing here\nARG X\n"  # no FROM: an error the serial parse reports
    elif kind == 4:
        text = f"FROM alpine AS a{i}\nFROM a{i}\n"
    else:
        text = f"FROM debian:bookworm\nADD files-{i}.tar /\n"
    target = "missing" if i == 5 else None  # a target no stage has
    requests.append(ParseRequest(text, f"images/i{i}/Dockerfile",
                                 {"BUILDER_PREFIX": "docker.io/acme"}, target,
                                 ("linux/amd64", "linux/arm64")))
loaded_before = "dockerfile" in sys.modules
cache = ParseCache(None)
cache.warm(requests)
warmed = dict(cache._used)
expected, failed = {}, []
for request in requests:
    try:
        expected[request.key()] = info_to_json(request.parse())
    except Exception:
        failed.append(request.key())
print(json.dumps({
    "loaded_before": loaded_before,
    "forks": len(forks),
    "same": all(warmed[k] == v for k, v in expected.items() if k in warmed),
    "warmed": len(warmed),
    "expected": len(expected),
    "failed_warmed": sum(1 for k in failed if k in warmed),
    "failed": len(failed),
}))
"""


def run_warm(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", WARM_SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_warm_parses_on_several_processes_what_the_parser_would() -> None:
    result = run_warm("plain")
    assert result["loaded_before"] is False
    assert result["forks"] == 2  # three shares: this process's and two children's
    assert result["same"] is True
    assert result["failed"] == 41  # 40 without FROM, 1 with an unknown target
    assert result["warmed"] == result["expected"] == 240 - 41
    assert result["failed_warmed"] == 0  # errors are left to the parse that reports them


def test_a_child_that_fails_only_costs_its_share() -> None:
    result = run_warm("broken-child")
    assert result["forks"] == 2
    assert result["same"] is True
    # This process's share is warmed; the children's are parsed again when asked for.
    assert 0 < result["warmed"] < result["expected"]  # type: ignore[operator]


def test_warm_does_not_fork_once_the_parser_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    parse_dockerfile(TEXT, path="Dockerfile")  # the binding, and Go's runtime, are loaded

    def no_fork() -> int:
        raise AssertionError("forked a process that runs Go")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(parse_cache, "_cores", lambda: 4)
    cache = ParseCache(None)
    requests = [ParseRequest(TEXT, f"images/i{i}/Dockerfile") for i in range(300)]
    cache.warm(requests)
    info = cache.parse(TEXT, path="images/i7/Dockerfile")
    assert info == parse_dockerfile(TEXT, path="images/i7/Dockerfile")


CLI_SCRIPT = r"""
import sys
from builder import parse_cache
if sys.argv[1] == "serial":
    parse_cache._can_fork = lambda: False
else:
    forks = []
    fork = parse_cache.os.fork
    def counting_fork():
        forks.append(1)
        sys.stderr.write("forked\n")
        return fork()
    parse_cache.os.fork = counting_fork
from builder.cli import run
sys.argv = ["builder", *sys.argv[2:]]
run()
"""


def test_a_fresh_clone_plans_the_same_on_several_cores_as_on_one(tmp_path: Path) -> None:
    """The generated monorepo of benchmarks/, small: enough Dockerfiles to fork for."""
    root = Path(__file__).resolve().parents[1]
    repo = tmp_path / "repo"
    generate = [sys.executable, str(root / "benchmarks" / "make_repo.py"), str(repo)]
    subprocess.run(
        [*generate, "--images", "160", "--files", "1600", "--seed", "3"],
        check=True,
        capture_output=True,
    )
    outputs = {}
    for mode in ("serial", "parallel"):
        cache = repo / ".git" / "builder"
        if cache.exists():
            for entry in cache.iterdir():
                entry.unlink()
        args = ["affected", "-C", str(repo), "--base", "HEAD~1", "--head", "HEAD"]
        done = subprocess.run(
            [sys.executable, "-c", CLI_SCRIPT, mode, *args, "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
            cwd=root,
            env={k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS")},
        )
        assert done.returncode == 0, done.stderr
        forks = done.stderr.count("forked")
        assert forks == (0 if mode == "serial" else 1), done.stderr  # two cores or more
        outputs[mode] = json.loads(done.stdout)
    assert outputs["parallel"] == outputs["serial"]
    assert len(outputs["serial"]["affected"]) > 10
