"""``perpbot models promote FILE`` (issue 10, item 6; :mod:`perpbot.bot.promotion`): a retrained
model rolled into a running node at its next candle, and the models it must refuse.

The node is the paper node on live prices (the same inbox is wired into the live node) over the
local Bitget simulator with real SOLUSDT candles and funding, running an AI model trained on the
6,000 candles before them. A second model, trained on another window with the same features, is
promoted through the real command line; models for another symbol, timeframe or feature set are
refused by the command (exit 1, one line) and, when their request is written behind its back,
by the node itself, which keeps its model.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from rich.console import Console

from perpbot.config import load_settings
from perpbot.exchange.clients import make_async_exchange
from perpbot.storage.ledger import Ledger
from _sim_fixtures import dry_node, next_candle, quiet_loggers, running_sim, sim_data

START = 6_300


@pytest.fixture(scope="module")
def models(tmp_path_factory, sol5m, sol_funding_path):
    """Two logreg models on the first 6,000 candles (5- and 6-day training windows) and the settings."""
    from perpbot.app.jobs import train_job

    d = tmp_path_factory.mktemp("promote")
    sol5m.iloc[:6_000].to_parquet(d / "candles.parquet")
    kw = dict(candles_file=d / "candles.parquet", funding_file=sol_funding_path, mark_file=None, model="logreg",
              train_days=5, test_days=5, output_dir=d / "out", ledger_url=f"sqlite:///{d / 'ledger.db'}",
              warmup_bars=300, live_window=1000, confidence_threshold=0.4, decision="threshold")
    s = load_settings(None, model_path=d / "first.joblib", **kw)
    first = train_job(s)
    second = train_job(load_settings(None, **{**kw, "train_days": 6}, model_path=d / "second.joblib"))
    return d, s, kw, first, second


def _cli(args: list[str], kw: dict):
    """The real command line in a subprocess: (exit code, stdout + stderr)."""
    env = {**os.environ, "PERPBOT_LEDGER_URL": kw["ledger_url"], "PERPBOT_OUTPUT_DIR": str(kw["output_dir"])}
    proc = subprocess.run([sys.executable, "-m", "perpbot", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


def test_a_promoted_model_takes_over_at_the_next_candle(models, sol5m_path, sol_funding_path, sol_mark8h_path):
    from perpbot.ml.registry import load_bundle, save_bundle

    d, s, kw, first, second = models
    assert first.bundle.market == {"symbol": "SOL/USDT:USDT", "timeframe": "5m"}
    assert first.bundle.features_hash == second.bundle.features_hash and first.bundle.version != second.bundle.version
    # three models the node must refuse: another symbol, another timeframe, other features
    wrong = {}
    for name, change in (("btc", {"market": {"symbol": "BTC/USDT:USDT", "timeframe": "5m"}}),
                         ("15m", {"market": {"symbol": "SOL/USDT:USDT", "timeframe": "15m"}}),
                         ("feats", {"features_hash": "0" * 64})):
        b = load_bundle(second.path)
        for k, v in change.items():
            setattr(b, k, v)
        b.version = f"wrong-{name}"
        wrong[name] = save_bundle(b, d / f"wrong-{name}.joblib")

    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, START + 40)
    out = Console(record=True, width=200)
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.bot", "perpbot.dry_run", "perpbot.feed",
                       "perpbot.promotion"), running_sim(data, START) as sim, dry_node(sim, s, "ai", out) as handles:
        bot, sub = handles["bot"], handles["bot"].control.events.subscribe()
        rid = bot.run_id

        for _ in range(3):
            next_candle(sim, bot)
        assert bot.bundle.version == first.bundle.version
        # the command refuses a model for another symbol, timeframe or feature set (exit 1, one line)
        for name, msg in (("btc", "was trained for symbol BTC/USDT:USDT, the node runs SOL/USDT:USDT"),
                          ("15m", "was trained for timeframe 15m, the node runs 5m"),
                          ("feats", "was trained on other features (hash 000000000000) than the running model")):
            code, text = _cli(["models", "promote", str(wrong[name])], kw)
            assert code == 1 and msg in text, text
        req_dir = kw["output_dir"] / "promoted"
        assert not (req_dir / f"run-{rid}.json").exists()

        # the retrained model: queued by the command, taken at the node's next candle
        code, text = _cli(["models", "promote", str(second.path)], kw)
        assert code == 0 and f"model {second.bundle.version} queued for run {rid}" in text, text
        assert bot.bundle.version == first.bundle.version  # not before the next candle
        next_candle(sim, bot)
        swapped_at = bot.exchange._times[-1]
        assert bot.bundle.version == second.bundle.version and bot.signals.bundle is bot.bundle, \
            {p.name: p.read_text()[:300] for p in req_dir.glob("*.json")}
        done = json.loads((req_dir / f"run-{rid}.applied.json").read_text())
        assert done["outcome"] == "applied" and done["version"] == second.bundle.version
        assert bot.control.status()["model_version"] == second.bundle.version
        kinds = []
        while (ev := sub.get(timeout=0.2)) is not None:
            kinds.append((ev.kind, ev.data.get("message", "")))
        assert ("model", f"model {second.bundle.version} promoted (was {first.bundle.version}); it decides from "
                         f"the candle of {swapped_at}") in kinds
        # a request written behind the command's back for an incompatible model: the node refuses it
        (req_dir / f"run-{rid}.json").write_text(json.dumps({"model_file": str(wrong["feats"])}))
        next_candle(sim, bot)
        refused = json.loads((req_dir / f"run-{rid}.refused.json").read_text())
        assert "was trained on other features" in refused["reason"] and bot.bundle.version == second.bundle.version
        for _ in range(3):
            next_candle(sim, bot)
    assert "error" not in handles, (handles.get("error"), out.export_text())
    led = Ledger(s.ledger)
    ev = led.risk_events(rid)
    row = ev[ev.event == "model_promoted"]
    assert len(row) == 1 and pd.Timestamp(row.time.iloc[0]) == swapped_at
    assert json.loads(row.detail.iloc[0]) == {"from": first.bundle.version, "to": second.bundle.version}
    assert led.get_run(rid)["status"] == "finished"

def test_promote_needs_a_running_node(models, tmp_path):
    d, s, kw, first, second = models
    empty = {**kw, "ledger_url": f"sqlite:///{tmp_path / 'empty.db'}"}
    code, text = _cli(["models", "promote", str(second.path)], empty)
    assert code == 1 and "no running node (live, or paper on live prices) in the ledger" in text, \
        text
    code, text = _cli(["models", "promote", str(tmp_path / "missing.joblib")], kw)
    assert code == 1


def test_retrain_rolls_a_fresh_model_into_the_running_node(models, sol5m_path, sol_funding_path, sol_mark8h_path):
    """``perpbot models retrain`` (the retraining schedule's job, deploy/perpbot-retrain.timer) trains the node's
    model again on the settings' candles and queues it: the running node takes it at its next candle."""
    d, s, kw, first, second = models
    cfg = d / "retrain.toml"  # the node's settings: its candles, model and windows
    cfg.write_text("".join(f"{k} = {json.dumps('none' if v is None else v if isinstance(v, (int, float)) else str(v))}\n"
                           for k, v in kw.items()))
    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, START + 10)
    out = Console(record=True, width=200)
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.bot", "perpbot.dry_run", "perpbot.feed",
                       "perpbot.promotion"), running_sim(data, START) as sim, dry_node(sim, s, "ai", out) as handles:
        bot = handles["bot"]
        next_candle(sim, bot)
        code, text = _cli(["models", "retrain", "--config", str(cfg)], kw)
        assert code == 0 and f"queued for run {bot.run_id}" in text, text
        new = text.split("trained ")[1].split(" ")[0]
        assert new not in (first.bundle.version, bot.bundle.version)
        next_candle(sim, bot)
        assert bot.bundle.version == new
        done = json.loads((kw["output_dir"] / "promoted" / f"run-{bot.run_id}.applied.json").read_text())
        assert done["outcome"] == "applied" and done["version"] == new
    assert len(list((kw["output_dir"] / "models").glob("retrained-*.joblib"))) == 1
