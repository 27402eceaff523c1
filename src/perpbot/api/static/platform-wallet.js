/* perpbot platform: the wallet page. GET /api/v1/wallet (available / locked per currency) and
 * /api/v1/wallet/transactions (the movements, newest first); POST /api/v1/wallet/deposit and /withdraw
 * {currency, amount, memo, idempotency_key} (trader, admin). Amounts are decimal strings, sent and shown
 * exactly as typed / as the API returns them (never through a float).
 *
 * A double click never moves money twice: the submit button is off while its request is out, and the
 * request carries an idempotency key made for it. The key is kept until the server answers: a retry of
 * the same request (same currency, amount and memo) after a lost answer or a 5xx reuses it, and the
 * server replays the first result instead of moving money again; a definite answer (done, or refused
 * with a 4xx) retires it, so the next submit is a new movement with a new key.
 */
(function () {
  "use strict";
  const { $, el, api, say, when, newKey, canTrade, lockForViewer, start } = window.PF;
  const JOURNAL_ROWS = 100;
  let me = null;

  function renderBalances(w) {  // GET /api/v1/wallet
    const rows = (w.balances || []).map((b) => el("tr", { "data-currency": b.currency },
      el("td", { class: "left" }, b.currency), el("td", { "data-field": "available" }, b.available),
      el("td", { "data-field": "locked" }, b.locked)));
    $("balances").tBodies[0].replaceChildren(...(rows.length ? rows
      : [el("tr", { class: "empty" }, el("td", { colSpan: 3 }, "No balance yet."))]));
  }
  function renderJournal(t) {  // GET /api/v1/wallet/transactions
    const rows = (t.transactions || []).map((e) => el("tr", { "data-entry-id": e.id, "data-kind": e.kind },
      el("td", {}, e.id), el("td", { class: "left" }, when(e.created_at)), el("td", { class: "left" }, e.kind),
      el("td", { class: "left" }, e.currency), el("td", { "data-field": "amount" }, e.amount),
      el("td", { class: "left" }, e.order_ref || ""), el("td", { class: "left memo", "data-field": "memo" }, e.memo || "")));
    $("journal").tBodies[0].replaceChildren(...(rows.length ? rows
      : [el("tr", { class: "empty" }, el("td", { colSpan: 7 }, "No movements yet."))]));
  }
  async function refresh() {
    try {
      const [w, t] = await Promise.all([api("/api/v1/wallet"), api(`/api/v1/wallet/transactions?limit=${JOURNAL_ROWS}`)]);
      renderBalances(w);  // drawn together, after both answers: never a new balance beside an old journal
      renderJournal(t);
      say("wallet-msg", "");
    } catch (e) {
      if (e.status !== 401) say("wallet-msg", "Could not load the wallet: " + e.message, "error");
    }
  }

  function moveForm(kind) {  // kind: deposit | withdraw
    const button = $(`${kind}-submit`), msg = `${kind}-msg`;
    const VERB = { deposit: "Deposited", withdraw: "Withdrew" }[kind];
    let pending = null;  // {key, sig}: the request whose answer has not come back yet
    let inFlight = false;

    $(`${kind}-form`).addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (inFlight) return;  // a second click while the first request is out
      const body = { currency: $(`${kind}-currency`).value.trim(), amount: $(`${kind}-amount`).value.trim() };
      const memo = $(`${kind}-memo`).value;
      if (memo) body.memo = memo;
      const sig = JSON.stringify(body);
      if (!pending || pending.sig !== sig) pending = { key: newKey(), sig };
      inFlight = true;
      button.disabled = true;
      say(msg, "Sending…", "info");
      try {
        const e = await api(`/api/v1/wallet/${kind}`, "POST", { ...body, idempotency_key: pending.key });
        pending = null;
        say(msg, e.replayed
          ? `Already done: movement #${e.id} (${e.amount} ${e.currency}) was recorded by an earlier try of this ` +
            "request; nothing moved again."
          : `${VERB} ${e.amount} ${e.currency} (movement #${e.id}).`, "ok");
        $(`${kind}-amount`).value = "";
        $(`${kind}-memo`).value = "";
      } catch (e) {
        if (e.status === 0 || e.status >= 500) {  // the answer is unknown: keep the key for a safe retry
          say(msg, `No answer (${e.message}). The balances show whether it went through; submitting the same ` +
            "request again is safe: it reuses its key, so the money moves at most once.", "error");
        } else {
          pending = null;
          if (e.status !== 401) say(msg, "Not done: " + e.message, "error");
        }
      } finally {
        inFlight = false;
        button.disabled = !canTrade(me);
        await refresh();
      }
    });
  }

  (async function main() {
    try {
      me = await start();
      lockForViewer(me, ["deposit-submit", "withdraw-submit"], "wallet-reason");
      moveForm("deposit");
      moveForm("withdraw");
      await refresh();
      document.body.dataset.loaded = "1";
    } catch (e) {
      if (e.status !== 401) say("wallet-msg", "Could not load the wallet: " + e.message, "error");
    }
  })();
})();
