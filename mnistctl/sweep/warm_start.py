"""Warm job starts: each sweep job's `mnistctl fit` is forked from a server that has imported torch and
Lightning once, instead of a new interpreter importing them again (about 9 s a job on these CPUs).

    mnistctl sweep criterion=ce,mse                       # warm (basic and joblib launchers)
    MNISTCTL_SWEEP_WARM=0 mnistctl sweep criterion=ce,mse # every job a new interpreter (SLURM jobs always are)

`early_server()` starts warm_server.py as the sweep command starts (its imports overlap the sweep's own and
its planning), on a Unix socket in a private folder; `serving()` names that socket in WARM_ENV for the length
of the multirun, which the launcher's workers inherit; `start()` asks it for a job and returns a Popen-like
handle (pid, poll, wait, terminate, kill), or None when no server is there or it cannot be reached (the
job then starts cold: warm starts only save time, they never decide whether a job runs). The job is still
a process of its own (its own pid, memory, threads, CUDA context); its runner holds a lifeline pipe, so the
job gets SIGTERM when the runner dies, as PR_SET_PDEATHSIG does on the cold path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)
WARM_ENV = "MNISTCTL_SWEEP_WARM_SOCKET"  # set by the sweep while its server runs
SWITCH_ENV = "MNISTCTL_SWEEP_WARM"  # 0: cold starts
WARM_LAUNCHERS = ("basic", "joblib")  # the others start jobs elsewhere (submitit, SLURM nodes)


def wanted(launcher: str) -> bool:
    return launcher in WARM_LAUNCHERS and os.environ.get(SWITCH_ENV, "1") != "0"


class Server:
    """The warm-start server process, importing from the moment it is made; jobs reach it through WARM_ENV."""

    def __init__(self, search: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mnistctl-warm-"))  # mode 700: only this user can connect
        self.path = self.folder / "socket"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)  # jobs queue here while the server imports torch: the first one waits for it
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop(WARM_ENV, None)
        command = [sys.executable, "-m", "mnistctl.sweep.warm_server", str(listener.fileno())]
        self.proc = subprocess.Popen(
            [*command, *(["--search"] if search else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            pass_fds=[listener.fileno()],
            env=env,
        )
        listener.close()
        self.stopped = False

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.proc.stdin.close()
        # The multirun is over: its runners have waited for their jobs (or stopped them). A server still
        # importing would take seconds to notice; SIGTERM ends it now (any job left gets its parent-death signal).
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _choices(overrides: list[str]) -> dict[str, str]:
    chosen = {}
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        chosen[key] = value  # the last one wins, as in Hydra
    return chosen


def likely_launcher(overrides: list[str]) -> str:
    """The launcher the overrides choose, before Hydra is asked: basic unless `hydra/launcher=` says."""
    return _choices(overrides).get("hydra/launcher") or "basic"


def likely_search(overrides: list[str]) -> bool:
    """Whether the overrides choose a search (Optuna): its jobs' fits import optuna."""
    chosen = _choices(overrides)
    return bool(chosen.get("search")) or chosen.get("hydra/sweeper", "basic") != "basic"


@contextlib.contextmanager
def early_server(enabled: bool, search: bool = False):
    """Start a server now, so that it imports torch while the sweep is still composing its plan."""
    early = Server(search) if enabled else None
    try:
        yield early
    finally:
        if early is not None:
            early.stop()


@contextlib.contextmanager
def serving(launcher: str, early: Server | None = None, search: bool = False):
    """Jobs of `launcher` start warm for the length of the block: from `early`, or from a server started now.
    A launcher that starts its jobs elsewhere (submitit, SLURM) gets none, and an early server is stopped."""
    if not wanted(launcher):
        if early is not None:
            early.stop()
        yield None
        return
    server = early or Server(search)
    os.environ[WARM_ENV] = str(server.path)
    try:
        yield server
    finally:
        os.environ.pop(WARM_ENV, None)
        server.stop()


def start(command: list[str], cwd: Path, env: dict, stdout, stderr) -> WarmProcess | None:
    """Start `python -m MODULE ARGS` (command as for Popen) from the warm server, or None to start it cold."""
    path = os.environ.get(WARM_ENV)
    if not path or command[:2] != [sys.executable, "-m"]:
        return None
    try:
        return WarmProcess(path, command[2], command[3:], cwd, env, stdout, stderr)
    except (OSError, ValueError) as err:
        log.warning("warm start unavailable (%s): the job starts cold", err)
        return None


class WarmProcess:
    """A job forked by the warm server: what job.py uses of subprocess.Popen."""

    def __init__(self, path: str, module: str, argv: list[str], cwd: Path, env: dict, stdout, stderr) -> None:
        self.returncode: int | None = None
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.connect(path)
        self._buffer = b""
        lifeline_r, self._lifeline = os.pipe()  # the job watches its end: closed when this process dies
        try:
            request = {"module": module, "argv": argv, "cwd": str(cwd), "env": dict(env)}
            socket.send_fds(self._conn, [json.dumps(request).encode()], [stdout.fileno(), stderr.fileno(), lifeline_r])
        finally:
            os.close(lifeline_r)
        answer = self._message(timeout=None)
        if answer is None or "pid" not in answer:
            self._close()
            raise OSError("the warm-start server refused the job")
        self.pid = int(answer["pid"])

    def _message(self, timeout: float | None) -> dict | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            self._conn.settimeout(None if deadline is None else max(0.0, deadline - time.monotonic()))
            try:
                data = self._conn.recv(4096)
            except (TimeoutError, BlockingIOError):
                return None
            if not data:
                raise OSError("the warm-start server went away")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def poll(self) -> int | None:
        if self.returncode is None:
            self._wait(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._wait(timeout):
            raise subprocess.TimeoutExpired(f"warm job {self.pid}", timeout)
        return self.returncode

    def _wait(self, timeout: float | None) -> bool:
        try:
            answer = self._message(timeout)
        except OSError:  # the server died: its children get SIGTERM (their parent-death signal)
            answer = {"returncode": -signal.SIGTERM}
        if answer is None:
            return False
        self.returncode = int(answer["returncode"])
        self._close()
        return True

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(OSError):
                self._conn.sendall(json.dumps({"signal": int(signum)}).encode() + b"\n")

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lifeline)
        self._conn.close()
