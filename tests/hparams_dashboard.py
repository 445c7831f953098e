"""What TensorBoard's HParams dashboard shows for a logdir, asked from the plugin's own backend.

    python -c "import sys; sys.path.insert(0, 'tests'); from hparams_dashboard import *; print(session_groups('runs'))"

The dashboard's page asks the plugin's `/experiment` (the columns) and `/session_groups` (the rows) routes;
these helpers call the same routes on the same plugin, over the logdir's event files, without a server.
"""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import hparams_plugin
from werkzeug.test import Client


def _routes(logdir: Path) -> dict:
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    context = base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer, data_provider=provider)
    return hparams_plugin.HParamsPlugin(context).get_plugin_apps()


def _ask(logdir: Path, route: str, request: dict) -> dict:
    response = Client(_routes(logdir)[route]).post("/", json={"experimentName": "", **request})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def columns(logdir: Path) -> tuple[list[str], list[str]]:
    """The dashboard's hyperparameter and metric columns."""
    experiment = _ask(logdir, "/experiment", {})
    hparams = [info["name"] for info in experiment.get("hparamInfos", [])]
    metrics = [info["name"]["tag"] for info in experiment.get("metricInfos", [])]
    return hparams, metrics


def session_groups(logdir: Path) -> list[dict]:
    """The dashboard's rows: [{"runs": [...], "hparams": {...}, "metrics": {tag: value}, "status": ...}]."""
    request = {
        "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"],
        "colParams": [],
        "startIndex": 0,
        "sliceSize": 1000,
    }
    groups = _ask(logdir, "/session_groups", request).get("sessionGroups", [])
    return [
        {
            "runs": [s["name"] for s in group["sessions"]],
            "status": [s.get("status") for s in group["sessions"]],
            "hparams": group["hparams"],
            "metrics": {m["name"]["tag"]: m["value"] for m in group.get("metricValues", [])},
        }
        for group in groups
    ]
