"""Whether the process that wrote a record (a run's run.json, a sweep job's job.json) still runs.

    process_alive("node1", 4242, started=1764950000.0)   # True, False, or None: cannot tell from here

A record left `running` by a process killed with SIGKILL (or a machine that stopped) never records its
end; the pid and host it recorded let a reader on the same machine see that it is gone. A live pid that
started after the record was written is another process that reused the number.
"""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path

START_SLACK_S = 2  # /proc's start time is in clock ticks, the record's to the second


def process_alive(host: object, pid: object, started: float) -> bool | None:
    """`started`: when the record says the process began, in seconds since the epoch. None when this machine
    cannot tell: another host, or a record without host or pid (written by an older version)."""
    if not host or not isinstance(pid, int) or pid <= 0 or host != socket.gethostname():
        return None
    try:
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
    except (OSError, StopIteration):
        return None  # no /proc here (not Linux): cannot tell, which must not read as "gone"
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False  # no such process
    except OSError:
        return None  # hidden from us (/proc mounted with hidepid)
    fields = stat.rsplit(")", 1)[1].split()  # after the command name in parentheses: field 3 on
    if fields[0] in ("Z", "X"):  # a zombie has exited: only its parent has not collected its status yet
        return False
    ticks = int(fields[19])  # field 22, starttime
    return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK") <= started + START_SLACK_S


def process_record(pid: int | None = None) -> dict:
    """`host`, `pid` and `started` of this process (or of `pid`, a child just started): what a record keeps
    so that `record_alive` can tell later whether that process still runs."""
    return {"host": socket.gethostname(), "pid": os.getpid() if pid is None else pid, "started": _now()}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


def record_alive(record: dict) -> bool | None:
    """`process_alive` for a record holding `host`, `pid` and `started` (ISO time; without an offset, local
    time), as `process_record` makes them and job.json keeps them. None when the record lacks any of them."""
    try:
        started = datetime.datetime.fromisoformat(str(record.get("started"))).timestamp()
    except ValueError:
        return None
    return process_alive(record.get("host"), record.get("pid"), started)
