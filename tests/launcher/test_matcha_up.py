"""`matcha up` for real: embedded PostgreSQL, services as processes, the CLI against them, clean stops."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

MATCHA = str(Path(sys.executable).with_name("matcha"))


def start_stack(state_dir: Path, port_offset: int) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(
        [MATCHA, "up", "--state-dir", str(state_dir), "--port-offset", str(port_offset)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "MATCHA_DATABASE_URL": ""},
    )
    deadline = time.monotonic() + 240
    output = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        output.append(line)
        if line.startswith("matcha is up"):
            return process, output
    process.kill()
    raise AssertionError("stack did not come up:\n" + "".join(output))


def cli(state_dir: Path, port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MATCHA, "embed", *args, "--target", f"127.0.0.1:{port}", "--state-dir", str(state_dir), "--tenant", "acme"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def stack_processes(state_dir: Path) -> list[psutil.Process]:
    """Every live process whose command line mentions this stack's state directory."""
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            text = " ".join(process.info["cmdline"] or []) + json.dumps(process.info["environ"] or {})
        except psutil.Error:
            continue
        if str(state_dir) in text and process.pid != os.getpid():
            found.append(process)
    return found


@pytest.fixture
def port_offset() -> int:
    return random.randrange(10_000, 14_000)


def test_up_serves_the_cli_stops_cleanly_and_keeps_data(tmp_path, state_dir, port_offset):
    state_dir = state_dir / "launcher"
    port = 50052 + port_offset
    reviews = tmp_path / "reviews.jsonl"
    reviews.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {"id": "1", "text": "The strap broke after a week", "stars": 1},
                {"id": "2", "text": "Lovely colour and very comfortable", "stars": 5},
                {"id": "3", "text": "Shipping took a month", "stars": 2},
            ]
        )
    )

    stack, printed = start_stack(state_dir, port_offset)
    try:
        # The shipped plans are registered for the local tenant.
        plans = next(line for line in printed if line.strip().startswith("plans "))
        assert all(f"{name} v1" in plans for name in ("listening-response", "segment-campaign", "win-back"))
        # The printed review page link opens the page, and its token is a reviewer's of the local tenant.
        link = next(line for line in printed if line.startswith("review page")).split(": ", 1)[1].strip()
        page, _, fragment = link.partition("#token=")
        assert page == f"http://127.0.0.1:{8080 + port_offset}/ui/"
        assert httpx.get(page).status_code == 200
        queue = httpx.get(page.replace("/ui/", "/v1/reviews"), headers={"authorization": f"Bearer {fragment}"})
        assert queue.status_code == 200, queue.text

        ingested = cli(state_dir, port, "ingest", str(reviews), "--collection", "reviews")
        assert ingested.returncode == 0, ingested.stderr
        assert "3 inserted" in ingested.stdout
        found = cli(state_dir, port, "search", "reviews", "delivery was slow", "--top-k", "1")
        assert found.returncode == 0 and "Shipping took a month" in found.stdout

        missing = cli(state_dir, port, "search", "nope", "anything")
        assert missing.returncode == 1
        assert "NOT_FOUND" in missing.stderr and "Traceback" not in missing.stderr

        second = subprocess.run(
            [MATCHA, "up", "--state-dir", str(state_dir), "--port-offset", str(port_offset + 7)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0 and "already running" in second.stderr
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(timeout=60)
    assert stack.returncode == 0
    assert stack_processes(state_dir) == [], "no service or database process may outlive `matcha up`"
    assert not (state_dir / "postgres" / "postmaster.pid").exists()

    # A second start finds the data of the first, and SIGTERM stops it as cleanly as Ctrl-C.
    stack, _ = start_stack(state_dir, port_offset)
    try:
        found = cli(state_dir, port, "search", "reviews", "comfortable colour", "--top-k", "1")
        assert found.returncode == 0 and "Lovely colour" in found.stdout
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(timeout=60)
    assert stack.returncode == 0
    assert stack_processes(state_dir) == []
