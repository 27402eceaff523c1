"""The platform's web pages (login, profile, wallet) in headless Chromium against a real
``perpbot serve --platform`` subprocess on SQLite and on PostgreSQL (tests/_platform_pages.py).

Checked through the pages and then through the API: a wrong password shows the API's error, a lockout
its message, a login flood the rate limit; the token lives in sessionStorage only and logout drops it;
a risk-profile change persists; a deposit of 100 USDT and a double-clicked withdrawal of 30 leave
exactly one withdrawal and 70 available; a lost answer retried reuses its idempotency key (money moves
once); a viewer sees but cannot submit (and the server refuses a forced submit); admin-only controls
are hidden from others; user text (a memo with HTML) is shown as text; no CSP violation anywhere.
Screenshots go to ``test-artifacts/`` (platform-*.png), like the dashboard's.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import httpx
import pytest

pytest.importorskip("cryptography", reason="the platform extra is not installed")

from _dashboard_helpers import ARTIFACTS, CHROMIUM_ARGS, CHROMIUM, _need_browser  # noqa: E402
from _platform_db import BACKENDS  # noqa: E402
from _platform_pages import OPERATOR_TOKEN, PASSWORDS, served_platform  # noqa: E402

from perpbot.api.platform_pages import CSP  # noqa: E402

TOKEN_KEY = "perpbot.platform.token"
VIEWER_REASON = "You are a viewer: you can look, but changes need the trader role (ask an admin)."
HTML_MEMO = '<img src=x onerror="window.__pwned=1">first <b>deposit</b>'
T = 15_000  # ms


@pytest.fixture(scope="module", params=BACKENDS)
def live(request, tmp_path_factory, sol5m_path):
    _need_browser()
    with served_platform(request.param, tmp_path_factory.mktemp("pages"), sol5m_path) as lp:
        lp["backend"] = request.param
        yield lp


@pytest.fixture(scope="module")
def chromium():
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def tab(chromium):
    """A fresh browser context (its own sessionStorage); yields (page, problems: page errors and CSP reports)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    yield page, problems
    context.close()


def api(live, page, method, path, **kw):
    """Call the API with the page's own access token (read from its sessionStorage)."""
    token = json.loads(page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})"))["token"]
    return httpx.request(method, live["base"] + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"},
                         timeout=30, trust_env=False, **kw)


def log_in(live, page, user, password=None, next_page="profile"):
    page.goto(f"{live['base']}/platform/login?next={next_page}")
    page.wait_for_selector("body[data-ready='1']", timeout=T)
    page.fill("#username", user)
    page.fill("#password", password or PASSWORDS[user])
    page.click("#login-submit")


def login_error(page) -> str:
    page.wait_for_function("() => document.getElementById('login-error').textContent !== ''", timeout=T)
    return page.text_content("#login-error")


def shot(page, live, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"platform-{name}-{live['backend']}.png"), full_page=True)


def balance(page, currency="USDT"):
    row = f"#balances tr[data-currency={currency}]"
    return page.text_content(f"{row} [data-field=available]"), page.text_content(f"{row} [data-field=locked]")


def wait_available(page, amount: str) -> None:
    page.wait_for_function("a => document.querySelector('#balances [data-field=available]').textContent === a",
                           arg=amount, timeout=T)


def journal(page) -> list[dict]:
    return page.eval_on_selector_all("#journal tbody tr[data-entry-id]", """rows => rows.map(r => ({
        id: +r.dataset.entryId, kind: r.dataset.kind, amount: r.querySelector('[data-field=amount]').textContent,
        memo: r.querySelector('[data-field=memo]').textContent}))""")


def wait_msg(page, sel, start):
    page.wait_for_function("([s, t]) => document.querySelector(s).textContent.startsWith(t)", arg=[sel, start],
                           timeout=T)
    return page.text_content(sel)


