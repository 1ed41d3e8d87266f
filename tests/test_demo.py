"""The demo end to end (docs/PROTOCOL.md §7): one command, a purchase in a real browser, Ctrl-C.

`python -m anon_ticket demo` runs as a newcomer runs it (a child process, its output read as they read
it); the buyer's page it prints first is opened in headless Chromium, a PID is made and saved, the
address and amount the page shows are paid with `demo pay`, and the token appears on the page as the
demo mines. The internal API knows the token. Then SIGINT: every process the demo started is gone,
nothing listened beyond loopback meanwhile, and its folder and state file are removed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from anon_ticket.core.domain import PaymentId
from tests.support import waiting
from tests.support.daemon import REPO_ROOT
from tests.support.regtest import missing_binaries
from tests.support.services import require
from tests.test_buyer_page_browser import Watched, browser

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with the buyer's page tests

URL = re.compile(r"https?://\S+")
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0


def _env(runtime: Path) -> dict[str, str]:
    """The caller's environment, with the demo's state file in a runtime folder of the test's own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("XDG_")}
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_demo(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m anon_ticket demo ARGS` to its end: exit code and output, never raising on failure."""
    return subprocess.run(
        [sys.executable, "-m", "anon_ticket", "demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Demo:
    """The running `demo` command: its output, line by line, as it comes."""

    def __init__(self, runtime: Path) -> None:
        self.env = _env(runtime)
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "anon_ticket", "demo", "--block-secs", "1", "--confirmations", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
            cwd=runtime,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)

    def wait_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.popen.poll() is None, "the demo exited:\n" + "".join(self.output)
                continue
            self.output.append(line)
            found = pattern.search(line)
            if found:
                return found
        raise AssertionError(f"no {pattern.pattern!r} within {timeout:g} s:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(10)  # the pipe's end, once every writer has exited
        assert self.popen.stdout is not None
        self.popen.stdout.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    missing = missing_binaries()
    require("monero", not missing, "install the Debian package `monero` (scripts/test does it as root)")
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (the demo's children run in sessions of their own)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def listening_addresses(pids: set[int]) -> set[str]:
    """The local addresses of every listening TCP socket the processes hold (/proc/net/tcp{,6})."""
    inodes: set[str] = set()
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir() if fds.exists() else ():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(fields[1].split(":")[0])
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1 (as /proc prints them)


@pytest.mark.regtest
@pytest.mark.timeout(420)
def test_the_demo_sells_a_token_in_the_browser_and_cleans_up(demo: Demo, browser: object) -> None:
    first_url = demo.wait_line(URL, START_TIMEOUT).group(0)
    took = time.monotonic() - demo.started
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", first_url), first_url
    panel = demo.wait_line(URL, 10).group(0)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/admin/", panel), panel
    api_token = demo.wait_line(re.compile(r"internal API token (\S+)"), 10).group(1)
    print(f"the demo printed its buyer's page after {took:.1f} s")
    state = json.loads((Path(demo.env["XDG_RUNTIME_DIR"]) / "anon_ticket-demo" / "state.json").read_text())
    folder = Path(state["folder"])
    assert folder.is_dir() and state["pid"] == demo.popen.pid
    children = descendants(demo.popen.pid)
    assert len(children) >= 4  # monerod, two wallet-rpc, the daemon
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in children]
    (monerod,) = [argv for argv in commands if argv[0].endswith(b"monerod")]
    assert b"--regtest" in monerod and b"--offline" in monerod  # never a real chain
    assert listening_addresses(children) <= LOOPBACK

    second = run_demo(env=demo.env, timeout=60)
    assert second.returncode == 1 and f"a demo already runs (pid {demo.popen.pid}" in second.stderr

    origin = first_url.rstrip("/")
    buyer = Watched(browser, origin, width=900)  # type: ignore[arg-type]
    page = buyer.page
    try:
        page.goto(first_url + "?poll=1")
        page.click("#new-pid")
        pid = PaymentId.parse(buyer.field("pid"))
        with page.expect_download():
            page.click("#save-pid")
        page.click("#to-pay")
        buyer.wait_field("payment-id", pid.chain_payment_id().hex())
        address, amount = buyer.field("address"), buyer.field("amount")
        assert amount == "0.1"
        paid = run_demo("pay", address, amount, env=demo.env, timeout=120)
        assert paid.returncode == 0, paid.stdout + paid.stderr
        buyer.wait_field("status", "claimed")
        token = buyer.field("token")
        buyer.check_clean()
    finally:
        buyer.close()

    with requests.Session() as session:
        session.trust_env = False
        record = session.get(
            f"{panel.removesuffix('/admin/')}/api/v1/token/{token}",
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=10,
        )
        assert record.status_code == 200 and record.json()["status"] == "active", record.text
        assert session.get(panel, timeout=10).status_code == 200  # the panel's sign-in page

    stop_started = time.monotonic()
    demo.popen.send_signal(signal.SIGINT)
    assert demo.popen.wait(STOP_TIMEOUT) == 0
    print(f"the demo stopped in {time.monotonic() - stop_started:.1f} s")
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert not folder.exists()
    assert not (Path(demo.env["XDG_RUNTIME_DIR"]) / "anon_ticket-demo" / "state.json").exists()


@pytest.mark.regtest
def test_sigterm_while_the_chain_starts_leaves_nothing_behind(demo: Demo) -> None:
    folder = Path(demo.wait_line(re.compile(r"in (/\S+) "), 60).group(1))
    assert folder.is_dir()
    children = waiting.wait_for(  # monerod and both monero-wallet-rpc
        "the chain's processes",
        lambda: found if len(found := descendants(demo.popen.pid)) >= 3 else None,
        60,
        interval=0.2,
    )
    started = time.monotonic()
    demo.popen.send_signal(signal.SIGTERM)
    assert demo.popen.wait(STOP_TIMEOUT) == 0
    print(f"stopped while starting in {time.monotonic() - started:.1f} s")
    assert not [pid for pid in children | descendants(demo.popen.pid) if Path(f"/proc/{pid}").exists()]
    assert not folder.exists()


@pytest.mark.regtest
def test_a_chain_that_cannot_start_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    """A monerod that dies at once (a broken install): the demo says so, stops the wallet-rpc
    processes it started and removes its folder."""
    missing = missing_binaries()
    require("monero", not missing, "install the Debian package `monero` (scripts/test does it as root)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "monerod"
    broken.write_text("#!/bin/sh\necho 'monerod: cannot open the database' >&2\nexit 3\n")
    broken.chmod(0o755)
    env = _env(tmp_path)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["TMPDIR"] = str(tmp_path)  # the demo's folder goes here, to be looked for afterwards
    result = run_demo(env=env, timeout=180)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not start: monerod" in result.stderr and "exited with 3" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("anon_ticket-demo-*"))
    for entry in Path("/proc").iterdir():  # no wallet-rpc of this demo left running
        cmdline = entry / "cmdline"
        if entry.name.isdigit() and cmdline.exists():
            try:
                assert str(tmp_path).encode() not in cmdline.read_bytes()
            except OSError:
                continue


def test_without_monerod_the_demo_says_how_to_install_it(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["PATH"] = str(tmp_path)  # neither monerod nor monero-wallet-rpc
    result = run_demo(env=env, timeout=60)
    assert result.returncode == 1
    assert "install the Debian package `monero`" in result.stderr
    assert "apt-get install monero" in result.stderr


def test_demo_pay_without_a_running_demo_says_so(tmp_path: Path) -> None:
    result = run_demo("pay", "4" + "A" * 105, "0.1", env=_env(tmp_path), timeout=60)
    assert result.returncode == 1
    assert "no demo is running" in result.stderr and "scripts/demo" in result.stderr


@pytest.mark.parametrize("amount", ["0", "-1", "abc", "0.0000000000001", "NaN"])
def test_demo_pay_refuses_an_amount_that_is_not_xmr(tmp_path: Path, amount: str) -> None:
    result = run_demo("pay", "4" + "A" * 105, amount, env=_env(tmp_path), timeout=60)
    assert result.returncode == 1
    assert "XMR" in result.stderr and "Traceback" not in result.stderr
