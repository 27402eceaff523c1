/* perpbot platform: the profile page. Reads GET /api/v1/user/profile, /api/v1/risk-profiles and
 * /api/v1/user/stats; PUT /api/v1/user/profile {risk_profile} picks a profile (trader, admin); an admin
 * also edits a profile's numbers (PUT /api/v1/risk-profiles/{name}; the server refuses anyone else).
 * Numbers are shown as the API returns them: confidence a probability, position a fraction shown as a
 * percent, leverage in x; money as the API's exact decimal strings (USDT).
 */
(function () {
  "use strict";
  const { $, el, api, say, dash, pct, num, lockForViewer, start } = window.PF;
  const S = { me: null, profiles: [], current: null };

  const describe = (p) => `min confidence ${num(p.min_confidence)}, max position ${pct(p.max_position_frac)} of ` +
    `available, leverage ≤ ${num(p.max_leverage)}x`;

  function renderProfiles() {
    const select = $("risk-profile"), admin = $("admin-name");
    const chosen = select.value || (S.current && S.current.name);
    select.replaceChildren(...S.profiles.map((p) => el("option", { value: p.name }, `${p.name} — ${describe(p)}`)));
    if (chosen) select.value = chosen;
    const adminChosen = admin.value;
    admin.replaceChildren(...S.profiles.map((p) => el("option", { value: p.name }, p.name)));
    if (adminChosen) admin.value = adminChosen;
    fillAdmin();
    $("profiles-table").tBodies[0].replaceChildren(...S.profiles.map((p) => el("tr",
      { "data-profile": p.name, class: S.current && S.current.name === p.name ? "current" : null },
      el("td", { class: "left" }, p.name), el("td", { "data-field": "min_confidence" }, num(p.min_confidence)),
      el("td", { "data-field": "max_position_frac" }, pct(p.max_position_frac)),
      el("td", { "data-field": "max_leverage" }, num(p.max_leverage) + "x"))));
  }
  function renderCurrent(profile) {  // profile: GET/PUT /api/v1/user/profile
    S.current = profile.risk_profile;
    $("current-profile").textContent = `${S.current.name} (${describe(S.current)})`;
    $("risk-profile").value = S.current.name;
  }
  function fillAdmin() {
    const p = S.profiles.find((x) => x.name === $("admin-name").value);
    if (!p) return;
    $("admin-min-confidence").value = num(p.min_confidence);
    $("admin-max-position").value = num(p.max_position_frac);
    $("admin-max-leverage").value = num(p.max_leverage);
  }

  async function loadProfiles() { S.profiles = (await api("/api/v1/risk-profiles")).profiles || []; }
  async function loadStats() {
    try {
      const s = await api("/api/v1/user/stats");
      const money = (v) => (v === null || v === undefined ? "—" : `${v} ${s.currency}`);
      const shown = { total_trades: dash(s.total_trades), total_profit: money(s.total_profit),
        best_trade: money(s.best_trade), win_rate: pct(s.win_rate), days_active: dash(s.days_active) };
      for (const [k, v] of Object.entries(shown)) $("stats").querySelector(`[data-stat="${k}"]`).textContent = v;
      say("stats-msg", "");
    } catch (e) { if (e.status !== 401) say("stats-msg", "Could not load the statistics: " + e.message, "error"); }
  }

  $("profile-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = $("profile-save");
    if (button.disabled) return;
    button.disabled = true;
    say("profile-msg", "Saving…", "info");
    try {
      renderCurrent(await api("/api/v1/user/profile", "PUT", { risk_profile: $("risk-profile").value }));
      renderProfiles();
      say("profile-msg", `Saved: your risk profile is now ${S.current.name}.`, "ok");
    } catch (e) {
      if (e.status !== 401) say("profile-msg", "Not saved: " + e.message, "error");
    } finally {
      button.disabled = false;
    }
  });

  $("admin-name").addEventListener("change", fillAdmin);
  $("admin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = $("admin-save"), name = $("admin-name").value;
    button.disabled = true;
    const value = (id) => { const v = $(id).value.trim(); return v === "" ? null : Number(v); };
    try {
      await api(`/api/v1/risk-profiles/${encodeURIComponent(name)}`, "PUT", {
        min_confidence: value("admin-min-confidence"), max_position_frac: value("admin-max-position"),
        max_leverage: value("admin-max-leverage") });
      await loadProfiles();
      renderCurrent(await api("/api/v1/user/profile"));
      renderProfiles();
      say("admin-msg", `Saved: ${name} is now ${describe(S.profiles.find((p) => p.name === name))}.`, "ok");
    } catch (e) {
      if (e.status !== 401) say("admin-msg", "Not saved: " + e.message, "error");
    } finally {
      button.disabled = false;
    }
  });

  (async function main() {
    try {
      S.me = await start();
      lockForViewer(S.me, ["profile-save"], "profile-reason");
      const [profile] = await Promise.all([api("/api/v1/user/profile"), loadProfiles(), loadStats()]);
      renderCurrent(profile);
      renderProfiles();
      document.body.dataset.loaded = "1";
    } catch (e) {
      if (e.status !== 401) say("profile-msg", "Could not load your profile: " + e.message, "error");
    }
  })();
})();
