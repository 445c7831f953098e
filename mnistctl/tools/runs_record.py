"""The shape of the run.json fields `mnistctl runs` reads, checked in one place.

    python -c "from mnistctl.tools.runs_record import record_problem; print(record_problem({'history': [1, 2]}))"

A record that is valid JSON but has a field of another type (edited by hand, written by another tool) is
listed as `unreadable`, and `runs show` names the field, instead of one bad file breaking the listing of
every run. Fields runs does not read are not checked; a missing field or `null` is fine everywhere.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable, Iterator

Kind = tuple[str, Callable[[object], bool]]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_iso_time(value: object) -> bool:
    try:
        datetime.datetime.fromisoformat(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


TEXT: Kind = ("a string", lambda v: isinstance(v, str))
TIME: Kind = ("an ISO time such as 2026-12-04T13:08:33.120+00:00", _is_iso_time)
NUMBER: Kind = ("a number", _is_number)
SECONDS: Kind = ("a finite number of seconds", lambda v: _is_number(v) and math.isfinite(v))  # type: ignore[arg-type]
WHOLE: Kind = ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool))
OBJECT: Kind = ("an object", lambda v: isinstance(v, dict))
LIST: Kind = ("a list", lambda v: isinstance(v, list))

TOP_LEVEL: dict[str, Kind] = {
    "status": TEXT,
    "subcommand": TEXT,
    "started": TIME,
    "finished": TEXT,
    "ckpt_path": TEXT,
    "wall_time_s": SECONDS,
    "epochs_completed": WHOLE,
    "checkpoints": OBJECT,
    "metrics": OBJECT,
    "versions": OBJECT,
    "git": OBJECT,
    "device": OBJECT,
    "history": LIST,
    "outputs": LIST,
    "resumes": LIST,
}


def record_problem(record: dict) -> str | None:
    """The first field of run.json that runs cannot read (`history[0] is 1, not an object`); None when all are fine."""
    return next(_problems(record), None)


def _wrong(where: str, value: object, kind: Kind, required: bool = False) -> str | None:
    expected, fits = kind
    if value is None:
        return f"{where} is missing, not {expected}" if required else None
    return None if fits(value) else f"{where} is {_short(value)}, not {expected}"


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _problems(record: dict) -> Iterator[str]:
    # The caller takes the first problem only, so each step may rely on the fields checked before it.
    for field, kind in TOP_LEVEL.items():
        if problem := _wrong(field, record.get(field), kind):
            yield problem
    checkpoints = record.get("checkpoints") or {}
    for field, kind in (("monitor", TEXT), ("best", TEXT), ("last", TEXT), ("best_score", NUMBER)):
        if problem := _wrong(f"checkpoints.{field}", checkpoints.get(field), kind):
            yield problem
    if problem := _wrong("git.commit", (record.get("git") or {}).get("commit"), TEXT):
        yield problem
    for name, value in (record.get("metrics") or {}).items():
        if problem := _wrong(f"metrics.{name}", value, NUMBER):
            yield problem
    for n, epoch in enumerate(record.get("history") or []):
        if problem := _wrong(f"history[{n}]", epoch, OBJECT, required=True) or _wrong(
            f"history[{n}].epoch", epoch.get("epoch"), WHOLE, required=True
        ):
            yield problem
        for name, value in epoch.items():
            if problem := _wrong(f"history[{n}].{name}", value, NUMBER):
                yield problem
    for n, output in enumerate(record.get("outputs") or []):
        if problem := _wrong(f"outputs[{n}]", output, TEXT, required=True):
            yield problem
    for n, resume in enumerate(record.get("resumes") or []):
        if problem := _wrong(f"resumes[{n}]", resume, OBJECT, required=True):
            yield problem
        for field, kind in (("from_epoch", WHOLE), ("config_changes", OBJECT)):
            if problem := _wrong(f"resumes[{n}].{field}", resume.get(field), kind):
                yield problem
