"""Print a `benchmarks` report as rich tables.

python -c "import json; from benchmarks.table import print_report; print_report(json.load(open('bench.json')))"
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from benchmarks.pairs import startup_s

LEGEND = (
    "A: torchvision MNIST + ToTensor, DataLoader(32, 4 workers), Lightning. B: plain PyTorch over in-memory "
    "tensors at C's batch, lr and precision. C: mnistctl fit, default config. ISA: the instruction set oneDNN "
    "was allowed (AVX2 on an AVX512 CPU: emulated with ONEDNN_MAX_CPU_ISA=AVX2). float: fp32, or bf16 "
    "autocast. samples/s and train s: training loop only; "
    "start s: command start to first batch (B and C: samples/s pooled, train s and start s the mean, over "
    "their repeats; the other columns from the first); wall s: whole command; peak MB: peak resident memory of the "
    "process (in brackets with its worker processes, whose shared pages count once per process)."
)


PRECISION = {"32-true": "fp32", "bf16-mixed": "bf16"}  # short names for the table


def _num(value, fmt: str = ",.0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{suffix}"


def _memory(row: dict) -> str:
    peak, tree = row.get("peak_rss_mb"), row.get("tree_rss_mb")
    if peak is None:
        return "-"
    return f"{peak:,.0f}" + (f" ({tree:,.0f})" if tree and tree > 1.2 * peak else "")


def _acc(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _fast_run(run: dict) -> str:
    """`seed 0: 58.7 s = 6.1 start-up + 47.1 training + 5.5 the rest, 99.17%`."""
    text = f"seed {run['seed']}: {run['wall_s']:.1f} s"
    start = run.get("timeline_s", {}).get("train_start")
    if start is not None and run.get("train_s"):
        rest = run["wall_s"] - start - run["train_s"]
        text += f" = {start:.1f} start-up + {run['train_s']:.1f} training + {rest:.1f} the rest"
    return f"{text}, {_acc(run.get('test_acc'))}"


def runs_table(report: dict) -> Table:
    table = Table(title=f"Training {report['samples']:,} MNIST images, same CNN ({report['mode']} mode)")
    columns = ("run", "ISA", "float", "batch", "samples/s", "train s", "start s", "wall s", "peak MB", "CPU s")
    for column in (*columns, "test acc"):
        table.add_column(column, justify="left" if column in ("run", "ISA") else "right", no_wrap=column != "peak MB")
    native = report["machine"].get("isa", "")
    for key, row in report.get("runs", {}).items():
        failed = f" [red](exit {row['rc']})[/]" if row["rc"] else ""
        table.add_row(
            f"{key.split('@')[0]} {row['what']}{failed}",
            row.get("isa", native),
            PRECISION.get(row.get("precision"), str(row.get("precision") or "-")),
            str(row["batch_size"]),
            _num(row.get("samples_per_s")),
            _num(row.get("train_s"), ".1f"),
            _num(startup_s(row), ".1f"),
            _num(row.get("wall_s"), ".1f"),
            _memory(row),
            _num(row.get("cpu_s"), ".0f"),
            _acc(row.get("test_acc")),
        )
    table.caption = LEGEND
    return table


def extras_table(report: dict) -> Table:
    table = Table(title="Also measured")
    table.add_column("measurement", no_wrap=True)
    table.add_column("result", justify="right")
    table.add_column("detail")
    ratios = report.get("ratios", {})
    if ratios.get("C/A"):
        table.add_row("throughput C/A", f"{_num(ratios['C/A'], '.2f')}x", f"on {report['machine'].get('isa')}")
    for summary in report.get("isas", []):
        _isa_rows(table, summary)
    start = report.get("startup", {})
    if start:
        table.add_row("mnistctl --help", _num(start.get("help_s"), ".2f", " s"), start.get("help_note", "median of 3"))
        note = start.get("sweep_note", "median of 3")
        dry_run = _num(start.get("sweep_dry_run_s"), ".2f", " s")
        table.add_row("mnistctl sweep --dry-run criterion=ce,mse", dry_run, note)
    pred = report.get("predict", {})
    if pred:
        detail = pred.get("note") or f"{pred['predict_samples']:,} images in {pred['predict_s']:.2f} s to CSV"
        detail += f"; command wall {pred['wall_s']:.1f} s" if "wall_s" in pred else ""
        table.add_row("mnistctl predict (after start-up)", _num(pred.get("images_per_s"), ",.0f", " img/s"), detail)
    sweep = report.get("sweep", {})
    if sweep:
        for label, run in (("warm", sweep), ("cold", sweep.get("cold") or {})):
            if not run:
                continue
            detail = run.get("note") or f"{run['jobs']} tiny jobs, sweep wall {run['wall_s']:.1f} s"
            if "job_wall_s" in run:
                fits = " + ".join(f"{f:.1f}" for f in run["job_fit_s"])
                starts = " + ".join(f"{f:.1f}" for f in run["job_start_s"])
                detail += f"; fits {fits}; each job's start {starts}; sweep {run['sweep_machinery_s']:.1f}"
            name = f"sweep overhead per job, {label} start"
            table.add_row(name, _num(run.get("per_job_overhead_s"), ".1f", " s"), detail)
        if "joblib_speedup" in sweep:
            detail = f"the same jobs: basic {sweep['wall_s']:.1f} s, joblib n_jobs=2 {sweep['joblib_wall_s']:.1f} s"
            table.add_row("joblib speed-up over basic", f"{sweep['joblib_speedup']:.2f}x", detail)
    return table


def _isa_rows(table: Table, summary: dict) -> None:
    """C/B, C's start-up minus B's, and fast.yaml's time to 99%, under one instruction set."""
    isa = summary["isa"]
    kernel = f"oneDNN: {summary.get('onednn_isa')}, convolution {summary.get('conv_kernel')}"
    if "C/B" in summary:
        each = summary.get("C/B_each") or []
        listed = ", ".join(f"{r:.3f}" for r in each)
        pairs = f"pooled over {len(each)} mirrored pairs ({listed}); " if len(each) > 1 else ""
        table.add_row(f"throughput C/B, {isa}", f"{_num(summary['C/B'], '.3f')}x", pairs + kernel)
        gap = summary.get("startup_C_minus_B_s")
        table.add_row(f"start-up C - B, {isa}", _num(gap, "+.1f", " s"), "command start to first batch")
    fast = summary.get("time_to_99", {})
    if "runs" in fast:
        per_seed = "; ".join(_fast_run(r) for r in fast["runs"])
        precision = ", ".join(sorted({str(r.get("precision")) for r in fast["runs"]}))
        verdict = "reached" if fast["all_reached"] else "[red]not reached by every seed[/]"
        detail = f"{verdict} ({precision}); {per_seed}"
        table.add_row(f"{fast['config']} to 99%, {isa}", f"{fast['median_wall_s']:.1f} s", detail)
    elif fast:
        table.add_row(f"time to 99% test acc, {isa}", "-", fast["note"])


def print_report(report: dict) -> None:
    console = Console(width=max(Console().width, 120))  # 120 columns when piped, so the table stays whole
    m = report["machine"]
    console.print(
        f"{m['cpu']} ({m.get('isa')}), {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"cuda={m['cuda']}; load average {report['load_1m_start']:.1f} -> {report['load_1m_end']:.1f}; "
        f"benchmark took {report['bench_wall_s']:.0f} s"
    )
    if report.get("runs"):
        console.print(runs_table(report))
    console.print(extras_table(report))
    if "gpu" in report:  # a CUDA machine: the plain loop and mnistctl side by side on the GPU
        from benchmarks.gpu import lines

        console.print("\n".join(lines(report["gpu"])), highlight=False, markup=False)
