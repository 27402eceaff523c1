/* perpbot dashboard panels, plugged into dashboard.js through window.PB (loaded after it):
 *  - live risk on the risk card (GET /api/v1/risk): daily PnL, drawdown from the peak, exposure,
 *    effective leverage, risk halts, the position's 1-day VaR / expected shortfall at 99 % and the
 *    worst days of the data replayed on it; refreshed on every cycle while the bot runs;
 *  - daily profit bars (GET /api/v1/daily);
 *  - the strategy's indicator lines over the candlesticks (GET /api/v1/indicators);
 *  - the event feed's "show cycles" toggle (cycles are hidden by default);
 *  - the log view (GET /api/v1/logs: the JSON log's last lines, secrets masked by the server);
 *  - the backtest form (POST /api/v1/backtests, polled until done, then its report opens below).
 */
(function () {
  "use strict";
  const PB = window.PB, U = window.PBU;
  const { $, el, ok, api, guarded, fmtNum, fmtPct, fmtSigned, tone, debounce, plotTime } = U;
  const R = { risk: null, daily: [], lines: [], jobTimer: null };
  const LINE_COLORS = ["#f0b429", "#b07cff", "#7fd3ff", "#ff7f0e"];

  // ------------------------------------------------------------------ live risk
  const loadRisk = () => guarded("risk", "risk figures", async () => { R.risk = await api("/api/v1/risk", PB.runQuery()); renderRisk(); });
  function renderRisk() {
    const r = R.risk || {}, root = $("live-risk");
    const set = (k, text, cls) => { const n = root.querySelector(`[data-risk="${k}"]`); n.textContent = text; n.className = cls || ""; };
    set("daily_pnl", ok(r.daily_pnl) ? `${fmtSigned(r.daily_pnl)} USDT (${fmtSigned(100 * r.daily_return)} %)` : "—", tone(r.daily_pnl));
    set("drawdown", fmtPct(r.drawdown), tone(r.drawdown));
    set("peak_equity", ok(r.peak_equity) ? fmtNum(r.peak_equity) + " USDT" : "—");
    set("notional", r.position_side ? `${fmtNum(r.notional)} USDT ${r.position_side > 0 ? "long" : "short"}` : "flat");
    set("leverage", `${ok(r.leverage) ? fmtNum(r.leverage) : "—"}× / ${ok(r.max_leverage) ? fmtNum(r.max_leverage, 0) : "—"}×`);
    const last = (r.halts || [])[r.halts ? r.halts.length - 1 : 0];
    set("halts", !r.halt_count ? "none" : `${r.halt_count} · last ${last.event.replace(/_/g, " ")} ` +
      `${(last.time || "").slice(0, 16).replace("T", " ")}` + (r.halted ? " (in force)" : ""), r.halted ? "down" : "");
    const m = r.model_live;  // live precision of the labelled calls vs the model's out-of-sample precision
    set("model_live", !m ? "no model calls" : !m.n_labelled ? `${m.n_calls} calls, none labelled yet` :
      `${fmtPct(m.precision)} of ${m.n_labelled} labelled / ${ok(m.oos_precision) ? fmtPct(m.oos_precision) : "—"}` +
      (m.drift ? " · DRIFT" : ""), m && m.drift ? "down" : "");
    renderVar(r, set);
    $("risk-label").textContent = r.running ? `(live · UTC day ${r.day})` : r.day ? `(last point, UTC day ${r.day})` : "";
    // the run's metrics arrive at its end: until then show the live ones
    PB.liveMetrics = { max_drawdown: r.max_drawdown, total_return: r.total_return };
    PB.renderMetrics();
  }

  // value-at-risk (historical simulation, losses positive) and the worst days replayed on the position
  function renderVar(r, set) {
    const v = r.value_at_risk, l99 = v ? (v.levels || []).find((l) => l.level === 0.99) : null;
    const loss = (x) => `${fmtNum(x)} USDT`;
    set("var99", !v ? "n/a" : !v.n_days ? "0.00 USDT (flat)" : l99 ? loss(l99.var) : "—");
    set("es99", !v ? "n/a" : !v.n_days ? "0.00 USDT (flat)" : l99 ? loss(l99.es) : "—");
    $("stress-label").textContent = !v ? `(unavailable: ${r.value_at_risk_error || "no data"})`
      : !v.n_days ? "(flat)" : `(${v.n_days} days ${v.first_day} – ${v.last_day})`;
    $("stress-list").replaceChildren(...(v ? v.stress : []).map((d) => el("li", { class: d.liquidated ? "down" : "",
      "data-day": d.day }, `${d.day} · ${d.legs.map((g) => `${fmtSigned(100 * g.ret)} %`).join(", ")} · ` +
      `${fmtSigned(d.pnl)} USDT` + (d.liquidated ? " · liquidation reached" : ""))));
  }

  // ------------------------------------------------------------------ daily profit
  const loadDaily = () => guarded("daily", "daily profit", async () => {
    R.daily = (await api("/api/v1/daily", PB.runQuery())).days || []; drawDaily();
  });
  function drawDaily() {
    if (!PB.havePlotly()) return;
    const d = R.daily;
    Plotly.react("daily-chart", [{ type: "bar", uid: "daily", name: "daily PnL", x: d.map((p) => p.day), y: d.map((p) => p.pnl),
      customdata: d.map((p) => 100 * p.ret), marker: { color: d.map((p) => (p.pnl >= 0 ? PB.C.up : PB.C.down)) },
      hovertemplate: "%{x}<br>%{y:+,.2f} USDT (%{customdata:+.2f} %)<extra></extra>" }],
    PB.layout({ bargap: 0.15, xaxis: { type: "date", gridcolor: PB.C.grid, linecolor: PB.C.grid, tickformat: "%b %d",
      ...(d.length <= 14 ? { dtick: 864e5 } : {}) },  // few days: one tick a day, never hours
      yaxis: { gridcolor: PB.C.grid, zerolinecolor: "#37445a", tickformat: ",.2f" } }), PB.PLOT_CONFIG);
    const up = d.filter((p) => p.pnl > 0).length;
    $("daily-label").textContent = d.length ? `· ${d.length} days, ${up} up / ${d.length - up} down` : "· no equity yet";
  }

  // ------------------------------------------------------------------ indicator overlays
  const loadIndicators = () => guarded("indicators", "indicator lines", async () => {
    R.lines = (await api("/api/v1/indicators", { ...PB.runQuery(), limit: PB.CANDLES })).lines || []; PB.drawCandles();
  });
  PB.overlays = (cs) => {
    if (!cs.length) return [];
    const t0 = Date.parse(cs[0].time), t1 = Date.parse(cs[cs.length - 1].time);
    return R.lines.map((ln, i) => {
      const keep = ln.time.map((t) => Date.parse(t)).map((t) => t >= t0 && t <= t1);
      return { type: "scatter", mode: "lines", uid: "ind-" + ln.name.toLowerCase().replace(/[^a-z0-9]+/g, "-"), name: ln.name,
        x: ln.time.filter((_, j) => keep[j]).map(plotTime), y: ln.value.filter((_, j) => keep[j]),
        line: { color: LINE_COLORS[i % LINE_COLORS.length], width: 1.2, shape: ln.name.startsWith("Donchian") ? "hv" : "linear" },
        hovertemplate: `${ln.name} %{y:.3f}<extra></extra>` };
    });
  };

  // ------------------------------------------------------------------ event feed filter
  $("show-cycles").addEventListener("change", (e) => $("events").classList.toggle("hide-cycles", !e.target.checked));

  // ------------------------------------------------------------------ log view
  async function loadLogs() {
    try {
      const r = await api("/api/v1/logs", { lines: $("log-lines").value });
      $("log-view").replaceChildren(...r.lines.map(logItem));
      $("log-label").textContent = !r.exists ? `· no log file yet (${r.file} in the output directory)`
        : `· ${r.file}, last ${r.lines.length} lines${r.truncated ? " (older lines not shown)" : ""}`;
      U.clearError("logs");
      const v = $("log-view"); v.scrollTop = v.scrollHeight;
    } catch (e) {
      if (e.status !== 401) U.setError("logs", `Could not load the log: ${e.message}`);
    }
  }
  function logItem(rec) {
    if (rec.text !== undefined) return el("li", { "data-level": "" }, rec.text);
    const { timestamp, level, event, logger, ...rest } = rec;
    const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
    return el("li", { class: "lvl-" + (level || ""), "data-level": level || "" },
      `${(timestamp || "").slice(0, 19).replace("T", " ")} ${(level || "").toUpperCase()} ${event ?? ""}${logger ? " [" + logger + "]" : ""} ${fields}`);
  }
  $("log-lines").addEventListener("change", loadLogs);
  $("btn-log-refresh").addEventListener("click", loadLogs);

  // ------------------------------------------------------------------ backtest form
  function setJob(status, text) { const n = $("bt-status"); n.dataset.status = status; n.textContent = text; }
  $("bt-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const bars = $("bt-bars").value.trim(), body = { strategy: $("bt-strategy").value, last_bars: bars ? Number(bars) : null };
    $("bt-submit").disabled = true;
    $("bt-report-link").hidden = true; $("bt-report-frame").hidden = true;
    try {
      const job = await api("/api/v1/backtests", null, "POST", body);
      setJob(job.status, `${body.strategy}: ${job.status} (job ${job.job_id.slice(0, 8)})`);
      pollJob(job.job_id, body.strategy);
    } catch (err) { setJob("failed", `Could not start the backtest: ${err.message}`); $("bt-submit").disabled = false; }
  });
  async function pollJob(id, strategy) {
    let job;
    try { job = await api("/api/v1/backtests/" + encodeURIComponent(id)); } catch (err) {
      setJob("failed", `Lost the backtest job: ${err.message}`); $("bt-submit").disabled = false; return;
    }
    if (job.status === "queued" || job.status === "running") {
      setJob(job.status, `${strategy}: ${job.status}…`); R.jobTimer = setTimeout(() => pollJob(id, strategy), 1000); return;
    }
    $("bt-submit").disabled = false;
    if (job.status === "failed") { setJob("failed", `${strategy} failed: ${job.error}`); return; }
    const m = job.metrics[strategy] || {}, run = job.run_ids[strategy];
    setJob("finished", `${strategy} finished · run #${run} · return ${fmtPct(m.total_return)} · max drawdown ` +
      `${fmtPct(m.max_drawdown)} · ${fmtNum(m.trade_count, 0)} trades · Sharpe ${fmtNum(m.sharpe)}`);
    const link = $("bt-report-link"), frame = $("bt-report-frame");
    link.href = job.report_url; link.hidden = false;
    frame.src = job.report_url; frame.hidden = false;  // the report opens here (same origin: the cookie authorises it)
  }

  // ------------------------------------------------------------------ wiring
  PB.loaders.push(loadRisk, loadDaily, loadIndicators, loadLogs);
  const refreshLive = debounce(() => { loadRisk(); loadDaily(); }, 1000);
  const refreshLines = debounce(loadIndicators, 3000);
  PB.hooks.cycle.push(() => { refreshLive(); refreshLines(); });
  PB.hooks.trade.push(loadRisk, loadLogs);
  PB.hooks.status.push(() => {  // a run that stops stores its metrics just after: read them then
    refreshLive();
    if (!PB.S.status.running) for (const ms of [1500, 5000]) setTimeout(PB.loadMetrics, ms);
  });
})();
