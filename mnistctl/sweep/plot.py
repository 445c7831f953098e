"""One PNG comparing the validation-accuracy curves of every job of a sweep (matplotlib, Agg).

mnistctl sweep criterion=ce,mse trainer.max_epochs=3     # then open sweeps/<time>/val_curves.png
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from mnistctl.atomic import atomic_write


def load_matplotlib():
    """pyplot, on the file-only backend (no display on servers and cluster nodes); imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_val_curves(rows: list[dict], path: Path, common: list[str]) -> None:
    """val/acc per epoch, one line per job, labelled by the overrides that set it apart."""
    plt = load_matplotlib()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for row in sorted(rows, key=lambda r: str(r["job"])):
        curve = row.get("val_acc_curve") or []
        if not curve:
            continue
        label = " ".join(o for o in row["overrides"] if o not in common) or "(no overrides)"
        epochs, accuracy = zip(*curve, strict=True)
        ax.plot([e + 1 for e in epochs], accuracy, marker="o", label=f"#{row['job']} {label}"[:70])
    ax.set_xlabel("epoch")
    ax.set_ylabel("val/acc")
    subtitle = textwrap.shorten(f"every job: {' '.join(common)}", 140) if common else ""
    ax.set_title(f"validation accuracy per epoch ({len(rows)} jobs)\n{subtitle}".strip(), fontsize="medium")
    ax.grid(alpha=0.3)
    if ax.lines:
        epochs_seen = sorted({x for line in ax.lines for x in line.get_xdata()})
        if len(epochs_seen) <= 20:
            ax.set_xticks(epochs_seen)
        ax.legend(fontsize="small", loc="best")
    else:
        ax.text(0.5, 0.5, "no job logged val/acc", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
