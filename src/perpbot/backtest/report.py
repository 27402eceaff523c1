"""Self-contained offline HTML report of backtest results: what a trader needs to judge a strategy.

Top to bottom: title and data source (the venue the candles came from beside the venue whose
rules were simulated), the verdict on skill and the seed-target table (when an honesty block is
given), notes, the strategy metrics and the risk halts, the other statistics against overfitting
(:mod:`perpbot.ml.honesty`), charts (equity with halt markers, drawdown one panel per strategy,
rolling Sharpe ratio, price with every trade of the primary strategy), then per strategy the
monthly returns heat map, long vs short and exit-reason breakdowns and a sortable trade list
whose rows open a zoom into the full-resolution candles around the trade, and the model section
(model metrics, per-fold metrics, calibration, feature importance, calls per month, each with a
"not available" note when its data is missing).

Size: series are decimated for display (:mod:`perpbot.backtest.report_figures`), candles are
embedded at full resolution only around trades (:mod:`perpbot.backtest.report_zoom`), and
plotly.js's finance bundle (1.3 MB) is embedded once (:mod:`perpbot.backtest.report_page`):
a year of 5m candles with four strategies gives a ~1.8 MB file that needs no other file and no
network.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from pathlib import Path

import pandas as pd

from perpbot.ml.trading_metrics import format_metrics_table
from perpbot.backtest.report_figures import (TEMPLATE, auto_rule, calibration_figure, calls_figure, candles_frame,
                                             drawdown_figure, equity_figure, importance_figure, price_figure,
                                             rolling_sharpe_figure)
from perpbot.backtest.report_model import ModelPanel
from perpbot.backtest.report_page import asset, data_script, data_source, figure_html, na, plotly_script
from perpbot.backtest.report_tables import (exit_reason_breakdown, halt_events, html_table, monthly_returns,
                                            monthly_returns_html, side_breakdown, trade_list_payload)
from perpbot.backtest.report_zoom import zoom_payload

__all__ = ["data_source", "drawdown_figure", "equity_figure", "honesty_html", "price_figure", "verdict_html",
           "write_html_report"]

esc = html.escape


def _table_html(table: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    numeric = all(pd.api.types.is_numeric_dtype(t) for t in table.dtypes)
    return table.to_html(classes="tbl", border=0, escape=True, na_rep="n/a",
                         float_format=float_format.format if numeric else None)


def verdict_html(rep) -> str:
    """The verdict line of a :class:`perpbot.ml.honesty.block.HonestyReport` as an HTML paragraph."""
    from perpbot.ml.honesty.verdict import EDGE_CONFIRMED, NO_EDGE

    v = rep.verdict
    kind = {EDGE_CONFIRMED: "confirmed", NO_EDGE: "none"}.get(v.verdict, "few")
    reasons = f" — {esc('; '.join(v.reasons))}" if v.reasons else ""
    return (f'<p class="verdict {kind}">Verdict ({esc(rep.strategy)}): '
            f"<b>{esc(v.verdict)}</b>{reasons}</p>")


def _honesty_table(t) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in t.columns)
    cls = {"pass": ' class="pass"', "FAIL": ' class="fail"'}
    body = "".join("<tr>" + "".join(f"<td{cls.get(v, '')}>{esc(v)}</td>" for v in row) + "</tr>" for row in t.rows)
    return f'<h3>{esc(t.title)}</h3><table class="tbl"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def honesty_html(rep, *, skip_targets: bool = False) -> str:
    """HTML section "Statistics against overfitting": every table of
    :func:`perpbot.ml.honesty.render.honesty_tables` (escaped; pass/FAIL cells coloured), then the
    notes. ``skip_targets`` leaves out the seed-target table (shown at the top of the report)."""
    from perpbot.ml.honesty.render import honesty_tables

    tables = honesty_tables(rep)[1 if skip_targets else 0:]
    out = ['<div id="overfitting"></div><h2>Statistics against overfitting</h2>', *(_honesty_table(t) for t in tables)]
    if rep.notes:
        out.append('<ul class="meta">' + "".join(f"<li>{esc(n)}</li>" for n in rep.notes) + "</ul>")
    return "\n".join(out)


def _check_results(results: dict[str, dict]) -> None:
    if not isinstance(results, dict) or not results:
        raise ValueError("results: expected a non-empty dict of strategy name -> {'equity', 'trades'}")
    for name, res in results.items():
        if not isinstance(res, dict) or not isinstance(res.get("equity"), pd.Series):
            raise ValueError(f"results[{name!r}]: needs an 'equity' pandas Series")
        if not isinstance(res.get("trades"), pd.DataFrame):
            raise ValueError(f"results[{name!r}]: needs a 'trades' DataFrame")


def _price_title(source: dict | None, primary) -> str | None:
    """"SOLUSDT 5m (Binance USDS-M data): price and the trades of ai", or None (the default title)."""
    if not source or not source.get("symbol"):
        return None
    venue = f" ({source['venue']} data)" if source.get("venue") else ""
    return f"{source['symbol']} {source.get('timeframe') or ''}{venue}: price and the trades of {primary}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "strategy"


def _halts_html(results: dict[str, dict]) -> str:
    rows = []
    for name, res in results.items():
        for h in halt_events(res.get("risk_events")).itertuples():
            rows.append(f"<tr><td>{esc(str(name))}</td><td>{esc(h.event)}</td>"
                        f"<td>{pd.Timestamp(h.time):%Y-%m-%d %H:%M}</td><td>{h.value * 100:.2f}%</td></tr>")
    if not rows:
        known = any("risk_events" in r for r in results.values())
        return "<p class='meta'>No risk halt stopped a strategy.</p>" if known else \
            na("Risk halts", "the results carry no risk events")
    return ('<h3>Risk halts (no new positions after these bars)</h3><table class="tbl" id="halts"><thead><tr>'
            "<th>strategy</th><th>event</th><th>time (UTC)</th><th>equity change</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


_SIDE_FMT = {"trades": "int", "win_rate": "pct", "net_pnl": "usdt", "avg_pnl": "usdt", "avg_return": "pct",
             "profit_factor": "num", "fees": "usdt", "funding": "usdt", "share": "pct"}


def _strategy_html(name: str, res: dict) -> str:
    trades = res["trades"]
    slug = _slug(name)
    monthly = monthly_returns(res["equity"], res.get("initial_capital"))
    parts = [f'<section class="strategy" id="strategy-{slug}"><h3>{esc(str(name))}</h3><div class="row">',
             f'<div><b>Monthly returns</b>{monthly_returns_html(monthly)}</div>',
             f'<div><b>Long vs short</b> (USDT, net of fees and funding)'
             f"{html_table(side_breakdown(trades), _SIDE_FMT, index_label='side')}</div>",
             f"<div><b>Exit reasons</b>{html_table(exit_reason_breakdown(trades), _SIDE_FMT, index_label='reason')}"
             "</div></div>"]
    if len(trades):
        parts.append(f"<p class='meta'>Trade list ({len(trades):,} trades): click a column to sort, a row to "
                     f"zoom into its candles.</p><div class='tradelist' data-strategy=\"{esc(str(name))}\"></div>")
    else:
        parts.append("<p class='meta'>No trades.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _folds_table(folds: pd.DataFrame) -> pd.DataFrame:
    """Display strings of :func:`~perpbot.backtest.report_model.fold_metrics`: each score "model / base"."""
    def f4(v):
        return "n/a" if pd.isna(v) else f"{v:.4f}"

    out = pd.DataFrame(index=folds["fold"].astype(str))
    out["from"] = [f"{t:%Y-%m-%d %H:%M}" for t in folds["test_start"]]
    out["to"] = ["open" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M}" for t in folds["test_end"]]
    out["bars"] = [f"{int(v):,}" for v in folds["bars"]]
    for key, label in (("accuracy", "accuracy / base"), ("directional_accuracy", "direction / base"),
                       ("precision", "precision / base"), ("log_loss", "log loss / base")):
        out[label] = [f"{f4(a)} / {f4(b)}" for a, b in zip(folds[key], folds[f"{key}_base"])]
    out["calls"] = [f"{int(v):,}" for v in folds["n_calls"]]
    out["trades"] = [f"{int(v):,}" for v in folds["trades"]]
    out["net pnl (USDT)"] = [f"{v:,.2f}" for v in folds["net_pnl"]]
    out["win rate"] = ["n/a" if pd.isna(v) else f"{v * 100:.1f}%" for v in folds["win_rate"]]
    return out


def _model_html(panel: ModelPanel | None, model_metrics: pd.DataFrame | None) -> str:
    out = ['<div id="model"></div><h2>Model</h2>']
    if model_metrics is not None:
        out += ["<h3>Model metrics (out of sample)</h3>", _table_html(model_metrics)]
    if panel is None:
        out.append(na("Model charts", "no strategy of this report is driven by a model's probabilities"))
        return "\n".join(out)
    if panel.version:
        out.append(f"<p class='meta'>Strategy {esc(panel.strategy)}, model {esc(panel.version)}.</p>")
    if panel.folds is not None:
        out += ["<h3>Per-fold metrics</h3><p class='meta'>Walk-forward test windows (UTC, end exclusive; "
                "\"final\" = the final model, after the training data). Model scores against the triple-barrier "
                "labels of the backtested candles, each beside its base rate; trades entered in the window.</p>",
                f'<div id="folds" class="wide">{html_table(_folds_table(panel.folds), index_label="fold")}</div>']
    else:
        out.append(na("Per-fold metrics", panel.missing.get("folds", "no fold windows")))
    if panel.calibration is not None:
        out.append(figure_html("calibration", calibration_figure(panel.calibration)))
    else:
        out.append(na("Calibration", panel.missing.get("calibration", "no labelled predictions")))
    if panel.importance is not None:
        out.append(figure_html("importance", importance_figure(panel.importance, panel.importance_method)))
    else:
        out.append(na("Feature importance", panel.missing.get("importance", "no fitted model")))
    if panel.permutation is not None:
        out += ["<h3>Permutation importance (test folds)</h3>"
                f"<p class='meta'>{esc(panel.permutation_method)}. Above 0: the feature helped out of sample.</p>",
                f'<div id="permutation">{html_table(panel.permutation.round(6), index_label="feature")}</div>']
    elif "permutation" in panel.missing:  # older models and importance_rows = 0 have none: a note, not a gap
        out.append(f"<p class='meta'>Permutation importance: none saved with this model "
                   f"({esc(panel.missing['permutation'])}).</p>")
    if panel.calls is not None:
        out.append(figure_html("calls", calls_figure(panel.calls)))
    return "\n".join(out)


def _zoom_html(results: dict[str, dict], candles: pd.DataFrame, tf_label: str) -> tuple[str, dict]:
    traded = {name: res["trades"] for name, res in results.items()}
    if "timestamp" not in candles.columns:
        candles = candles.reset_index().rename(columns={candles.index.name or "index": "timestamp"})
    payload = zoom_payload(candles, traded)
    payload["label"] = f"{tf_label} candles"
    options = "".join(f'<option value="{esc(str(n))}">{esc(str(n))}</option>' for n, t in traded.items() if len(t))
    body = ('<div id="zoom"></div><h2>Trade zoom</h2>'
            f"<p class='meta'>{esc(tf_label)} candles around the selected trade ({payload['pad']} candles before the "
            "entry and after the exit; the middle of a trade longer than "
            f"{payload['max_span']} candles is not embedded). Pick a trade here or click a row of a trade list.</p>"
            '<div id="zoom-controls"><label>strategy <select id="zoom-strategy">' + options + "</select></label>"
            '<label>trade <input id="zoom-trade" type="number" min="1" value="1"></label>'
            '<button id="zoom-prev" type="button">◀ previous</button><button id="zoom-next" type="button">next ▶'
            '</button></div><div id="zoom-info"></div><div id="zoom-chart" class="fig" style="height:520px"></div>')
    if not options:
        body = '<div id="zoom"></div><h2>Trade zoom</h2>' + na("Trade zoom", "no strategy made a trade")
    return body, payload


def write_html_report(
    path: str | os.PathLike,
    *,
    candles: pd.DataFrame,
    results: dict[str, dict],
    metrics: pd.DataFrame,
    model_metrics: pd.DataFrame | None = None,
    title: str,
    notes: list[str] | None = None,
    plot_rule: str | None = None,
    honesty=None,
    calibration: dict | None = None,
    source: dict | None = None,
    model_panel: ModelPanel | None = None,
) -> Path:
    """Write the HTML report to ``path`` (parent dirs created, atomic temp file + os.replace).

    Parameters
    ----------
    candles : OHLC candles (see ``price_figure``) at full resolution: drawn as ``plot_rule``
        candles, and embedded at full resolution around each trade for the trade zoom.
    results : strategy name -> ``{"equity": Series (USDT, UTC bar-close index),
        "trades": DataFrame (TRADE_COLUMNS), optional "initial_capital": float (USDT),
        optional "risk_events": DataFrame (time, bar, event, value)}``. The FIRST key is the
        primary strategy whose trades are drawn on the price chart.
    metrics : ``metrics_table`` output (numeric -> formatted with ``format_metrics_table``;
        an already formatted string table is shown as is).
    model_metrics : optional table of model scores (floats shown with 4 dp).
    title : report title; ``notes`` : lines shown under it (HTML-escaped).
    plot_rule : pandas offset alias for the decimated equity / drawdown / price charts;
        default :func:`~perpbot.backtest.report_figures.auto_rule` (~2,000 points per series).
    honesty : optional :class:`perpbot.ml.honesty.block.HonestyReport`: its verdict line and
        seed-target table are shown under the title, its other tables after the metrics.
    source : :func:`~perpbot.backtest.report_page.data_source` of the candles (shown under the title).
    model_panel : :class:`~perpbot.backtest.report_model.ModelPanel` for the model section.
    calibration : optional model calibration metadata saved at training (raw vs calibrated
        reliability curves and ECE on the test folds; :mod:`perpbot.backtest.report_calibration`).

    Returns the resolved ``Path``. Raises ``ValueError`` on bad inputs (nothing is written).
    The file embeds plotly.js's finance bundle once (1.3 MB) and references no other file.
    """
    _check_results(results)
    if not isinstance(metrics, pd.DataFrame):
        raise ValueError("metrics: expected a DataFrame (rows = metric, columns = strategy)")
    if not title:
        raise ValueError("title: must be a non-empty string")
    primary = next(iter(results))
    frame = candles_frame(candles)
    rule = plot_rule or auto_rule(frame.index)
    bar = pd.Series(frame.index).diff().median() if len(frame) > 1 else pd.Timedelta(0)
    tf_label = (source or {}).get("timeframe") or (f"{int(bar / pd.Timedelta('1min'))}m" if len(frame) > 1 else "")
    numeric = all(pd.api.types.is_numeric_dtype(t) for t in metrics.dtypes)
    shown = format_metrics_table(metrics) if numeric else metrics
    zoom_body, zoom = _zoom_html(results, candles, tf_label)
    first = next(((n, 0) for n, r in results.items() if len(r["trades"]) and n in zoom["covered"]), None)
    data = {"trades": {str(n): trade_list_payload(r["trades"]) for n, r in results.items()}, "zoom": zoom,
            "zoom_first": first, "template": TEMPLATE.layout.to_plotly_json()}

    nav = [("summary", "Verdict"), ("metrics", "Metrics"), ("overfitting", "Overfitting"), ("charts", "Charts"),
           ("strategies", "Strategies"), ("zoom", "Trade zoom"), ("model", "Model")]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{asset('report.css')}</style>", plotly_script(), "</head><body>",
        '<nav class="toc">' + "".join(f'<a href="#{i}">{t}</a>' for i, t in nav if i != "overfitting" or honesty)
        + "</nav>",
        f'<h1 id="summary">{esc(title)}</h1>',
    ]
    if source:
        parts.append(f'<p class="source">{esc(source["text"])}</p>')
    parts.append(f'<p class="meta">Candles opening {frame.index[0]:%Y-%m-%d %H:%M} to {frame.index[-1]:%Y-%m-%d %H:%M}'
                 f" UTC ({len(frame):,} candles). Primary strategy (trades on the price chart): {esc(str(primary))}."
                 f" Charts show one point per {rule}; trade and halt markers are exact.</p>")
    if honesty is not None:
        from perpbot.ml.honesty.render import honesty_tables

        parts += [verdict_html(honesty), _honesty_table(honesty_tables(honesty)[0])]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(str(n))}</li>" for n in notes) + "</ul>")
    parts += ['<div id="metrics"></div><h2>Strategy metrics</h2>', _table_html(shown), _halts_html(results)]
    if honesty is not None:
        parts.append(honesty_html(honesty, skip_targets=True))
    from perpbot.backtest.report_calibration import calibration_section

    parts += ['<div id="charts"></div><h2>Charts</h2>',
              figure_html("equity", equity_figure(results, rule=rule)),
              figure_html("drawdown", drawdown_figure(results, rule=rule)),
              figure_html("rolling-sharpe", rolling_sharpe_figure(results)),
              figure_html("price", price_figure(candles, results[primary]["trades"], strategy=str(primary), rule=rule,
                                                title=_price_title(source, primary))),
              '<div id="strategies"></div><h2>Strategies</h2>', *(_strategy_html(n, r) for n, r in results.items()),
              zoom_body, _model_html(model_panel, model_metrics), calibration_section(calibration),
              "<footer>Made by perpbot. Charts: plotly.js (finance bundle, MIT licence, © Plotly, Inc.), embedded."
              "</footer>",
              data_script("perpbot-report-data", data), f"<script>{asset('report.js')}</script>", "</body></html>"]
    text = "\n".join(parts)

    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
