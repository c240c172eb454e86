"""Real connbot processes for the reliability tests: scripted workers (tests/fakes/worker.py),
gunicorn with the Procfile's web command, and a TCP proxy the test can pause, cut and reopen."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def start(
    args: list[str], env: dict[str, str], log: IO[bytes] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """A process in a group of its own, so that killing it kills its children too (gunicorn's workers)."""
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT if log != subprocess.DEVNULL else log,
    )


def start_worker(env: dict[str, str], log: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """A `connbot worker` whose adapters answer TEST_SCRIPT after TEST_DELAY seconds."""
    return start([sys.executable, "-m", "tests.fakes.worker"], env, log)


def start_web(
    env: dict[str, str],
    port: int,
    workers: int = 2,
    log: IO[bytes] | int = subprocess.DEVNULL,
    host: str = "127.0.0.1",
) -> subprocess.Popen[bytes]:
    """The Procfile's web command: gunicorn with the app factory."""
    return start(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "bot.web.app:create_app()",
        ],
        env,
        log,
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and its children: no clean-up of any kind."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it takes too long."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except ProcessLookupError:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        kill(proc)


class TcpProxy(threading.Thread):
    """Forwards 127.0.0.1:<port> to a target. `pause()` stops forwarding (calls hang), `resume()` goes on;
    `hold_answers()` forwards what clients send but nothing back (an answer lost on its way)."""

    def __init__(self, target_port: int, port: int = 0):
        super().__init__(daemon=True)
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = int(self.listener.getsockname()[1])
        self.flowing = threading.Event()
        self.flowing.set()
        self.answering = threading.Event()
        self.answering.set()
        self.closed = False

    def run(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        pair = {client: upstream, upstream: client}
        try:
            while not self.closed:
                ready, _, _ = select.select(list(pair), [], [], 0.1)
                for sock in ready:
                    self.flowing.wait()
                    if sock is upstream:
                        self.answering.wait()
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def pause(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def hold_answers(self) -> None:
        self.answering.clear()

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        self.answering.set()
        self.listener.close()
