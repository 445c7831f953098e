"""What mnistctl prints: its log lines on stderr (global rank zero only), and what `--quiet` turns off.

    mnistctl fit --quiet     # warnings and errors only: no progress, no result tables, no summary

Imports nothing heavy: `main()` uses it before deciding whether to load torch.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

SUBCOMMANDS = ("fit", "validate", "test", "predict")
_quiet = False  # set by main (set_quiet): only an explicit --quiet silences result tables and "wrote" lines
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric")
# Lightning's info lines that mnistctl replaces with its own one device line (cli/device_report.py), or that
# advertise: the litlogger tip, "GPU available: ...", "TPU available: ...", the Tensor Cores advice (mnistctl
# sets the matmul precision itself) and, on a single-device run, "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]".
NOISE = ("💡 Tip:", "GPU available: ", "TPU available: ", "You are using a CUDA device")
RANK_LINE = "LOCAL_RANK: "
# The loggers those lines come from: rank_zero_info logs to whichever rank_zero module was imported last.
NOISY_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
    "pytorch_lightning.accelerators.cuda",
)
_single_device = True  # set by device_report once the Trainer knows its devices


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record arrives (pytest and notebooks swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"mnistctl: {record.levelname.lower()}: {message}"


def _global_rank() -> int:
    # Lightning keeps the process's global rank here (from RANK/LOCAL_RANK/SLURM_PROCID, then the strategy).
    rank_zero = sys.modules.get("lightning_fabric.utilities.rank_zero")
    return int(getattr(getattr(rank_zero, "rank_zero_only", None), "rank", 0) or 0)


def configure_logging(quiet: bool = False) -> None:
    """mnistctl's log lines go to stderr at INFO (WARNING with --quiet); Lightning's follow the same level.

    Call it after importing Lightning: `import pytorch_lightning` resets its logger to INFO.
    """
    set_quiet(quiet)
    logger = logging.getLogger("mnistctl")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter("%(message)s"))
        handler.addFilter(lambda record: _global_rank() == 0)
        logger.addHandler(handler)
    logger.propagate = False
    level = logging.WARNING if quiet else logging.INFO
    logger.setLevel(level)
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in NOISY_LOGGERS:
        noisy = logging.getLogger(name)
        if _not_noise not in noisy.filters:
            noisy.addFilter(_not_noise)


def _not_noise(record: logging.LogRecord) -> bool:
    """False for a Lightning line that mnistctl replaces or drops (NOISE, and single-device rank lines)."""
    message = str(record.msg)
    if message.startswith(NOISE):
        return False
    return not (_single_device and message.startswith(RANK_LINE))


def single_device(value: bool) -> None:
    """Whether this run uses one device: Lightning's per-rank `LOCAL_RANK: ...` lines are then dropped."""
    global _single_device
    _single_device = value


def set_quiet(quiet: bool) -> None:
    """Whether this command runs with --quiet (set for every subcommand, before it is routed)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def quiet_args(argv: list[str]) -> list[str]:
    """The flags `--quiet` stands for, appended so they win over configs: no bar, no result table."""
    subcommand = argv[0] if argv else ""
    extra = ["--trainer.enable_progress_bar", "false"] if subcommand in SUBCOMMANDS else []
    if subcommand in ("validate", "test"):
        extra += ["--verbose", "false"]
    return [*argv, *extra]


def format_duration(seconds: float) -> str:
    """`42s`, `3m05s`, `2h10m`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def shown(path: str | Path) -> str:
    """A path as the user can type it from the current folder (relative when inside it)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
