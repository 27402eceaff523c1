"""Out-of-sample comparison of feature groups x timeframes: one row per (timeframe, feature set)
with the walk-forward accuracy and directional accuracy beside their base rates, the AI's
trades and Sharpe ratio after fees, slippage and funding, and the verdict of
:mod:`perpbot.ml.honesty` (a plain backtest is one trial: "no edge shown" or "too few trades
to judge", never "edge confirmed").

    nice python research/feature_timeframes.py explore
    nice python research/feature_timeframes.py holdout --sets "candles;<the set explore favoured>"

``explore`` uses the first 80 % of ../shared/data/binance-usdm/SOLUSDT-5m.parquet (resampled
to 15m / 1h for those rows): each configuration is trained walk-forward on it (default
settings: LightGBM, isotonic calibration, EV decision, 30-day first window, 14-day folds) and
its out-of-sample part is backtested. ``holdout`` trains walk-forward on the whole file and
scores only the last 20 % (each bar predicted by a fold model trained on earlier bars); it is
for a set that explore favoured, run once. Every configuration run is a trial and is printed.
Writes the Markdown table and the figures as JSON under ``runs/research/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-usdm"
SETS = "candles;candles,htf,regime;candles,htf,cross_asset,funding_basis,regime"
CUT = 0.8


def settings_for(out: Path, tf: str, groups: str, tag: str):
    from perpbot.config import load_settings

    return load_settings(None, candles_file=DATA / "SOLUSDT-5m.parquet", funding_file=DATA / "SOLUSDT-funding.parquet",
                         mark_file=DATA / "SOLUSDT-8h-mark.parquet", btc_file=DATA / "BTCUSDT-1h.parquet",
                         eth_file=DATA / "ETHUSDT-1h.parquet", output_dir=out, n_jobs=1, timeframe=tf,
                         features=groups.split(","), importance_rows=0, model_path=out / "models" / f"{tag}.joblib")


def one(out: Path, tf: str, groups: str, part: str) -> dict:
    import pandas as pd

    from perpbot.backtest.honesty import ai_model_metrics, honesty_for_runs
    from perpbot.backtest.runner import run_strategies
    from perpbot.app.jobs import model_probabilities, train_job
    from perpbot.data.market import load_market_for

    tag = f"{part}-{tf}-{groups.replace(',', '+')}"
    s = settings_for(out, tf, groups, tag)
    market = load_market_for(s)
    ts = market.candles["timestamp"]
    five = pd.read_parquet(DATA / "SOLUSDT-5m.parquet", columns=["timestamp"])["timestamp"]
    cut_time = five.iloc[int(len(five) * CUT)]
    ns = ts.dt.as_unit("ns").astype("int64").to_numpy()
    cut = int(np.searchsorted(ns, cut_time.as_unit("ns").value))
    t0 = time.perf_counter()
    train_market = market.slice(0, cut) if part == "explore" else market
    trained = train_job(s, market=train_market)
    bundle = trained.bundle
    _, proba_all = model_probabilities(s, market, bundle=bundle)  # features on the whole history (causal)
    if part == "explore":  # out of sample: from the first test window to the cut
        lo, hi = int(np.searchsorted(ns, bundle.folds[0].test_start_time.as_unit("ns").value)), cut
    else:  # the last 20 %, never seen by the model that predicts each bar
        lo, hi = cut, len(ts)
    scored, proba = market.slice(lo, hi), proba_all[lo:hi]
    runs = run_strategies(s, scored, ["ai"], models={"ai": (bundle, proba)})
    m = ai_model_metrics(s, scored, proba)
    verdict = honesty_for_runs(s, scored, runs, model_scores=m).verdict
    r = runs["ai"].metrics
    return {"timeframe": tf, "features": groups, "part": part, "n_features": len(bundle.feature_names),
            "from": str(scored.candles["timestamp"].iloc[0]), "to": str(scored.candles["timestamp"].iloc[-1]),
            "n_scored": m.get("n"), "accuracy": m.get("accuracy"), "accuracy_base": m.get("accuracy_base"),
            "directional_accuracy": m.get("directional_accuracy"),
            "directional_accuracy_base": m.get("directional_accuracy_base"), "log_loss": m.get("log_loss"),
            "log_loss_base": m.get("log_loss_base"), "trades": int(r.get("trade_count", 0)),
            "total_return": r.get("total_return"), "sharpe": r.get("sharpe"), "verdict": verdict.verdict,
            "seconds": round(time.perf_counter() - t0, 1)}


def fmt(rows: list[dict]) -> str:
    def f(v, d=3):
        return "n/a" if v is None or v != v else f"{v:.{d}f}"
    lines = ["| timeframe | features | OOS rows | accuracy (base) | directional (base) | log-loss (base) | trades | "
             "return | Sharpe | verdict |", "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['timeframe']} | {r['features']} | {r['n_scored']} | {f(r['accuracy'])} "
                     f"({f(r['accuracy_base'])}) | {f(r['directional_accuracy'])} ({f(r['directional_accuracy_base'])}) "
                     f"| {f(r['log_loss'])} ({f(r['log_loss_base'])}) | {r['trades']} | "
                     f"{f(100 * r['total_return'] if r['total_return'] is not None else None, 2)} % | "
                     f"{f(r['sharpe'], 2)} | {r['verdict']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from perpbot.logs import configure_logging

    configure_logging(None)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", choices=("explore", "holdout"))
    ap.add_argument("--timeframes", default="5m,15m,1h")
    ap.add_argument("--sets", default=SETS, help="feature sets separated by ';', groups by ','")
    ap.add_argument("--out", type=Path, default=Path("runs/research"))
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for tf in a.timeframes.split(","):
        for groups in a.sets.split(";"):
            rows.append(one(a.out, tf, groups, a.part))
            print(fmt(rows[-1:]).splitlines()[-1], f"({rows[-1]['seconds']} s)", flush=True)
    table = fmt(rows)
    print(table)
    (a.out / f"feature_timeframes-{a.part}.md").write_text(table + "\n")
    (a.out / f"feature_timeframes-{a.part}.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
