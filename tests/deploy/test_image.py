"""The container image (Containerfile), built and started here with buildah (chroot isolation) on a
stand-in for python:3.11-slim made from Debian's packages (deploy/local-base.sh).

In the image, as its non-root user, on a warehouse mounted from the test: `costlake demo` (generate,
ingest, run, detection, index) and `costlake tenants add-key`; then the image's own command (its
ENTRYPOINT and CMD) serves that warehouse, its HEALTHCHECK passes, and the key reads POST /explain and
GET /costs/daily. compose.yaml names the image, port, volume and health check used here. What the
image holds (`pip list`, `dpkg-query`) is printed and checked for what must not be there. The image is
removed at the end, and the base image too when this test made it.

Needs root, buildah and debootstrap: `make test-image` and `make test` install them as root; elsewhere
this fails saying so."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from costlake import __version__

pytestmark = [pytest.mark.image, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BASE = "docker.io/library/python:3.11-slim"
LOCAL_BASE = "localhost/costlake-base:bookworm"
TAG = f"costlake:{__version__}"  # what `make image` tags, and what compose.yaml runs
# The test builds its own tag and removes it after, leaving an image `make image` built alone.
TEST_TAG = f"localhost/costlake-test:{__version__}"
ENV = {**os.environ, "BUILDAH_ISOLATION": "chroot"}
PORT = 8000  # the image's EXPOSE and its command's default
MUST_NOT_HOLD = ("pyspark", "pytest", "ruff", "mypy", "hypothesis", "moto", "playwright")
NO_PACKAGES = ("gcc", "g++", "cpp", "make", "openjdk-17-jre-headless", "libc6-dev")


@dataclass
class Image:
    tag: str
    config: dict[str, Any]  # the Docker-format config: User, Entrypoint, Cmd, Healthcheck, Volumes, ...
    build_seconds: float
    size: str


def _buildah(*args: str, timeout: float = 1200) -> str:
    done = subprocess.run(["buildah", *args], env=ENV, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip()[-3000:]
        raise AssertionError(f"buildah {' '.join(args[:2])} failed ({done.returncode}):\n{tail}")
    return done.stdout


def _has_image(name: str) -> bool:
    return (
        subprocess.run(
            ["buildah", "inspect", "--type", "image", name], env=ENV, capture_output=True
        ).returncode
        == 0
    )


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    if os.geteuid() != 0 or not shutil.which("buildah") or not shutil.which("debootstrap"):
        pytest.fail(
            "the image test needs root with buildah and debootstrap: `make test-image` installs them as root "
            "(apt-get install buildah debootstrap)"
        )
    made_base = not _has_image(BASE)
    if made_base:
        subprocess.run([str(REPO / "deploy" / "local-base.sh")], env=ENV, check=True, timeout=900)
    start = time.monotonic()
    _buildah("bud", "--format", "docker", "--pull=never", "--isolation", "chroot", "--layers=false",
             "-t", TEST_TAG, "-f", str(REPO / "Containerfile"), str(REPO))  # fmt: skip
    seconds = time.monotonic() - start
    inspected = json.loads(_buildah("inspect", "--type", "image", TEST_TAG))
    size = _buildah("images", "--format", "{{.Size}}", TEST_TAG).strip()
    print(f"\nimage {TEST_TAG}: built in {seconds:.0f} s, {size}")
    try:
        yield Image(TEST_TAG, inspected["Docker"]["config"], seconds, size)
    finally:
        subprocess.run(["buildah", "rmi", "--force", TEST_TAG], env=ENV, capture_output=True)
        if made_base:
            subprocess.run(["buildah", "rmi", "--force", BASE, LOCAL_BASE], env=ENV, capture_output=True)


@pytest.fixture
def container(image: Image) -> Iterator[str]:
    name = _buildah("from", "--pull=never", image.tag).strip()
    # buildah run mounts a container's own copy of each image VOLUME over any `-v` at the same path;
    # dropping the declaration from this working container (not the image) lets the test's folder be /data.
    _buildah("config", "--volume", "/data-", name)
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], env=ENV, capture_output=True)


def test_the_image_is_configured_to_serve_as_a_non_root_user(image: Image) -> None:
    config = image.config
    uid = config["User"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, config["User"]  # numeric: Kubernetes' runAsNonRoot can check it
    assert config["Entrypoint"] == ["costlake"]
    assert config["Cmd"] == ["serve", "--host", "0.0.0.0"]
    assert "COSTLAKE_WAREHOUSE=/data/warehouse" in config["Env"]
    assert "/data" in config["Volumes"] and f"{PORT}/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD" and f":{PORT}/health" in " ".join(
        config["Healthcheck"]["Test"]
    )


def test_compose_runs_the_image_port_volume_and_health_check_used_here(image: Image) -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    service, nightly = compose["services"]["service"], compose["services"]["nightly"]
    for job in (service, nightly):
        assert job["image"] == TAG
        assert any(v.split(":")[1] == "/data" for v in job["volumes"])
        assert job["environment"]["COSTLAKE_WAREHOUSE"] == "/data/warehouse"
    assert f"{PORT}:{PORT}" in service["ports"]
    assert service["healthcheck"]["test"] == image.config["Healthcheck"]["Test"]
    assert nightly["entrypoint"] == ["costlake-nightly"] and nightly["command"] == ["/data/bills"]


def test_the_image_runs_the_jobs_and_serves_the_mounted_warehouse(
    image: Image, container: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the volume: the image's user writes to it

    def run(*command: str, timeout: float = 600) -> str:
        return _buildah("run", "-v", f"{data}:/data", container, "--", *command, timeout=timeout)

    uid = int(image.config["User"].split(":")[0])
    assert run("id", "-u").strip() == str(uid)
    run("costlake", "--quiet", "demo", "--data", "/data/demo", "--events", "20000")
    key = run("costlake", "tenants", "add-key", "tenant-a").strip().splitlines()[-1]
    assert (data / "warehouse").stat().st_uid == uid  # the jobs ran as the image's user
    _nightly_runs_with_and_without_bills(run, data)

    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", PORT)) != 0, f"port {PORT} is taken: the test serves there"
    log = tmp_path / "serve.log"
    command = [*image.config["Entrypoint"], *image.config["Cmd"]]  # the image's own command, unchanged
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["buildah", "run", "-v", f"{data}:/data", container, "--", *command],
            env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_health(server, log)
        run(*image.config["Healthcheck"]["Test"][1:], timeout=30)  # the HEALTHCHECK passes in the image
        assert _uids_of(server.pid, "serve") == {uid}
        headers = {"Authorization": f"Bearer {key}"}
        url = f"http://127.0.0.1:{PORT}"
        accounts = requests.get(f"{url}/accounts", headers=headers, timeout=30)
        assert accounts.status_code == 200, accounts.text
        own = {a["account_id"] for a in accounts.json()["data"]}
        answer = requests.post(f"{url}/explain", json={"query": "what were the biggest anomalies?"},
                               headers=headers, timeout=60)  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["citations"] and {c["account_id"] for c in body["citations"]} <= own
        costs = requests.get(f"{url}/costs/daily", headers=headers, timeout=30)
        assert costs.status_code == 200 and costs.json()["data"], costs.text
        assert {r["account_id"] for r in costs.json()["data"]} <= own
        assert _stop(server), "the service did not stop within 30 s of SIGTERM"
    finally:
        _stop(server)
    _print_contents(run)


def test_a_volume_the_image_user_cannot_write_fails_in_one_line(
    image: Image, container: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)  # root's and not writable by others, as a bind-mounted host folder often is
    done = subprocess.run(  # the first command of a deployment, the one that creates the warehouse
        ["buildah", "run", "-v", f"{data}:/data", container, "--", "costlake", "ingest", "/etc/hostname"],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # buildah adds its own lines about the exit status after the command's
    lines = [
        x for x in done.stderr.strip().splitlines() if not x.startswith(("subprocess exited", "Error: exit"))
    ]
    assert done.returncode == 1, done
    assert len(lines) == 1 and "/data/warehouse" in lines[0] and "ermission denied" in lines[0], lines


def _nightly_runs_with_and_without_bills(run: Callable[..., str], data: Path) -> None:
    """compose.yaml's nightly job in the image (costlake-nightly, tests/deploy/test_nightly.py has the
    rest): a night with no files in /data/bills still runs and indexes; files ingested on an earlier
    night are skipped."""
    nightly = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["nightly"]
    job = [*nightly["entrypoint"], *nightly["command"]]
    bills = data / "bills"
    bills.mkdir()  # the drop must be a folder: a missing one is refused
    bills.chmod(0o777)
    idle = run(*job)
    assert "already ingested" not in idle and " chunks in " in idle, idle
    for bill in sorted((data / "demo").glob("billing_*.csv"))[:2]:
        shutil.copy(bill, bills / bill.name)
    again = run(*job)
    assert again.count("already ingested") == 2 and " chunks in " in again, again


def _wait_for_health(server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"the image's command exited ({server.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"/health did not answer 200 within 120 s:\n{log.read_text()[-3000:]}")


def _uids_of(session: int, word: str) -> set[int]:
    """The real uids of the processes of `session` whose command line holds `word`."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getsid(int(proc.name)) != session:
                continue
            if word not in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0"):
                continue
            uid_line = next(x for x in (proc / "status").read_text().splitlines() if x.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if "buildah" not in (proc / "cmdline").read_bytes().decode(errors="replace"):
            found.add(int(uid_line.split()[1]))
    return found


def _stop(server: subprocess.Popen[bytes]) -> bool:
    """SIGTERM to the server's process group, as a container engine stops a container; whether it
    exited within 30 s (else it is killed)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        return True
    except ProcessLookupError:
        return server.poll() is not None
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        return False


def _print_contents(run: Any) -> None:
    """What the image holds, printed (pytest -s, or in the report of a failure) and checked."""
    pip = json.loads(run("python3", "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"))
    names = {p["name"].lower() for p in pip}
    packages = run("dpkg-query", "-W", "-f", "${Package} ${Version}\\n").splitlines()
    print(f"\nthe image holds {len(pip)} Python distributions and {len(packages)} Debian packages")
    print(
        "pip list: "
        + ", ".join(f"{p['name']}=={p['version']}" for p in sorted(pip, key=lambda p: p["name"].lower()))
    )
    print("dpkg: " + ", ".join(packages))
    assert "costlake" in names and {"fastapi", "uvicorn", "boto3"} <= names  # the server and aws extras
    assert not names & set(MUST_NOT_HOLD), names & set(MUST_NOT_HOLD)
    assert not {p.split()[0] for p in packages} & set(NO_PACKAGES)
