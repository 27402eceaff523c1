/* perpbot platform pages: shared helpers (loaded first), exposed as window.PF.
 *
 * The access token of POST /api/v1/auth/token lives in sessionStorage ("perpbot.platform.token":
 * {token, expires} with expires in ms since the epoch): one tab, gone when the tab closes, never in
 * localStorage or a cookie. Every API call sends it as "Authorization: Bearer"; a 401 drops it and
 * goes back to the login page. Text from the API or the user is only ever set as text (el(),
 * textContent), never as HTML.
 */
(function () {
  "use strict";
  const KEY = "perpbot.platform.token";
  const PAGES = ["profile", "wallet"];  // where the login page may send the user (?next=)
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {  // DOM builder; text is always set as text (no HTML injection)
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") n.className = v; else if (k.startsWith("data-")) n.setAttribute(k, v); else n[k] = v;
    }
    for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined) n.append(k instanceof Node ? k : String(k));
    return n;
  }

  // ------------------------------------------------------------------ the token
  function token() {
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (e) { saved = null; }
    if (saved && typeof saved.token === "string" && Number(saved.expires) > Date.now()) return saved.token;
    sessionStorage.removeItem(KEY);
    return null;
  }
  function saveToken(accessToken, expiresIn) {
    sessionStorage.setItem(KEY, JSON.stringify({ token: accessToken, expires: Date.now() + Number(expiresIn) * 1000 }));
  }
  function clearToken() { sessionStorage.removeItem(KEY); }
  const safeNext = (name) => (PAGES.includes(name) ? name : "profile");
  function toLogin(why) {
    const q = new URLSearchParams({ next: safeNext(document.body.dataset.page) });
    if (why) q.set("why", why);
    location.replace("/platform/login?" + q.toString());
  }

  // ------------------------------------------------------------------ the API
  class ApiError extends Error {
    constructor(status, msg, retryAfter) { super(msg); this.status = status; this.retryAfter = retryAfter; }
  }
  function detailText(out, status) {  // the API's one-line detail, or a 422's list of field errors
    const d = out && out.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) {
      return d.map((e) => {
        const where = (e.loc || []).filter((p) => p !== "body").join(".");
        return (where ? where + ": " : "") + e.msg;
      }).join("; ");
    }
    return `HTTP ${status}`;
  }
  async function request(path, init) {  // fetch + JSON; ApiError for a network error (status 0) or a non-2xx
    let resp;
    try {
      resp = await fetch(path, { credentials: "omit", cache: "no-store", ...init });
    } catch (e) {
      throw new ApiError(0, `network error: ${e.message}`);
    }
    let out = null;
    try { out = await resp.json(); } catch (e) { out = null; }
    if (!resp.ok) {
      const retry = parseInt(resp.headers.get("Retry-After") || "", 10);
      throw new ApiError(resp.status, detailText(out, resp.status), Number.isFinite(retry) ? retry : null);
    }
    return out;
  }
  async function api(path, method = "GET", body = undefined) {  // an API call with the user's token
    const t = token();
    if (!t) { toLogin("expired"); throw new ApiError(401, "not logged in"); }
    const headers = { Accept: "application/json", Authorization: "Bearer " + t };
    const init = { method, headers };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    try {
      return await request(path, init);
    } catch (e) {
      if (e.status === 401) { clearToken(); toLogin("expired"); }
      throw e;
    }
  }
  function newKey() {  // an idempotency key: 128 random bits (works outside secure contexts too)
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return "web-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // ------------------------------------------------------------------ messages & formatting
  function say(id, text, kind) {  // kind: error | ok | info
    const n = $(id);
    n.className = "msg " + (kind || "info");
    n.textContent = text || "";
  }
  const dash = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));
  const pct = (v) => (v === null || v === undefined ? "—" : `${+(Number(v) * 100).toFixed(6)} %`);
  const num = (v) => (v === null || v === undefined ? "—" : String(+Number(v).toFixed(6)));
  const when = (t) => (t ? String(t).replace("T", " ").slice(0, 19) + " UTC" : "—");

  // ------------------------------------------------------------------ page frame
  const canTrade = (me) => me.role === "trader" || me.role === "admin";
  const VIEWER_REASON = "You are a viewer: you can look, but changes need the trader role (ask an admin).";
  function lockForViewer(me, buttons, reasonId) {  // a viewer sees but cannot submit: buttons off, reason shown
    if (canTrade(me)) return;
    for (const id of buttons) { $(id).disabled = true; $(id).title = VIEWER_REASON; }
    const r = $(reasonId);
    r.textContent = VIEWER_REASON;
    r.hidden = false;
  }
  async function start() {  // a logged-in page: who am I, the logout button, admin-only parts
    if (!token()) { toLogin(); return new Promise(() => {}); }
    $("logout").addEventListener("click", () => { clearToken(); location.replace("/platform/login?why=logout"); });
    const me = await api("/api/v1/auth/me");
    $("who").replaceChildren(el("span", { "data-field": "username" }, me.username),
      el("span", { class: "badge", "data-field": "role" }, me.role));
    document.querySelectorAll("[data-admin-only]").forEach((n) => { n.hidden = me.role !== "admin"; });
    document.body.dataset.role = me.role;
    return me;
  }

  window.PF = { KEY, $, el, token, saveToken, clearToken, safeNext, api, request, ApiError, newKey, say, dash, pct,
    num, when, canTrade, lockForViewer, start, VIEWER_REASON };
})();
