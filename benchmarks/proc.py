"""Run one command as a child process and measure it: wall time, CPU time, peak memory of its process tree.

    python -c "from benchmarks.proc import measure; print(measure(['sleep', '1'], log='/tmp/log'))"

Peak memory is sampled from /proc every 0.5 s: `peak_rss_mb` is the child's own peak resident set
(VmHWM), `tree_rss_mb` the peak of the summed RSS of the child and all its descendants (e.g. DataLoader
workers; forked workers share pages with their parent, so the sum overstates what the tree holds).
Not wait4's ru_maxrss: after fork+exec it starts from the parent's size. Not PSS: reading
/proc/PID/smaps_rollup costs ~25 ms of CPU per torch process and would slow down what is measured.
`tty=True` gives the child a pseudo-terminal, so progress bars draw as they would for a user.
"""

from __future__ import annotations

import os
import pty
import subprocess
import threading
import time
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
REPO = Path(__file__).resolve().parents[1]


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _memory_kb(pid: int) -> int:
    """Resident set size of one process; 0 once it has exited."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


def tree_memory_kb(root: int) -> int:
    tree, total, todo = _children_of(), 0, [root]
    while todo:
        pid = todo.pop()
        total += _memory_kb(pid)
        todo.extend(tree.get(pid, []))
    return total


def _own_peak_kb(pid: int) -> int:
    """VmHWM: the peak resident set of the program the process runs now; 0 once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _sample(pid: int, peaks: list[int], done: threading.Event) -> None:
    while not done.wait(0.5):
        peaks[0] = max(peaks[0], _own_peak_kb(pid))
        peaks[1] = max(peaks[1], tree_memory_kb(pid))


def _pump(fd: int, sink) -> None:
    """Copy a pseudo-terminal's output to the log until the child closes it."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            return
        if not data:
            return
        sink.write(data)


def measure(
    cmd: list[str],
    log: str | os.PathLike,
    cwd: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    tty: bool = False,
) -> dict:
    """Run `cmd`, its output to `log`; return rc, started_at (time.time()), wall_s, cpu_s (the tree's),
    peak_rss_mb and tree_rss_mb."""
    env = {**os.environ, **(env or {})}
    # The measured commands load benchmarks.probe.BenchProbe: the repository root must be importable.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    with open(log, "wb") as sink:
        master = slave = None
        if tty:
            master, slave = pty.openpty()
            env.setdefault("COLUMNS", "120")
        out = slave if tty else sink
        started_at, start = time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        pump = None
        if tty:
            os.close(slave)
            pump = threading.Thread(target=_pump, args=(master, sink), daemon=True)
            pump.start()
        peaks = [0, 0]  # own VmHWM, tree RSS sum (KiB)
        done = threading.Event()
        sampler = threading.Thread(target=_sample, args=(proc.pid, peaks, done), daemon=True)
        sampler.start()
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # blocks; reaps the child and returns its rusage
        wall = time.perf_counter() - start
        killer.cancel()
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if pump is not None:
            pump.join(timeout=5)
            os.close(master)
    return {
        "rc": proc.returncode,
        "started_at": started_at,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # None: the child exited before the first sample (0.5 s).
        "peak_rss_mb": peaks[0] / 1024 or None,
        "tree_rss_mb": max(peaks) / 1024 or None,
    }
