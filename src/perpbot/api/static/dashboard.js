/* perpbot dashboard: loads the REST API (/api/v1), draws the Plotly charts and follows the bot
 * live over the WebSocket /api/v1/ws. Vanilla JS, no build step; Plotly from /static/plotly.min.js.
 *
 * URL parameters: token (API token; sent as "Authorization: Bearer" and removed from the address
 * bar), run_id (ledger run to show; default: the bot's own run, else the latest), candles
 * (10..5000 candles on the price chart; default 1000).
 * Money in USDT, quantities in base asset, API fractions shown as percents, times in UTC.
 * The panels of dashboard-panels.js (live risk, daily profit, indicator overlays, log view,
 * backtest form) plug in through window.PB (loaders and hooks), set up before the page starts.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------------ settings & auth
  const U = window.PBU;  // dashboard-util.js: formatting, DOM, the error banner, the REST client
  const { TOKEN, clampInt, $, ok, ms, fmtNum, fmtPrice, fmtPct, fmtSigned, iso, fmtTime, plotTime, sideName, signalName, tone,
    tfMs, el, setField, debounce, setError, clearError, api, guarded } = U;
  const params = new URLSearchParams(location.search);
  const RUN_ID = params.get("run_id");
  const CANDLES = clampInt(params.get("candles"), 10, 5000, 1000);
  const TRADES = 200, EQUITY_POINTS = 2000, SIGNALS = 1000, FEED_MAX = 300, CYCLES_MAX = 100;
  const C = { up: "#26a69a", down: "#ef5350", grid: "#263040", text: "#c9d1dc", equity: "#4c8dff",
    buy: "#7fd3ff", sell: "#ffb86b" };
  const EXIT_COLORS = { take_profit: "#2ca02c", stop_loss: "#d62728", signal: "#1f77b4", liquidation: "#f5f5f5",
    end_of_data: "#7f7f7f", trailing_stop: "#ff7f0e", manual: "#b07cff" };

  const PB = window.PB = { loaders: [], overlays: () => [], hooks: { cycle: [], trade: [], status: [] } };
  const S = { status: {}, balance: null, positions: [], trades: [], candles: [], signals: [], liveSignals: [],
    equity: [], peak: null, equityValue: null, runId: RUN_ID, metrics: {} };

  // ------------------------------------------------------------------ loaders
  const runQuery = () => (RUN_ID ? { run_id: RUN_ID } : {});

  const loadStatus = () => guarded("status", "bot status", async () => { mergeStatus(await api("/api/v1/status")); renderState(); });
  const loadBalance = () => guarded("balance", "balance", async () => { S.balance = await api("/api/v1/balance"); pickEquityValue(); renderAccount(); });
  const loadPositions = () => guarded("positions", "positions", async () => { S.positions = (await api("/api/v1/positions")).positions || []; renderPosition(); drawCandles(); });
  const loadMetrics = () => guarded("metrics", "metrics", async () => { S.metrics = (await api("/api/v1/metrics", runQuery())).metrics || {}; renderMetrics(); });
  const loadTrades = () => guarded("trades", "trades", async () => {
    const r = await api("/api/v1/trades", { ...runQuery(), limit: TRADES });
    S.trades = r.trades || []; S.runId = r.run_id ?? S.runId; renderTrades(); drawCandles();
  });
  const loadCandles = () => guarded("candles", "candles", async () => {
    const [c, s] = await Promise.all([api("/api/v1/candles", { ...runQuery(), limit: CANDLES }),
      api("/api/v1/signals", { ...runQuery(), limit: SIGNALS })]);
    S.candles = c.candles || []; S.symbol = c.symbol; S.timeframe = c.timeframe; S.signals = s.signals || [];
    drawCandles();
  });
  const loadEquity = () => guarded("equity", "equity curve", async () => {
    const r = await api("/api/v1/equity", { ...runQuery(), max_points: EQUITY_POINTS });
    S.equity = (r.points || []).filter((p) => ok(p.equity));
    const last = S.equity[S.equity.length - 1];
    S.peak = last ? last.equity / (1 + (ok(last.drawdown) ? last.drawdown : 0)) : null;  // running peak at the last point
    S.runId = r.run_id ?? S.runId; pickEquityValue(); drawEquity(); renderAccount(); renderMetrics();
  });
  async function loadAll() {
    await Promise.all([loadStatus(), loadBalance(), loadPositions(), loadMetrics(), loadTrades(), loadCandles(), loadEquity(),
      ...PB.loaders.map((f) => f())]);
    document.body.dataset.loaded = "1";
  }
  const refreshAfterTrade = debounce(() => { loadTrades(); loadPositions(); loadBalance(); loadMetrics();
    PB.hooks.trade.forEach((f) => f()); }, 400);
  const refreshCandles = debounce(loadCandles, 3000);

  // ------------------------------------------------------------------ state & account
  const isLive = () => !RUN_ID || S.status.run_id === null || S.status.run_id === undefined || String(S.status.run_id) === String(RUN_ID);
  function mergeStatus(st) {  // never step back in time: keep newer cycle fields seen on the WebSocket
    if (!st) return;
    const cur = S.status;
    const keep = cur.last_candle_time && (!st.last_candle_time || ms(st.last_candle_time) < ms(cur.last_candle_time));
    const next = { ...cur, ...st };
    if (keep) for (const k of ["last_signal", "last_candle_time", "last_cycle_time", "cycles", "equity"]) next[k] = cur[k];
    S.status = next;
    if (ok(next.equity) && isLive()) S.equityValue = Number(next.equity);
  }
  function pickEquityValue() {
    if (ok(S.status.equity) && isLive()) { S.equityValue = Number(S.status.equity); return; }
    const b = S.balance, last = S.equity[S.equity.length - 1];
    if (b && ok(b.equity) && (!RUN_ID || String(b.run_id) === String(RUN_ID))) S.equityValue = Number(b.equity);
    else if (last) S.equityValue = Number(last.equity);
  }
  function renderState() {
    const st = S.status, root = $("state");
    const mode = st.paused ? "paused" : st.running ? "running" : "stopped";
    setField(root, "run-state", el("span", { class: "badge " + mode }, mode));
    setField(root, "mode", st.mode || "—");
    setField(root, "strategy", st.strategy || "—");
    setField(root, "symbol", (st.symbol || "—") + (st.timeframe ? " · " + st.timeframe : ""));
    const sig = st.last_signal;
    setField(root, "signal", sig ? el("span", { class: tone(sig.signal) }, signalName(sig.signal)) : "—");
    if (sig && ok(sig.p_down) && ok(sig.p_flat) && ok(sig.p_up)) {
      const bar = el("span", { class: "pbar", title: "P(down) / P(flat) / P(up)" },
        ...[["pd", sig.p_down], ["pf", sig.p_flat], ["pu", sig.p_up]].map(([c, p]) => {
          const s = el("span", { class: c }); s.style.width = (100 * p).toFixed(1) + "%"; return s; }));
      setField(root, "proba", `${fmtNum(sig.p_down)} / ${fmtNum(sig.p_flat)} / ${fmtNum(sig.p_up)}`, bar);
    } else setField(root, "proba", "—");
    setField(root, "candle-time", fmtTime(st.last_candle_time));
    setField(root, "cycle-time", fmtTime(st.last_cycle_time));
    setField(root, "cycles", `${st.cycles ?? 0} / ${st.errors ?? 0}`);
    const stopped = !st.running;  // a finished replay / a ledger-only server: nothing to control
    $("btn-pause").disabled = stopped || !!st.paused;
    $("btn-resume").disabled = stopped || !st.paused;
    $("btn-force-exit").disabled = stopped;
    document.body.dataset.bot = mode;
    renderConn();
    const run = S.runId ?? st.run_id;
    $("run-label").textContent = [st.mode, st.strategy, run !== null && run !== undefined ? "run #" + run : null]
      .filter(Boolean).join(" · ");
  }
  function renderAccount() {
    const cap = S.balance && ok(S.balance.starting_capital) ? Number(S.balance.starting_capital) : null;
    $("equity-value").textContent = fmtNum(S.equityValue);
    $("capital-value").textContent = cap === null ? "—" : fmtNum(cap) + " USDT";
    const pnl = cap !== null && ok(S.equityValue) ? S.equityValue - cap : null;
    const p = $("pnl-value");
    p.className = tone(pnl);
    p.textContent = pnl === null ? "—" : `${fmtSigned(pnl)} USDT (${fmtSigned((100 * pnl) / cap)} %)`;
  }
  function renderPosition() {
    const root = $("position"), pos = S.positions[0];
    if (!pos) { root.replaceChildren(el("span", { class: "muted", "data-field": "side" }, "flat")); return; }
    const rows = [["Side", el("span", { class: pos.side === "long" ? "up" : "down" }, sideName(pos.side)), "side"],
      ["Qty", fmtNum(pos.qty, 3), "qty"], ["Entry", fmtPrice(pos.entry_price), "entry_price"],
      ["Stop-loss", fmtPrice(pos.stop_loss), "stop_loss"], ["Take-profit", fmtPrice(pos.take_profit), "take_profit"],
      ["Liquidation", fmtPrice(pos.liquidation_price), "liquidation_price"], ["Margin", fmtNum(pos.margin) + " USDT", "margin"]];
    root.replaceChildren(el("dl", { class: "kv" }, rows.map(([k, v, f]) => [el("dt", null, k), el("dd", { "data-field": f }, v)])));
  }
  function renderMetrics() {
    const m = { ...S.metrics };  // while a run goes on, its metrics are not stored yet: live ones fill in
    for (const [k, v] of Object.entries(PB.liveMetrics || {})) if (!ok(m[k]) && ok(v)) m[k] = v;
    if (!ok(m.max_drawdown) && S.equity.length) m.max_drawdown = Math.min(0, ...S.equity.map((p) => p.drawdown ?? 0));
    const f = { max_drawdown: fmtPct, win_rate: fmtPct, exposure: fmtPct, total_return: fmtPct,
      sharpe: (v) => fmtNum(v), sortino: (v) => fmtNum(v), profit_factor: (v) => fmtNum(v),
      trade_count: (v) => fmtNum(v, 0), fees_paid: (v) => (ok(v) ? fmtNum(v) + " USDT" : "—") };
    for (const n of $("metrics").querySelectorAll("[data-metric]")) {
      const k = n.dataset.metric;
      n.textContent = (f[k] || fmtNum)(m[k]);
      n.className = k === "total_return" || k === "max_drawdown" ? tone(m[k]) : "";
    }
  }
  function renderTrades() {
    const rows = S.trades.slice().reverse().map((t) => el("tr", { "data-trade-id": t.trade_id },
      el("td", null, t.trade_id), el("td", { class: t.side === "long" ? "up" : "down" }, sideName(t.side)),
      el("td", null, fmtNum(t.qty, 3)), el("td", null, fmtTime(t.entry_time).replace(" UTC", "")),
      el("td", null, fmtPrice(t.entry_price)), el("td", null, fmtTime(t.exit_time).replace(" UTC", "")),
      el("td", null, fmtPrice(t.exit_price)), el("td", null, t.exit_reason || "—"),
      el("td", { class: tone(t.pnl) }, fmtSigned(t.pnl)), el("td", null, fmtNum(t.fees))));
    $("trades-table").tBodies[0].replaceChildren(...rows);
    $("trades-label").textContent = S.trades.length ? `(last ${S.trades.length}, newest first)` : "(none yet)";
  }

  // ------------------------------------------------------------------ charts
  const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"],
    displayModeBar: window.matchMedia("(pointer: coarse), (max-width: 700px)").matches ? false : "hover" };
  function layout(extra) {
    return { paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: C.text, size: 11 },
      margin: { l: 56, r: 12, t: 8, b: 30 }, showlegend: false, uirevision: "keep", hovermode: "closest",
      xaxis: { type: "date", gridcolor: C.grid, linecolor: C.grid }, yaxis: { gridcolor: C.grid, zerolinecolor: "#37445a" },
      ...extra };
  }
  const havePlotly = () => typeof window.Plotly !== "undefined";
  function markers(uid, name, pts, symbol, color, size) {
    return { type: "scatter", mode: "markers", uid, name, x: pts.map((p) => p.x), y: pts.map((p) => p.y),
      text: pts.map((p) => p.text), hovertemplate: "%{text}<extra></extra>",
      marker: { symbol, color, size, line: { color: "#0e1217", width: 1 } } };
  }
  function drawCandles() {
    if (!havePlotly() || !S.candles.length) return;
    const cs = S.candles, t0 = ms(cs[0].time), t1 = ms(cs[cs.length - 1].time);
    const inWin = (t) => t && ms(t) >= t0 && ms(t) <= t1;
    const byTime = new Map(cs.map((c) => [ms(c.time), c]));
    const traces = [{ type: "candlestick", uid: "candles", name: S.symbol || "price", x: cs.map((c) => plotTime(c.time)),
      open: cs.map((c) => c.open), high: cs.map((c) => c.high), low: cs.map((c) => c.low), close: cs.map((c) => c.close),
      increasing: { line: { color: C.up, width: 1 }, fillcolor: C.up }, decreasing: { line: { color: C.down, width: 1 }, fillcolor: C.down },
      showlegend: false }, ...PB.overlays(cs)];
    const entry = (t) => ({ x: plotTime(t.entry_time), y: t.entry_price,
      text: `#${t.trade_id} ${sideName(t.side)} entry ${fmtPrice(t.entry_price)} · qty ${fmtNum(t.qty, 3)}` });
    const trades = S.trades.filter((t) => inWin(t.entry_time));
    traces.push(markers("entry-long", "long entry", trades.filter((t) => t.side === "long").map(entry), "triangle-up", C.up, 12));
    traces.push(markers("entry-short", "short entry", trades.filter((t) => t.side === "short").map(entry), "triangle-down", C.down, 12));
    const exits = S.trades.filter((t) => inWin(t.exit_time)), reasons = [...new Set(exits.map((t) => t.exit_reason))];
    for (const r of reasons) {
      traces.push(markers("exit-" + r, "exit: " + r, exits.filter((t) => t.exit_reason === r).map((t) => ({
        x: plotTime(t.exit_time), y: t.exit_price,
        text: `#${t.trade_id} exit (${r}) ${fmtPrice(t.exit_price)} · PnL ${fmtSigned(t.pnl)} USDT` })), "circle", EXIT_COLORS[r] || "#cccccc", 9));
    }
    const sigs = new Map();
    for (const s of [...S.signals, ...S.liveSignals]) if (s.signal && inWin(s.time)) sigs.set(ms(s.time), s);
    const sigPt = (s) => { const c = byTime.get(ms(s.time)) || cs[cs.length - 1];
      return { x: plotTime(s.time), y: s.signal > 0 ? c.low * 0.997 : c.high * 1.003,
        text: `${signalName(s.signal)} signal` + (ok(s.p_up) ? ` · P(up) ${fmtNum(s.p_up)} · P(down) ${fmtNum(s.p_down)}` : "") }; };
    const all = [...sigs.values()];
    traces.push(markers("signal-buy", "buy signal", all.filter((s) => s.signal > 0).map(sigPt), "triangle-up-open", C.buy, 7));
    traces.push(markers("signal-sell", "sell signal", all.filter((s) => s.signal < 0).map(sigPt), "triangle-down-open", C.sell, 7));
    const shapes = [], annotations = [], pos = S.positions[0];
    if (pos) {
      for (const [k, label, color] of [["entry_price", "entry", C.equity], ["stop_loss", "SL", C.down], ["take_profit", "TP", C.up]]) {
        if (!ok(pos[k])) continue;
        shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: pos[k], y1: pos[k], line: { color, width: 1, dash: "dot" } });
        annotations.push({ xref: "paper", x: 1, xanchor: "right", y: pos[k], yanchor: "bottom", showarrow: false,
          text: `${label} ${fmtPrice(pos[k])}`, font: { color, size: 10 } });
      }
    }
    Plotly.react("candles-chart", traces, layout({
      showlegend: true, legend: { orientation: "h", x: 0, y: 1.01, yanchor: "bottom", font: { size: 11 } },
      margin: { l: 56, r: 12, t: 28, b: 30 }, shapes, annotations,
      xaxis: { type: "date", gridcolor: C.grid, linecolor: C.grid, rangeslider: { visible: false } },
      yaxis: { gridcolor: C.grid, tickformat: ".2f" } }), PLOT_CONFIG);
    $("candles-label").textContent = `${S.symbol || ""} ${S.timeframe || ""} · last ${cs.length} candles (UTC)`;
  }
  function drawEquity() {
    if (!havePlotly()) return;
    const x = S.equity.map((p) => plotTime(p.time));
    Plotly.react("equity-chart", [{ type: "scatter", mode: "lines", uid: "equity", name: "equity", x,
      y: S.equity.map((p) => p.equity), line: { color: C.equity, width: 1.5 }, hovertemplate: "%{x}<br>%{y:.2f} USDT<extra></extra>" }],
    layout({ yaxis: { gridcolor: C.grid, tickformat: ",.0f" } }), PLOT_CONFIG);
    Plotly.react("drawdown-chart", [{ type: "scatter", mode: "lines", uid: "drawdown", name: "drawdown", x,
      y: S.equity.map((p) => p.drawdown), fill: "tozeroy", line: { color: C.down, width: 1 },
      fillcolor: "rgba(239,83,80,0.25)", hovertemplate: "%{x}<br>%{y:.2%}<extra></extra>" }],
    layout({ yaxis: ddAxis() }), PLOT_CONFIG);
  }
  function ddAxis() {  // a "nice" tick step (1/2/5 x 10^k) and just enough decimals: no "0 %, 0 %, -1 %" repeats
    S.ddMin = Math.min(0, ...S.equity.map((p) => (ok(p.drawdown) ? p.drawdown : 0)));
    const { dtick, decimals } = ddTicks(S.ddMin);
    return { gridcolor: C.grid, zerolinecolor: "#37445a", tick0: 0, dtick, tickformat: `.${decimals}%` };
  }
  function ddTicks(lowest) {
    const raw = Math.max(-lowest, 1e-4) / 4, mag = 10 ** Math.floor(Math.log10(raw));
    const dtick = [1, 2, 5, 10].map((k) => k * mag).find((v) => v >= raw * (1 - 1e-9));
    return { dtick, decimals: Math.max(0, -Math.floor(Math.log10(dtick * 100) + 1e-9)) };
  }
  function appendEquity(pts) {  // [[time ms, equity], ...]: one redraw per batch, however many cycles it holds
    const added = pts.map(([t, equity]) => {
      S.peak = S.peak === null ? equity : Math.max(S.peak, equity);
      return { time: new Date(t).toISOString(), equity, drawdown: equity / S.peak - 1 };
    });
    if (!added.length) return;
    S.equity.push(...added);
    if (!havePlotly()) return;
    const gd = $("equity-chart");
    if (!gd.data || gd.data.length === 0) { drawEquity(); return; }
    const x = added.map((p) => plotTime(p.time));
    Plotly.extendTraces("equity-chart", { x: [x], y: [added.map((p) => p.equity)] }, [0]);
    Plotly.extendTraces("drawdown-chart", { x: [x], y: [added.map((p) => p.drawdown)] }, [0]);
    if (Math.min(...added.map((p) => p.drawdown)) < S.ddMin) Plotly.relayout("drawdown-chart", { yaxis: ddAxis() });
  }

  // ------------------------------------------------------------------ events (WebSocket)
  function describe(kind, d) {
    switch (kind) {
      case "entry": return `${sideName(d.side)} ${fmtNum(d.qty, 3)} @ ${fmtPrice(d.price)} · SL ${fmtPrice(d.stop_loss)} · TP ${fmtPrice(d.take_profit)} · liq ${fmtPrice(d.liquidation_price)}`;
      case "exit": return `#${d.trade_id} ${sideName(d.side)} ${fmtNum(d.qty, 3)}: ${fmtPrice(d.entry_price)} → ${fmtPrice(d.exit_price)} (${d.reason}) · PnL ${fmtSigned(d.pnl)} USDT`;
      case "cycle": return `bar ${d.bar} · ${fmtTime(d.candle_time)} · ${signalName(d.signal)}` +
        (ok(d.p_up) ? ` (P up ${fmtNum(d.p_up)} / down ${fmtNum(d.p_down)})` : "") + ` · equity ${fmtNum(d.equity)}`;
      case "risk_halt": return `${d.event} (${fmtNum(d.value, 4)})`;
      case "daily_summary": return `PnL ${fmtSigned(d.pnl)} USDT · win rate ${fmtPct(d.win_rate, 1)} · max DD ${fmtPct(d.max_drawdown, 1)} · ${d.trades} trades`;
      case "paused": case "resumed": case "force_exit": return `by ${d.by}`;
      case "error": case "order_failed": return String(d.message);
      default: return JSON.stringify(d);
    }
  }
  function addEvent(ev) {
    const list = $("events");
    const t = (iso(ev.time) || "").slice(11, 19);
    list.prepend(el("li", { "data-kind": ev.kind, "data-seq": ev.seq, title: ev.time || "" },
      el("time", { dateTime: ev.time || "" }, t), el("span", { class: "kind kind-" + ev.kind }, ev.kind.replace("_", " ")),
      el("span", { class: "msg" }, describe(ev.kind, ev.data || {}))));
    const cycles = list.querySelectorAll("li[data-kind=cycle]");  // cycles never push the other events out
    if (cycles.length > CYCLES_MAX) cycles[cycles.length - 1].remove();
    const others = list.querySelectorAll("li:not([data-kind=cycle])");
    if (others.length > FEED_MAX) others[others.length - 1].remove();
  }
  function onCycle(ev) {
    const d = ev.data || {}, st = S.status;
    st.last_signal = { signal: d.signal, p_down: d.p_down, p_flat: d.p_flat, p_up: d.p_up, time: d.candle_time };
    st.last_candle_time = d.candle_time; st.last_cycle_time = ev.time; st.cycles = (st.cycles || 0) + 1;
    if (ok(d.equity)) st.equity = d.equity;
    if (isLive()) {
      if (ok(d.equity)) { S.equityValue = Number(d.equity); pending.push([ms(d.candle_time) + tfMs(st.timeframe), Number(d.equity)]); }
      appendEquity(pending.splice(0));
      if (d.signal) { S.liveSignals.push({ time: d.candle_time, signal: d.signal, p_up: d.p_up, p_down: d.p_down }); drawCandles(); }
      const shown = S.positions[0] ? (S.positions[0].side === "long" ? 1 : -1) : 0;
      if (ok(d.position) && Math.sign(d.position) !== shown) refreshAfterTrade();
      refreshCandles();
    }
    renderState(); renderAccount(); PB.hooks.cycle.forEach((f) => f(ev));
  }
  const queue = [], pending = [];  // events to show; equity points to add with the batch's last cycle
  let flushTimer = null;
  function enqueue(ev) { queue.push(ev); if (!flushTimer) flushTimer = setTimeout(flush, 100); }
  function flush() {  // batch bursts (a fast replay publishes thousands of cycles per second)
    flushTimer = null;
    const batch = queue.splice(0), lastCycle = batch.filter((e) => e.kind === "cycle").pop();
    for (const ev of batch.slice(-FEED_MAX)) addEvent(ev);
    for (const ev of batch) if (ev.kind === "cycle" && ev !== lastCycle && isLive() && ok(ev.data.equity))
      pending.push([ms(ev.data.candle_time) + tfMs(S.status.timeframe), Number(ev.data.equity)]);
    if (lastCycle) onCycle(lastCycle);
    if (batch.some((e) => e.kind === "paused" || e.kind === "resumed")) {
      S.status.paused = batch.filter((e) => e.kind === "paused" || e.kind === "resumed").pop().kind === "paused";
      renderState();
    }
    if (batch.some((e) => ["entry", "exit", "force_exit", "risk_halt"].includes(e.kind))) refreshAfterTrade();
  }
  let ws = null, attempt = 0, everOpen = false;
  let connLabel = "connecting…";
  function setConn(state, label) { connLabel = label; document.body.dataset.ws = state; renderConn(); }
  function renderConn() {  // connected to a stopped bot: "stopped", never "live"
    const state = document.body.dataset.ws || "wait", st = S.status;
    const stopped = state === "live" && !st.running;
    $("ws-dot").className = "dot " + (stopped ? "dot-off" : { live: "dot-on", down: "dot-bad", wait: "dot-off" }[state]);
    $("ws-label").textContent = stopped ? "stopped" : state === "live" && st.paused ? "live · paused" : connLabel;
  }
  function connect() {
    const url = new URL("/api/v1/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (TOKEN) url.searchParams.set("token", TOKEN);
    url.searchParams.set("status", "1");  // also push status changes (a replay that ends publishes no event)
    setConn("wait", attempt ? "reconnecting…" : "connecting…");
    ws = new WebSocket(url);
    ws.onopen = () => {
      const again = everOpen; attempt = 0; everOpen = true;
      setConn("live", "live"); clearError("ws");
      if (again) loadAll();  // catch up on what happened while disconnected
    };
    ws.onmessage = (m) => {
      let msg; try { msg = JSON.parse(m.data); } catch (e) { return; }
      if (msg.type === "hello") { mergeStatus(msg.status); renderState(); renderAccount();
        for (const ev of msg.recent || []) addEvent(ev); } else if (msg.type === "event") enqueue(msg);
      else if (msg.type === "status") { mergeStatus(msg.status); renderState(); PB.hooks.status.forEach((f) => f()); }
    };
    ws.onclose = (e) => {
      const delay = Math.min(30000, 1000 * 2 ** attempt); attempt += 1;
      const why = e.code === 1008 ? "was refused (HTTP 401-equivalent: bad or missing token)" : "is lost";
      setConn("down", "offline");
      setError("ws", `Live connection ${why} (code ${e.code}). Reconnecting in ${delay / 1000} s (attempt ${attempt}).`);
      setTimeout(connect, delay);
    };
  }

  // ------------------------------------------------------------------ buttons
  async function act(name, label) {
    const btns = ["btn-pause", "btn-resume", "btn-force-exit"].map($);
    btns.forEach((b) => { b.disabled = true; });
    try {
      const r = await api("/api/v1/" + name, null, "POST");
      if (r && r.status) mergeStatus(r.status);
      clearError("action");
    } catch (e) { setError("action", `${label} failed: ${e.message}`); }
    renderState();  // re-enables what the bot's state allows
  }
  $("btn-pause").addEventListener("click", () => act("pause", "Pause"));
  $("btn-resume").addEventListener("click", () => act("resume", "Resume"));
  $("btn-force-exit").addEventListener("click", () => {
    if (confirm("Force exit: close the open position at market now?")) act("force-exit", "Force exit");
  });

  // ------------------------------------------------------------------ start
  Object.assign(PB, { S, api, guarded, runQuery, el, $, ok, ms, fmtNum, fmtPct, fmtSigned, fmtPrice, fmtTime, plotTime,
    tone, debounce, layout, PLOT_CONFIG, havePlotly, C, drawCandles, renderMetrics, loadMetrics, setError, clearError, ddTicks, CANDLES,
    RUN_ID });
  document.addEventListener("DOMContentLoaded", () => {  // after dashboard-panels.js has plugged in
    if (!havePlotly()) setError("plotly", "Charts unavailable: /static/plotly.min.js did not load.");
    loadAll().then(connect);
  });
})();
