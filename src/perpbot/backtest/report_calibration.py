"""The calibration section of the HTML report: out-of-sample reliability curves and ECE.

Input is a model's ``calibration`` metadata (:func:`perpbot.app.jobs.train_job`):
``{"method", "fraction", "reliability": {class: {"prob_pred", "prob_true", "count", "ece", "n"}},
"reliability_uncalibrated": {...}}`` computed on the walk-forward test folds only
(:func:`perpbot.ml.calibration.reliability`).
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from perpbot.backtest.report_page import figure_html

__all__ = ["reliability_figure", "calibration_section"]


def reliability_figure(calibration: dict) -> go.Figure:
    """Mean predicted probability (x) vs observed frequency (y) per class, calibrated (solid) and
    uncalibrated (dotted), with the diagonal of perfect calibration."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"color": "#999", "dash": "dash"}))
    for key, dash, label in (("reliability", "solid", "calibrated"), ("reliability_uncalibrated", "dot", "raw")):
        for cls, curve in (calibration.get(key) or {}).items():
            fig.add_trace(go.Scatter(x=curve["prob_pred"], y=curve["prob_true"], mode="lines+markers",
                                     name=f"{cls} ({label}, ECE {curve['ece']:.4f})", line={"dash": dash},
                                     text=[f"{c:,} bars" for c in curve["count"]]))
    fig.update_layout(height=420, xaxis_title="mean predicted probability", yaxis_title="observed frequency",
                      xaxis_range=[0, 1], yaxis_range=[0, 1], margin={"t": 30})
    return fig


def calibration_section(calibration: dict | None) -> str:
    """HTML of the section (an ECE table and the reliability figure); "" without calibration data."""
    if not calibration or not calibration.get("reliability"):
        return ""
    raw = calibration.get("reliability_uncalibrated") or {}
    rows = "".join(
        f"<tr><td>{html.escape(cls)}</td><td>{c['n']:,}</td><td>{c['ece']:.4f}</td>"
        f"<td>{raw[cls]['ece']:.4f}</td></tr>" if cls in raw else
        f"<tr><td>{html.escape(cls)}</td><td>{c['n']:,}</td><td>{c['ece']:.4f}</td><td>n/a</td></tr>"
        for cls, c in calibration["reliability"].items())
    method = html.escape(str(calibration.get("method", "none")))
    div = figure_html("calibration-reliability", reliability_figure(calibration))
    return (f"<h2>Calibration (out of sample)</h2><p>Method: {method}, fitted on the last "
            f"{100 * float(calibration.get('fraction', 0)):.0f} % of each training window; the curves and the "
            "expected calibration error (ECE, 10 equal-width bins) are computed on the walk-forward test folds "
            "only.</p><table><tr><th>class</th><th>bars</th><th>ECE</th><th>ECE uncalibrated</th></tr>"
            f"{rows}</table>{div}")
