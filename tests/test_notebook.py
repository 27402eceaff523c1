"""The notebook front end (issue 13, item 4): ``notebooks/perpbot.ipynb`` runs headless with nbclient
on ../shared/data (train → backtest of SOL 1h beside the baselines) and its outputs hold the metrics
table, the verdict line and the equity chart; its controls are ipywidgets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook extra (nbformat, nbclient, ipykernel) is not installed")
nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "perpbot.ipynb"


def test_notebook_runs_headless_and_shows_the_equity_chart(data_dir, tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "parameters" in nb.cells[2].metadata.get("tags", [])
    monkeypatch.setenv("PERPBOT_DATA_DIR", str(data_dir.parent))
    for key in [k for k in os.environ if k.startswith("PERPBOT_") and k != "PERPBOT_DATA_DIR"]:
        monkeypatch.delenv(key)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    data = [o.get("data", {}) for o in outputs if o.output_type in ("display_data", "execute_result")]
    widgets = [d for d in data if "application/vnd.jupyter.widget-view+json" in d]
    assert widgets, "the controls (ipywidgets) are displayed"
    figs = [d["application/vnd.plotly.v1+json"] for d in data if "application/vnd.plotly.v1+json" in d]
    assert len(figs) == 1
    fig = figs[0] if isinstance(figs[0], dict) else json.loads(figs[0])
    assert fig["layout"]["title"]["text"].startswith("Equity")
    assert {t["name"] for t in fig["data"]} >= {"ai", "ema-cross", "buy-and-hold"}
    texts = " ".join(d.get("text/markdown", "") + d.get("text/plain", "") for d in data)
    assert "SOL/USDT:USDT 1h" in texts and "AI: **" in texts and "total_return" in texts
    assert (tmp_path / "runs" / "notebook" / "models").is_dir()  # the model was saved where the notebook ran
