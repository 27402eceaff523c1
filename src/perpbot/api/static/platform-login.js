/* perpbot platform: the login page. POST /api/v1/auth/token (form fields username, password) ->
 * {access_token, expires_in}; the token goes to sessionStorage (platform-common.js) and the browser to
 * ?next= (profile | wallet). Errors are the API's own lines: wrong user name or password (401), account
 * locked until ... (423), too many login attempts (429: the button waits out Retry-After).
 */
(function () {
  "use strict";
  const { $, token, saveToken, safeNext, request, say } = window.PF;
  const params = new URLSearchParams(location.search);
  const next = "/platform/" + safeNext(params.get("next"));
  const NOTES = { expired: "Your session has ended: please log in again.", logout: "You are logged out." };

  if (token() && !params.get("why")) { location.replace(next); return; }
  say("login-note", NOTES[params.get("why")] || "", "info");  // only fixed texts, never the query's
  let waitUntil = 0;

  function holdButton(seconds) {  // 429: keep the button off until Retry-After has passed
    const button = $("login-submit");
    waitUntil = Date.now() + seconds * 1000;
    button.disabled = true;
    setTimeout(() => { if (Date.now() >= waitUntil) button.disabled = false; }, seconds * 1000 + 50);
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = $("login-submit");
    if (button.disabled) return;
    button.disabled = true;
    say("login-error", "");
    say("login-note", "Checking…", "info");
    const body = new URLSearchParams({ username: $("username").value.trim(), password: $("password").value });
    try {
      const out = await request("/api/v1/auth/token", { method: "POST", body,
        headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" } });
      saveToken(out.access_token, out.expires_in);
      $("password").value = "";
      location.replace(next);
    } catch (e) {
      say("login-note", "");
      const prefix = e.status === 423 ? "Account locked: " : e.status === 429 ? "Slow down: " : "";
      say("login-error", prefix + e.message, "error");
      $("password").value = "";
      $("password").focus();
      if (e.status === 429 && e.retryAfter) { holdButton(e.retryAfter); return; }
    } finally {
      if (Date.now() >= waitUntil) button.disabled = false;
    }
  });
  document.body.dataset.ready = "1";
})();
