"""Out-of-sample comparison: the EV rule vs the fixed threshold vs the rules, and each
meta-labelling strategy vs its primary rule, after fees, slippage and funding.

    python research/ev_meta.py explore [--variant default|sigmoid|no-calibration]
    python research/ev_meta.py holdout

``explore`` uses the first 80 % of ../shared/data/binance-usdm/SOLUSDT-5m.parquet only: the
models are trained walk-forward on it and every strategy is backtested on its out-of-sample
part (from the first test window to the cut). ``holdout`` trains walk-forward on the whole
file and backtests the last 20 % (every bar there is predicted by a fold model trained on
earlier bars only, with a margin chosen inside that fold's training window); it is meant to be
run once, with the default settings, after the exploration. Each run prints a Markdown table
and writes it with the details (margins per fold, calibration) as JSON under
``runs/research/``. Lean on purpose: one process, one model thread, run it with ``nice``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-usdm"
VARIANTS = {"default": {}, "sigmoid": {"calibration": "sigmoid"}, "no-calibration": {"calibration": "none"}}
META = ("meta:ema-cross", "meta:donchian", "meta:scoring")
RULES = ("buy-and-hold", "ema-cross", "donchian", "scoring")
COLUMNS = ("trade_count", "total_return", "sharpe", "max_drawdown", "win_rate", "profit_factor", "fees_paid",
           "funding_paid")


def settings_for(out: Path, **overrides):
    from perpbot.config import load_settings

    return load_settings(None, candles_file=DATA / "SOLUSDT-5m.parquet", funding_file=DATA / "SOLUSDT-funding.parquet",
                         mark_file=DATA / "SOLUSDT-8h-mark.parquet", output_dir=out, n_jobs=1, **overrides)


def row(name: str, metrics: dict) -> dict:
    return {"strategy": name, **{k: metrics.get(k) for k in COLUMNS}}


def fmt(rows: list[dict]) -> str:
    head = "| strategy | trades | return | Sharpe | max DD | win rate | PF | fees USDT | funding USDT |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        def pct(v):
            return "n/a" if v is None or v != v else f"{100 * v:+.2f} %"
        def num(v, d=2):
            return "n/a" if v is None or v != v else f"{v:.{d}f}"
        lines.append(f"| {r['strategy']} | {r['trade_count']} | {pct(r['total_return'])} | {num(r['sharpe'])} | "
                     f"{pct(r['max_drawdown'])} | {pct(r['win_rate'])} | {num(r['profit_factor'])} | "
                     f"{num(r['fees_paid'])} | {num(r['funding_paid'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from perpbot.backtest.runner import run_strategies
    from perpbot.app.jobs import model_probabilities, train_job
    from perpbot.data.market import load_market
    from perpbot.logs import configure_logging

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase", choices=("explore", "holdout"))
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="default")
    ap.add_argument("--out", type=Path, default=Path("runs/research"))
    args = ap.parse_args(argv)
    if args.phase == "holdout" and args.variant != "default":
        ap.error("the hold-out is scored once, with the default settings")
    configure_logging(None)
    out = args.out / f"{args.phase}-{args.variant}"
    s = settings_for(out, **VARIANTS[args.variant])
    full = load_market(s.candles_file, "5m", funding_file=s.funding_file, mark_file=s.mark_file)
    n = len(full.candles)
    cut = int(0.8 * n)
    train_market = full.slice(0, cut) if args.phase == "explore" else full
    t0 = time.perf_counter()
    report: dict = {"phase": args.phase, "variant": args.variant, "cut_time": str(full.candles.timestamp.iloc[cut]),
                    "models": {}}
    models = {}
    for strategy in ("ai", *META):
        trained = train_job(s, market=train_market, strategy=strategy)
        models[strategy] = trained.bundle
        b = trained.bundle
        report["models"][strategy] = {
            "version": b.version, "oos_metrics": b.oos_metrics,
            "margins": [(f["test_start_time"], f["margin"], f["margin_source"]) for f in b.decision["folds"]],
            "final_margin": b.decision["final"]["margin"],
            "ece": {c: v["ece"] for c, v in b.calibration["reliability"].items()},
            "ece_uncalibrated": {c: v["ece"] for c, v in b.calibration.get("reliability_uncalibrated", {}).items()},
        }
        print(f"trained {strategy} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    # the scored segment: out of sample (explore: first test window .. cut; hold-out: cut .. end),
    # starting warmup_bars earlier so that the first scored bar can trade
    if args.phase == "explore":
        first = int(full.candles.timestamp.searchsorted(models["ai"].folds[0].test_start_time))
        lo, hi = first - s.warmup_bars, cut
    else:
        lo, hi = cut - s.warmup_bars, n
    seg = full.slice(lo, hi)
    report["segment"] = [str(seg.candles.timestamp.iloc[0]), str(seg.candles.timestamp.iloc[-1])]
    outputs = {name: model_probabilities(s, seg, models[name], None, name) for name in ("ai", *META)}
    rows = []
    for decision in ("ev", "threshold"):
        sd = s.model_copy(update={"decision": decision})
        run = run_strategies(sd, seg, ["ai"], models={"ai": outputs["ai"]})["ai"]
        rows.append(row(f"ai ({'EV rule, Kelly' if decision == 'ev' else 'threshold 0.6'})", run.metrics))
    runs = run_strategies(s, seg, [*RULES, *META], models={m: outputs[m] for m in META})
    for name in RULES:
        rows.append(row(name, runs[name].metrics))
    for name in META:
        rows.append(row(f"{name} (EV rule, Kelly)", runs[name].metrics))
    report["table"] = rows
    report["seconds"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"{args.phase} ({args.variant}): {report['segment'][0]} .. {report['segment'][1]}, "
          f"{report['seconds']:.0f} s\n")
    print(fmt(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