# ------------------------------------------------------------------------------------------ tests
# (wait_for_function takes functions: a string predicate is eval'ed in the page, which the CSP forbids)
def test_pages_are_served_with_a_strict_policy_and_no_operator_token(live):
    with httpx.Client(base_url=live["base"], trust_env=False, follow_redirects=False) as c:
        for path in ("/platform/login", "/platform/profile", "/platform/wallet"):
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
            assert r.headers["content-security-policy"] == CSP and "<script>" not in r.text and " style=" not in r.text
            assert (r.headers["x-content-type-options"], r.headers["x-frame-options"], r.headers["cache-control"],
                    r.headers["referrer-policy"]) == ("nosniff", "DENY", "no-store", "no-referrer")
        for name in ("common", "login", "profile", "wallet"):  # user text is set as text, never parsed as HTML
            js = c.get(f"/platform/assets/platform-{name}.js")
            assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
            assert not any(sink in js.text for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"))
        assert c.get("/platform").headers["location"] == "/platform/login"
        for bad in ("/platform/assets/dashboard.js", "/platform/assets/platform-x.py", "/platform/assets/..%2Fapp.py"):
            assert c.get(bad).status_code == 404, bad
        assert c.get("/static/platform-common.js").status_code == 401  # the operator's routes keep their token
        assert c.get("/dashboard").status_code == 401


def test_without_the_platform_there_are_no_pages():
    from _api_helpers import serving

    from perpbot.api import create_app
    from perpbot.bot.context import BotContext
    from perpbot.config import load_settings

    app = create_app(BotContext(load_settings(None, ledger_url="sqlite://")), OPERATOR_TOKEN)  # a one-person install
    with serving(app) as base, httpx.Client(base_url=base, trust_env=False) as c:
        assert c.get("/platform/login").status_code == 401  # the operator token gate is not bypassed
        assert c.get("/platform/login", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).status_code == 404


def test_login_profile_stats_and_logout(live, tab):
    page, problems = tab
    log_in(live, page, "alice", "not her password")
    assert login_error(page) == "wrong user name or password"
    assert page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None
    shot(page, live, "login-error")
    page.fill("#password", PASSWORDS["alice"])
    page.click("#login-submit")
    page.wait_for_selector("body[data-loaded='1']", timeout=T)
    assert page.url == f"{live['base']}/platform/profile" and page.text_content("#who") == "alicetrader"
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []

    profiles = {p["name"]: p for p in api(live, page, "GET", "/risk-profiles").json()["profiles"]}
    assert set(profiles) == {"conservative", "moderate", "aggressive"}
    for name, p in profiles.items():  # the table shows the API's numbers
        cells = page.eval_on_selector_all(f"#profiles-table tr[data-profile={name}] td", "t => t.map(c => c.textContent)")
        assert cells == [name, f"{p['min_confidence']:g}", f"{p['max_position_frac'] * 100:g} %", f"{p['max_leverage']:g}x"]
    assert page.text_content("#current-profile").startswith("conservative (min confidence 0.75, max position 10 %")
    assert page.is_hidden("#admin-profiles") and page.is_hidden("#profile-reason")
    stats = {k: page.text_content(f"#stats [data-stat={k}]") for k in
             ("total_trades", "total_profit", "best_trade", "win_rate", "days_active")}
    assert stats == {"total_trades": "0", "total_profit": "0 USDT", "best_trade": "—", "win_rate": "—", "days_active": "0"}

    page.select_option("#risk-profile", "moderate")
    page.click("#profile-save")
    assert wait_msg(page, "#profile-msg", "Saved") == "Saved: your risk profile is now moderate."
    got = api(live, page, "GET", "/user/profile").json()
    assert got["risk_profile"] == profiles["moderate"] and got["username"] == "alice"
    page.reload()
    page.wait_for_selector("body[data-loaded='1']", timeout=T)
    assert page.input_value("#risk-profile") == "moderate" and page.text_content("#current-profile").startswith("moderate")
    shot(page, live, "profile")

    page.click("#logout")
    page.wait_for_url("**/platform/login?why=logout", timeout=T)
    assert page.text_content("#login-note") == "You are logged out."
    assert page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None
    page.goto(live["base"] + "/platform/wallet")  # no token: back to the login page
    page.wait_for_url("**/platform/login?next=wallet", timeout=T)
    assert problems == []


def test_stats_of_closed_trades(live, tab):
    page, problems = tab
    log_in(live, page, "bob")
    page.wait_for_selector("body[data-loaded='1']", timeout=T)
    nets = live["bob_nets"]
    plain = lambda d: format(d.normalize(), "f")  # noqa: E731
    want = {"total_trades": "2", "total_profit": f"{plain(sum(nets))} USDT", "best_trade": f"{plain(max(nets))} USDT",
            "win_rate": f"{sum(n > 0 for n in nets) / 2 * 100:g} %", "days_active": "1"}
    assert nets[0] > 0 > nets[1] and want["win_rate"] == "50 %"
    assert {k: page.text_content(f"#stats [data-stat={k}]") for k in want} == want
    assert problems == []


def test_deposit_double_clicked_withdrawal_and_a_lost_answer(live, tab):
    page, problems = tab
    log_in(live, page, "alice", next_page="wallet")
    page.wait_for_selector("body[data-loaded='1']", timeout=T)
    assert page.url.endswith("/platform/wallet") and page.text_content("#balances tbody") == "No balance yet."

    page.fill("#deposit-amount", "100")
    page.fill("#deposit-memo", HTML_MEMO)
    page.click("#deposit-submit")
    assert wait_msg(page, "#deposit-msg", "Deposited").startswith("Deposited 100 USDT (movement #")
    page.wait_for_selector("#balances tr[data-currency=USDT]", timeout=T)
    assert balance(page) == ("100", "0")
    assert journal(page)[0]["memo"] == HTML_MEMO and page.query_selector("#journal img, #journal b") is None
    assert page.evaluate("window.__pwned") is None

    posts: list[dict] = []
    page.on("request", lambda r: posts.append(r.post_data_json) if r.url.endswith("/wallet/withdraw") else None)
    page.fill("#withdraw-amount", "30")
    page.dblclick("#withdraw-submit")
    assert wait_msg(page, "#withdraw-msg", "Withdrew").startswith("Withdrew 30 USDT (movement #")
    wait_available(page, "70")
    assert len(posts) == 1 and posts[0]["amount"] == "30" and posts[0]["currency"] == "USDT"
    assert [(e["kind"], e["amount"]) for e in journal(page)] == [("withdraw", "30"), ("deposit", "100")]
    w = api(live, page, "GET", "/wallet").json()["balances"]
    assert w == [{"currency": "USDT", "available": "70", "locked": "0"}]
    moves = api(live, page, "GET", "/wallet/transactions").json()["transactions"]
    assert [m["kind"] for m in moves].count("withdraw") == 1 and Decimal(moves[0]["amount"]) == 30
    shot(page, live, "wallet")

    page.fill("#withdraw-amount", "1000")  # more than available: the API's reason, nothing moves
    page.click("#withdraw-submit")
    assert wait_msg(page, "#withdraw-msg", "Not done") == \
        "Not done: withdraw of 1000 USDT refused: available balance is 70 USDT"
    page.fill("#withdraw-amount", "0")
    page.click("#withdraw-submit")
    assert wait_msg(page, "#withdraw-msg", "Not done") == "Not done: amount: Input should be greater than 0"

    # the server moves 5 but the answer is lost; the retry reuses the key and is replayed
    lost = []

    def drop_answer(route):
        lost.append(route.fetch().status)  # the request reaches the server ...
        route.abort()  # ... the page never sees the answer

    page.route("**/api/v1/wallet/withdraw", drop_answer, times=1)
    posts.clear()
    page.fill("#withdraw-amount", "5")
    page.click("#withdraw-submit")
    assert wait_msg(page, "#withdraw-msg", "No answer").endswith("so the money moves at most once.")
    page.click("#withdraw-submit")
    assert "nothing moved again" in wait_msg(page, "#withdraw-msg", "Already done")
    wait_available(page, "65")
    assert lost == [200] and len(posts) == 2 and posts[0] == posts[1]  # same key, same body
    assert [(e["kind"], e["amount"]) for e in journal(page)] == [("withdraw", "5"), ("withdraw", "30"), ("deposit", "100")]
    assert api(live, page, "GET", "/wallet").json()["balances"][0]["available"] == "65"
    assert problems == []


def test_a_viewer_sees_but_cannot_submit(live, tab):
    page, problems = tab
    log_in(live, page, "vic", next_page="wallet")
    page.wait_for_selector("body[data-loaded='1']", timeout=T)
    assert page.text_content("#who") == "vicviewer" and page.text_content("#wallet-reason") == VIEWER_REASON
    for button in ("#deposit-submit", "#withdraw-submit"):
        assert page.is_disabled(button) and page.get_attribute(button, "title") == VIEWER_REASON
    shot(page, live, "viewer")
    # forced past the UI, the server still says no
    page.evaluate("document.getElementById('deposit-submit').disabled = false")
    page.fill("#deposit-amount", "10")
    page.click("#deposit-submit")
    assert wait_msg(page, "#deposit-msg", "Not done") == "Not done: this needs the trader role (you are viewer)"
    assert page.is_disabled("#deposit-submit")
    assert api(live, page, "GET", "/wallet").json()["balances"] == []
    page.click("nav a[href='/platform/profile']")
    page.wait_for_selector("body[data-loaded='1']", timeout=T)
    assert page.is_disabled("#profile-save") and page.text_content("#profile-reason") == VIEWER_REASON
    assert page.is_hidden("#admin-profiles")
    assert problems == []


def test_admin_edits_a_profile_others_cannot(live, tab):
    page, problems = tab
    log_in(live, page, "root")
    page.wait_for_selector("body[data-loaded='1']", timeout=T)
    assert page.is_visible("#admin-profiles")
    page.select_option("#admin-name", "aggressive")
    assert page.input_value("#admin-max-leverage") == "5"
    page.fill("#admin-max-leverage", "4")
    page.click("#admin-save")
    assert wait_msg(page, "#admin-msg", "Saved").startswith("Saved: aggressive is now min confidence 0.55, max position "
                                                            "30 % of available, leverage ≤ 4x")
    got = {p["name"]: p for p in api(live, page, "GET", "/risk-profiles").json()["profiles"]}
    assert got["aggressive"] == {"name": "aggressive", "min_confidence": 0.55, "max_position_frac": 0.3,
                                 "max_leverage": 4.0}
    assert page.text_content("#profiles-table tr[data-profile=aggressive] [data-field=max_leverage]") == "4x"
    shot(page, live, "admin")
    bob = httpx.post(live["base"] + "/api/v1/auth/token", data={"username": "bob", "password": PASSWORDS["bob"]},
                     trust_env=False, timeout=30).json()["access_token"]
    r = httpx.put(live["base"] + "/api/v1/risk-profiles/aggressive", json={"max_leverage": 9}, trust_env=False,
                  headers={"Authorization": f"Bearer {bob}"}, timeout=30)
    assert r.status_code == 403 and r.json()["detail"] == "this needs the admin role (you are trader)"
    assert problems == []


def test_lockout_and_rate_limit_messages(live, tab):
    """Last in the module: it spends the client's login attempts for the minute."""
    page, problems = tab
    log_in(live, page, "eve", "wrong password")
    for attempt in range(2, 6):  # the 5th wrong password locks the account
        assert login_error(page) == "wrong user name or password"
        page.evaluate("document.getElementById('login-error').textContent = ''")
        page.fill("#password", f"wrong password {attempt}")
        page.click("#login-submit")
    locked = login_error(page)
    assert re.fullmatch(r"Account locked: account locked until 20\d\d-\d\d-\d\dT[0-9:.]+\+00:00 after 5 wrong passwords",
                        locked), locked
    for _ in range(25):  # then the per-client limit (20 a minute by default)
        page.evaluate("document.getElementById('login-error').textContent = ''")
        page.fill("#password", "still wrong")
        page.click("#login-submit")
        if login_error(page).startswith("Slow down"):
            break
    assert login_error(page).startswith("Slow down: too many login attempts: retry in ")
    assert page.is_disabled("#login-submit") and page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None
    shot(page, live, "login-limited")
    assert problems == []
