/* perpbot dashboard helpers (loaded first): formatting, the DOM builder, the error banner and the
 * REST client with the API token. Exposed as window.PBU for dashboard.js and dashboard-panels.js.
 * The token (URL parameter "token") is kept in memory only: it is stripped from the address bar.
 */
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const TOKEN = params.get("token");
  if (TOKEN) {  // keep the token in memory only: strip it from the address bar and history
    params.delete("token");
    const qs = params.toString();
    history.replaceState(null, "", location.pathname + (qs ? "?" + qs : "") + location.hash);
  }
  const S = { errors: new Map(), authFailed: new Set() };

  // ------------------------------------------------------------------ helpers
  function clampInt(v, lo, hi, dflt) { const n = parseInt(v, 10); return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : dflt; }
  const $ = (id) => document.getElementById(id);
  const ok = (v) => v !== null && v !== undefined && Number.isFinite(Number(v));
  const ms = (t) => (typeof t === "number" ? t : Date.parse(t));
  function fmtNum(v, d = 2) {
    return ok(v) ? Number(v).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }) : "—";
  }
  function fmtPrice(v) { if (!ok(v)) return "—"; const a = Math.abs(v); return fmtNum(v, a >= 1000 ? 2 : a >= 1 ? 3 : 6); }
  const fmtPct = (v, d = 2) => (ok(v) ? (Number(v) * 100).toFixed(d) + " %" : "—");
  const fmtSigned = (v, d = 2) => (ok(v) ? (v > 0 ? "+" : "") + fmtNum(v, d) : "—");
  const iso = (t) => { const v = t === null || t === undefined ? NaN : ms(t); return Number.isFinite(v) ? new Date(v).toISOString() : null; };
  const fmtTime = (t) => (iso(t) ? iso(t).slice(0, 16).replace("T", " ") + " UTC" : "—");
  const plotTime = (t) => (iso(t) || "").slice(0, 19).replace("T", " ");  // naive UTC: Plotly ignores offsets
  const sideName = (s) => (s === "long" || s > 0 ? "LONG" : s === "short" || s < 0 ? "SHORT" : "—");
  const signalName = (s) => (s > 0 ? "BUY" : s < 0 ? "SELL" : "HOLD");
  const tone = (v) => (ok(v) && v > 0 ? "up" : ok(v) && v < 0 ? "down" : "");
  function tfMs(tf) {
    const m = /^(\d+)([smhdw])$/.exec(tf || "");
    return m ? Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[m[2]] : 3e5;
  }
  function el(tag, attrs, ...kids) {  // DOM builder; text is always set as text (no HTML injection)
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") n.className = v; else if (k.startsWith("data-")) n.setAttribute(k, v); else n[k] = v;
    }
    for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined) n.append(k instanceof Node ? k : String(k));
    return n;
  }
  function setField(root, name, ...content) {
    const n = root.querySelector(`[data-field="${name}"]`);
    if (n) n.replaceChildren(...content.map((c) => (c instanceof Node ? c : String(c))));
  }
  function debounce(fn, wait) { let t = null; return () => { clearTimeout(t); t = setTimeout(fn, wait); }; }

  // ------------------------------------------------------------------ error banner
  function setError(key, msg) { S.errors.set(key, msg); renderErrors(); }
  function clearError(key) { if (S.errors.delete(key)) renderErrors(); }
  function renderErrors() {
    const b = $("error-banner");
    b.textContent = [...S.errors.values()].join("\n");
    b.hidden = S.errors.size === 0;
  }

  // ------------------------------------------------------------------ REST
  class ApiError extends Error { constructor(status, msg) { super(msg); this.status = status; } }
  async function api(path, query, method = "GET", body = undefined) {  // body: sent as JSON
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(query || {})) if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    const headers = { Accept: "application/json" };
    if (TOKEN) headers.Authorization = "Bearer " + TOKEN;
    let resp;
    try {
      const init = { method, headers, credentials: "same-origin", cache: "no-store" };
      if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
      resp = await fetch(url, init);
    } catch (e) {
      throw new ApiError(0, `network error (${e.message})`);
    }
    if (resp.status === 401) {
      S.authFailed.add(path);
      setError("auth", "Not authorised (HTTP 401): the API token is missing, wrong or expired. " +
        "Open the dashboard as /dashboard?token=<API token>.");
      throw new ApiError(401, "unauthorised");
    }
    let out = null;
    try { out = await resp.json(); } catch (e) { out = null; }
    if (!resp.ok) {
      const d = out && out.detail;
      throw new ApiError(resp.status, `HTTP ${resp.status}: ${typeof d === "string" ? d : JSON.stringify(d)}`);
    }
    S.authFailed.delete(path);
    if (!S.authFailed.size) clearError("auth");
    return out;
  }
  async function guarded(key, label, fn) {  // one loader: its error goes to the banner, never thrown
    try { await fn(); clearError(key); } catch (e) {
      if (e.status === 401) clearError(key); else setError(key, `Could not load ${label}: ${e.message}`);
    }
  }
  window.PBU = { TOKEN, clampInt, $, ok, ms, fmtNum, fmtPrice, fmtPct, fmtSigned, iso, fmtTime, plotTime, sideName,
    signalName, tone, tfMs, el, setField, debounce, setError, clearError, api, guarded, ApiError };
})();
