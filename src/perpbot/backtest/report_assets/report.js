/* perpbot report: sortable trade lists and the 5m zoom around a trade (no network, no globals but PerpbotReport). */
(function () {
  "use strict";
  var D = null;
  var CONFIG = {displaylogo: false, responsive: true};
  var pad2 = function (n) { return (n < 10 ? "0" : "") + n; };

  function fmtTime(ms) {
    if (ms === null || ms === undefined) { return "open"; }
    var d = new Date(ms);
    return d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + " " +
      pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
  }
  function fmtNum(v, dp) { return (v === null || v === undefined) ? "n/a" : v.toFixed(dp); }
  function fmtDur(ms) {
    if (ms === null || ms === undefined) { return "n/a"; }
    var m = Math.round(ms / 60000), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60);
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (m % 60) + "m";
  }

  /* ---------------------------------------------------------------- trade lists */
  var COLS = [
    ["#", function (t, i) { return t.id[i]; }, function (v) { return String(v); }],
    ["side", function (t, i) { return t.side[i]; }, function (v) { return v > 0 ? "long" : v < 0 ? "short" : "?"; }],
    ["entry (UTC)", function (t, i) { return t.entry_ms[i]; }, fmtTime],
    ["entry price", function (t, i) { return t.entry_price[i]; }, function (v) { return fmtNum(v, 4); }],
    ["exit (UTC)", function (t, i) { return t.exit_ms[i]; }, fmtTime],
    ["exit price", function (t, i) { return t.exit_price[i]; }, function (v) { return fmtNum(v, 4); }],
    ["held", function (t, i) { return t.exit_ms[i] === null ? null : t.exit_ms[i] - t.entry_ms[i]; }, fmtDur],
    ["exit reason", function (t, i) { return t.reason[i]; }, function (v) { return v; }],
    ["qty", function (t, i) { return t.qty[i]; }, function (v) { return fmtNum(v, 4); }],
    ["pnl (USDT)", function (t, i) { return t.pnl[i]; }, function (v) { return fmtNum(v, 2); }],
    ["return", function (t, i) { return t.ret[i]; }, function (v) { return v === null ? "n/a" : (v * 100).toFixed(2) + "%"; }],
    ["fees", function (t, i) { return t.fees[i]; }, function (v) { return fmtNum(v, 2); }],
    ["funding", function (t, i) { return t.funding[i]; }, function (v) { return fmtNum(v, 2); }]
  ];

  function buildTradeList(box) {
    var name = box.getAttribute("data-strategy");
    var t = D.trades[name];
    var n = t.id.length;
    var table = document.createElement("table");
    table.className = "tbl trades";
    var thead = table.createTHead().insertRow();
    COLS.forEach(function (c, k) {
      var th = document.createElement("th");
      th.textContent = c[0];
      th.setAttribute("data-col", k);
      th.title = "sort by " + c[0];
      thead.appendChild(th);
    });
    var tbody = table.createTBody();
    var rows = [];
    for (var i = 0; i < n; i++) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-row", i);
      tr.className = t.pnl[i] > 0 ? "win" : (t.pnl[i] < 0 ? "loss" : "");
      for (var k = 0; k < COLS.length; k++) {
        var td = document.createElement("td");
        td.textContent = COLS[k][2](COLS[k][1](t, i));
        tr.appendChild(td);
      }
      rows.push(tr);
      tbody.appendChild(tr);
    }
    var state = {col: 0, asc: true};
    thead.addEventListener("click", function (ev) {
      var th = ev.target.closest("th");
      if (!th) { return; }
      var k = +th.getAttribute("data-col");
      state.asc = state.col === k ? !state.asc : true;
      state.col = k;
      var key = COLS[k][1];
      var order = rows.map(function (r) { return +r.getAttribute("data-row"); });
      order.sort(function (a, b) {
        var va = key(t, a), vb = key(t, b);
        if (va === vb) { return a - b; }
        if (va === null) { return 1; }
        if (vb === null) { return -1; }
        var c = va < vb ? -1 : 1;
        return state.asc ? c : -c;
      });
      order.forEach(function (i) { tbody.appendChild(rows[i]); });
      Array.prototype.forEach.call(thead.children, function (h) { h.className = ""; });
      th.className = state.asc ? "asc" : "desc";
    });
    tbody.addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr");
      if (!tr) { return; }
      showZoom(name, +tr.getAttribute("data-row"), true);
    });
    box.appendChild(table);
  }

  /* ---------------------------------------------------------------- zoom */
  var Z = null;
  var candles = null;
  function zoomCandles() {  /* every embedded candle: {t, o, h, l, c} arrays, decoded once */
    if (candles) { return candles; }
    var raw = Z.scale === null, dOpen = Z.d_open, body = Z.body, up = Z.upper, lo = Z.lower;
    var n = raw ? Z.open.length : dOpen.length, k = 0, div = raw ? 1 : Math.pow(10, Z.scale);
    candles = {t: new Float64Array(n), o: new Float64Array(n), h: new Float64Array(n), l: new Float64Array(n),
               c: new Float64Array(n)};
    var prevClose = 0;
    Z.segments.forEach(function (seg) {
      for (var j = 0; j < seg[1]; j++, k++) {
        candles.t[k] = seg[0] + j * Z.bar_ms;
        if (raw) {
          candles.o[k] = Z.open[k]; candles.h[k] = Z.high[k]; candles.l[k] = Z.low[k]; candles.c[k] = Z.close[k];
          continue;
        }
        /* integer arithmetic, then one division by 10**scale: the same doubles as the prices in the file */
        var o = j === 0 ? seg[2] : prevClose + dOpen[k], c = o + body[k];
        candles.o[k] = o / div; candles.c[k] = c / div;
        candles.h[k] = (Math.max(o, c) + up[k]) / div; candles.l[k] = (Math.min(o, c) - lo[k]) / div;
        prevClose = c;
      }
    });
    return candles;
  }
  function iso(ms) { return new Date(ms).toISOString().slice(0, 19).replace("T", " "); }

  function showZoom(name, i, scroll) {
    var t = D.trades[name];
    var sel = document.getElementById("zoom-strategy"), num = document.getElementById("zoom-trade");
    var info = document.getElementById("zoom-info");
    if (!t || i < 0 || i >= t.id.length) { return; }
    sel.value = name;
    num.max = t.id.length;
    num.value = i + 1;
    var entry = t.entry_ms[i], exit = t.exit_ms[i] === null ? entry : t.exit_ms[i];
    var side = t.side[i] > 0 ? "long" : "short";
    var head = name + " trade #" + t.id[i] + ": " + side + " " + fmtTime(entry) + " → " + fmtTime(t.exit_ms[i]) +
      " (" + t.reason[i] + "), pnl " + fmtNum(t.pnl[i], 2) + " USDT";
    if (Z.covered.indexOf(name) < 0) {
      info.textContent = head + " — no 5m candles embedded for this strategy (report size limit).";
      Plotly.react("zoom-chart", [], {title: {text: "no candles embedded"}, template: D.template}, CONFIG);
      return;
    }
    var all = zoomCandles(), lo = entry - Z.pad * Z.bar_ms, hi = exit + Z.pad * Z.bar_ms;
    var long = exit - entry > Z.max_span * Z.bar_ms;  /* only its entry and exit windows are embedded */
    var inside = function (t) {
      return long ? (t <= entry + Z.pad * Z.bar_ms || t >= exit - Z.pad * Z.bar_ms) : true;
    };
    var x = [], o = [], h = [], l = [], c = [], breaks = [];
    for (var k = 0; k < all.t.length; k++) {
      if (all.t[k] < lo || all.t[k] > hi || !inside(all.t[k])) { continue; }
      if (x.length && all.t[k] - x[x.length - 1] > Z.bar_ms) {
        breaks.push({values: [iso(x[x.length - 1] + Z.bar_ms)], dvalue: all.t[k] - x[x.length - 1] - Z.bar_ms});
      }
      x.push(all.t[k]); o.push(all.o[k]); h.push(all.h[k]); l.push(all.l[k]); c.push(all.c[k]);
    }
    var xs = x.map(iso);
    var traces = [{type: "candlestick", x: xs, open: o, high: h, low: l, close: c, name: Z.label,
                   increasing: {line: {color: "#26a69a"}}, decreasing: {line: {color: "#ef5350"}}},
      {type: "scatter", mode: "markers", x: [iso(entry)], y: [t.entry_price[i]], name: side + " entry",
       marker: {symbol: t.side[i] > 0 ? "triangle-up" : "triangle-down", size: 14,
                color: t.side[i] > 0 ? "#2ca02c" : "#d62728", line: {width: 1, color: "#222"}}}];
    if (t.exit_ms[i] !== null) {
      traces.push({type: "scatter", mode: "markers", x: [iso(exit)], y: [t.exit_price[i]], name: "exit: " + t.reason[i],
                   marker: {symbol: "x", size: 13, color: "#000"}});
    }
    [["sl", "stop-loss", "#d62728"], ["tp", "take-profit", "#2ca02c"]].forEach(function (lv) {
      var v = t[lv[0]][i];
      if (v !== null && v !== undefined) {
        traces.push({type: "scatter", mode: "lines", x: [iso(entry), iso(exit)], y: [v, v], name: lv[1] + " " + v,
                     line: {color: lv[2], dash: "dash", width: 1.5}});
      }
    });
    info.textContent = breaks.length ? "The middle of this long trade is not embedded: the gap is hidden." : "";
    Plotly.react("zoom-chart", traces, {
      title: {text: head}, template: D.template, height: 520, hovermode: "x unified",
      xaxis: {type: "date", rangeslider: {visible: false}, rangebreaks: breaks, title: {text: "time (UTC)"}},
      yaxis: {title: {text: "USDT"}}, legend: {orientation: "h", y: -0.2}
    }, CONFIG);
    if (scroll) { document.getElementById("zoom").scrollIntoView({behavior: "smooth"}); }
  }

  function initZoom() {
    var sel = document.getElementById("zoom-strategy"), num = document.getElementById("zoom-trade");
    if (!sel) { return; }
    var current = function () { return [sel.value, (+num.value || 1) - 1]; };
    sel.addEventListener("change", function () { showZoom(sel.value, 0, false); });
    num.addEventListener("change", function () { var s = current(); showZoom(s[0], s[1], false); });
    document.getElementById("zoom-prev").addEventListener("click", function () {
      var s = current(); showZoom(s[0], Math.max(0, s[1] - 1), false);
    });
    document.getElementById("zoom-next").addEventListener("click", function () {
      var s = current(); showZoom(s[0], Math.min(D.trades[s[0]].id.length - 1, s[1] + 1), false);
    });
    var first = D.zoom_first;
    if (first) { showZoom(first[0], first[1], false); }
  }

  /* the data block: JSON, deflate-compressed, base64 (see perpbot.backtest.report_page.data_script) */
  function loadData() {
    var el = document.getElementById("perpbot-report-data");
    var bin = atob(el.textContent.trim()), buf = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { buf[i] = bin.charCodeAt(i); }
    var stream = new Blob([buf]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).text().then(JSON.parse);
  }
  function unsupported(why) {
    document.querySelectorAll(".tradelist, #zoom-chart").forEach(function (box) {
      box.innerHTML = "<p class='na'>Trade lists and the trade zoom need a browser with DecompressionStream " +
        "(Chrome 80+, Firefox 113+, Safari 16.4+): " + why + "</p>";
    });
    document.body.setAttribute("data-ready", "error");
  }
  if (typeof DecompressionStream === "undefined") {
    unsupported("this browser has none");
    return;
  }
  loadData().then(function (data) {
    D = data;
    Z = D.zoom;
    document.querySelectorAll(".tradelist").forEach(buildTradeList);
    initZoom();
    window.PerpbotReport = {showZoom: showZoom, data: D};
    document.body.setAttribute("data-ready", "1");
  }, function (err) { unsupported(String(err)); });
})();
