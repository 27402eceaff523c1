"""Notifications: texts, the background Notifier with real Telegram/SMTP channels on 127.0.0.1, retries,
daily summaries, and proof that a hanging Telegram server never delays the trading loop."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import statistics
import time

import numpy as np
import pandas as pd
import pytest

from _threads import _no_thread_left_behind  # noqa: F401 (autouse fixture)
from fake_telegram import FakeTelegram
from perpbot.bot.context import BotContext
from perpbot.bot.control import BotControl
from perpbot.bot.events import EventBus
from perpbot.bot.paper import PaperBot
from perpbot.app.jobs import backtest_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.logs import configure_logging
from perpbot.notify import EmailChannel, Notifier, TelegramChannel, default_channels, render_event
from perpbot.notify.fmt import number, pct, price, qty, split_message, usdt
from perpbot.notify.summary import parse_day
from perpbot.storage.ledger import Ledger

TOKEN = "987654:NOTIFY-secret-token"
CHAT = 4242


def usd(x, sign=False, lang="en"):
    s = format(x, "+,.2f" if sign else ",.2f")
    return (s.replace(",", "_").replace(".", ",").replace("_", ".") if lang == "id" else s) + " USDT"


def settings_for(tmp_path, fake=None, **kw):
    base = dict(output_dir=tmp_path, funding=False, warmup_bars=60, cooldown_bars=0, live_window=200)
    if fake is not None:
        base.update(telegram_chat_ids=[CHAT], telegram_base_url=fake.base_url, telegram_token=TOKEN)
    return load_settings(None, **{**base, **kw})


@pytest.fixture(scope="module")
def candles(sol5m_path):
    return load_market(sol5m_path, "5m").slice(0, 1500).candles


@pytest.fixture
def fake():
    with FakeTelegram() as f:
        yield f


# ------------------------------------------------------------------ formatting and texts
def test_number_formats_en_and_id():
    assert number(1234567.891, 2) == "1,234,567.89" and number(1234567.891, 2, "id") == "1.234.567,89"
    assert usdt(-12.345, sign=True) == "-12.35 USDT" and usdt(0.001, sign=True) == "+0.00 USDT"
    assert usdt(-0.001) == "0.00 USDT" and usdt(float("nan")) == "-" and usdt(None) == "-"
    assert price(145.12349, 0.001) == "145.123" and price(145.12351, 0.001, "id") == "145,124"
    assert price(27123.46, 0.1) == "27,123.5" and price(0.0123456, 0.0001) == "0.0123"
    assert qty(5.04, 0.1) == "5.0" and qty(1234.5, 1) == "1,234"
    assert pct(-0.20473, "en") == "-20.47%" and pct(0.5, "id", sign=True) == "+50,00%"


def test_split_message_keeps_lines_and_limit():
    lines = [f"line {i} " + "x" * (i % 97) for i in range(500)]
    text = "\n".join(lines)
    parts = split_message(text, 1000)
    assert all(0 < len(p) <= 1000 for p in parts) and "\n".join(parts) == text
    assert all(len(a) + 1 + len(b.split("\n")[0]) > 1000 for a, b in zip(parts, parts[1:]))
    assert split_message("a" * 2500, 1000) == ["a" * 1000, "a" * 1000, "a" * 500]
    with pytest.raises(ValueError, match="limit"):
        split_message("x", 0)


def test_render_every_kind_en_and_id(tmp_path):
    en, id_ = settings_for(tmp_path), settings_for(tmp_path, language="id")
    entry = dict(side="long", qty=5.04, price=145.12345, stop_loss=143.6721, take_profit=148.0252,
                 liquidation_price=97.5)
    assert render_event("entry", entry, en).text == (
        "🟢 LONG opened: SOL/USDT:USDT\nQty: 5.0 SOL\nEntry: 145.123 USDT\nStop-loss: 143.672 (-1.00%)\n"
        "Take-profit: 148.025 (+2.00%)\nLiquidation: 97.500")
    assert render_event("entry", entry, id_).text.startswith("🟢 Posisi LONG dibuka: SOL/USDT:USDT\nJumlah: 5,0 SOL\n"
                                                              "Harga masuk: 145,123 USDT")
    ex = dict(trade_id=7, side="short", qty=6.9, entry_price=130.0, exit_price=127.4, reason="take_profit", pnl=16.9)
    assert render_event("exit", ex, en).text == (
        "✅ Take-profit hit: SHORT closed\nTrade #7 · SOL/USDT:USDT\nQty: 6.9 SOL\n"
        "Entry: 130.000 → Exit: 127.400\nPnL: +16.90 USDT\nPrice move: +2.00%")
    assert render_event("exit", ex, id_).text.startswith("✅ Take-profit tercapai: posisi SHORT ditutup")
    assert "Laba/rugi: +16,90 USDT" in render_event("exit", ex, id_).text
    for reason, en_t, id_t in (("stop_loss", "🛑 Stop-loss hit", "🛑 Stop-loss tersentuh"),
                               ("signal", "🔁 SHORT closed on a signal", "🔁 Posisi SHORT ditutup karena sinyal"),
                               ("liquidation", "💥 SHORT LIQUIDATED", "💥 Posisi SHORT TERLIKUIDASI"),
                               ("manual", "✋ SHORT closed manually", "✋ Posisi SHORT ditutup manual")):
        assert render_event("exit", {**ex, "reason": reason}, en).text.startswith(en_t)
        assert render_event("exit", {**ex, "reason": reason}, id_).text.startswith(id_t)
    halt = render_event("risk_halt", {"event": "daily_loss_halt", "value": -0.0502}, en)
    assert halt.text.startswith("⚠️ Trading halted: daily loss limit reached (-5.02% today)")
    assert render_event("risk_halt", {"event": "max_drawdown_halt", "value": -0.2047}, id_).text.startswith(
        "⛔ Trading dihentikan: drawdown maksimum tercapai (-20,47% dari puncak)")
    assert render_event("order_failed", {"message": "insufficient margin"}, en).text == \
        "❗ Order failed: insufficient margin"
    assert render_event("error", {"message": "boom"}, id_).text == "❗ Terjadi kesalahan: boom"
    assert render_event("paused", {"by": "telegram:1"}, id_).text.startswith("⏸ Bot dijeda oleh telegram:1")
    summary = {"day": "2025-04-08", "trades": 3, "wins": 2, "win_rate": 2 / 3, "pnl": 1234.5, "fees": 3.2,
               "max_drawdown": -0.0123, "equity": 1012.3456}
    assert render_event("daily_summary", summary, id_).text.split("\n")[:7] == [
        "📊 Ringkasan harian 2025-04-08 (UTC)", "Transaksi: 3 (2 untung, 1 rugi)", "Win rate: 66,67%",
        "Laba/rugi: +1.234,50 USDT", "Biaya: 3,20 USDT", "Drawdown maksimum: -1,23%", "Ekuitas: 1.012,35 USDT"]
    assert render_event("cycle", {"bar": 1}, en) is None


def test_bad_configuration_is_refused(tmp_path):
    s = settings_for(tmp_path)
    assert default_channels(s) == []
    with pytest.raises(ValueError, match="telegram_token is not set"):
        TelegramChannel(s)
    with pytest.raises(ValueError, match="smtp_host is not set"):
        EmailChannel(s)
    with pytest.raises(ValueError, match="unknown event kinds"):
        EmailChannel(settings_for(tmp_path, smtp_host="127.0.0.1", email_to=["a@b.c"]), kinds=["cycle"])
    with pytest.raises(ValueError, match="not a date"):
        parse_day("yesterday-ish")
    n = Notifier(s, BotContext(s, BotControl()), channels=[])
    with pytest.raises(RuntimeError, match="not started"):
        n.send_daily_summary("2025-04-08")


# ------------------------------------------------------------------ paper bot -> Telegram
def _feed(bot, candles, times=None):
    for r in candles.itertuples(index=False):
        t0 = time.perf_counter()
        bot.on_candle(r.timestamp, r.open, r.high, r.low, r.close, r.volume)
        if times is not None:
            times.append(time.perf_counter() - t0)


def test_paper_bot_messages_equal_its_trades(tmp_path, fake, candles):
    s = settings_for(tmp_path, fake)
    ctl = BotControl(EventBus(history=10_000))
    bot = PaperBot(s, "ema-cross", control=ctl)
    notifier = Notifier(s, BotContext(s, ctl), [TelegramChannel(s)]).start()
    try:
        t0 = time.perf_counter()
        _feed(bot, candles)
        t1 = time.perf_counter()
        assert notifier.wait_idle(30)
        print(f"loop {t1 - t0:.2f} s, then {time.perf_counter() - t1:.2f} s to deliver")
    finally:
        notifier.stop()
    res = bot.exchange.result()
    trades = res.trades
    assert len(trades) >= 15
    texts = [m["text"] for m in fake.sent_to(CHAT)]
    exits = [t for t in texts if "closed" in t.split("\n")[0] or "LIQUIDATED" in t]
    entries = [t for t in texts if " opened: " in t.split("\n")[0]]
    summaries = [t for t in texts if t.startswith("📊 Daily summary")]
    assert len(texts) == len(exits) + len(entries) + len(summaries)
    assert len(exits) == len(trades)
    assert len(entries) == len(trades) + (1 if bot.exchange.position["side"] else 0)
    title = {"take_profit": "✅ Take-profit hit: {} closed", "stop_loss": "🛑 Stop-loss hit: {} closed",
             "signal": "🔁 {} closed on a signal"}
    expect_exits, expect_entries = [], []
    for t in trades.itertuples():
        side = "LONG" if t.side > 0 else "SHORT"
        move = t.side * (t.exit_price / t.entry_price - 1) * 100
        expect_exits.append(f"{title[t.exit_reason].format(side)}\nTrade #{t.trade_id} · SOL/USDT:USDT\n"
                            f"Qty: {t.qty:.1f} SOL\nEntry: {t.entry_price:.3f} → Exit: {t.exit_price:.3f}\n"
                            f"PnL: {usd(t.pnl, True)}\nPrice move: {move:+.2f}%")
        expect_entries.append(f"🟢 {side} opened: SOL/USDT:USDT\nQty: {t.qty:.1f} SOL\nEntry: {t.entry_price:.3f} USDT\n"
                              f"Stop-loss: {t.stop_loss:.3f} ({(t.stop_loss / t.entry_price - 1) * 100:+.2f}%)")
    assert exits == expect_exits
    assert [e.rsplit("\n", 2)[0] for e in entries[:len(trades)]] == expect_entries

    # one daily summary per finished UTC day, with the day's trades (by exit time) and intraday drawdown
    eq = res.equity.copy()
    eq.index = eq.index - pd.Timedelta(minutes=5)  # equity is stamped at candle close; days go by candle open
    days = sorted({t.strftime("%Y-%m-%d") for t in candles.timestamp})[:-1]
    assert [s_.split("\n")[0] for s_ in summaries] == [f"📊 Daily summary {d} (UTC)" for d in days]
    for d, text in zip(days, summaries):
        sel = trades[trades.exit_time.dt.strftime("%Y-%m-%d") == d]
        day_eq = eq[eq.index.strftime("%Y-%m-%d") == d]
        before = eq[eq.index < pd.Timestamp(d, tz="UTC")]
        path = pd.concat([before.iloc[-1:], day_eq]) if len(before) else day_eq
        dd = min(0.0, (path / path.cummax() - 1).min())
        n, wins = len(sel), int((sel.pnl > 0).sum())
        lines = text.split("\n")
        assert lines[1] == f"Trades: {n} ({wins} won, {n - wins} lost)"
        assert lines[2] == ("Win rate: " + (f"{wins / n * 100:.2f}%" if n else "-"))
        assert lines[3] == f"PnL: {usd(sel.pnl.sum(), True)}" and lines[4] == "Fees: -"
        assert lines[5] == f"Max drawdown: {dd * 100:.2f}%" and lines[6] == f"Equity: {usd(day_eq.iloc[-1])}"
    published = [e.data for e in ctl.events.recent(500, "daily_summary")]
    assert [p["day"] for p in published] == days


def test_failed_send_is_retried_with_backoff_and_logged(tmp_path, fake):
    s = settings_for(tmp_path, fake)
    ctl = BotControl(EventBus())
    log_dir = tmp_path / "logs"
    configure_logging(log_dir, "info")
    notifier = Notifier(s, BotContext(s, ctl), [TelegramChannel(s)], retry_base=0.1, max_attempts=3).start()
    try:
        fake.fail("sendMessage", 500)
        ctl.events.publish("order_failed", message="insufficient margin")
        assert notifier.wait_idle(10)
        fake.fail("sendMessage", 500, 502, 503)
        ctl.events.publish("error", message="exchange timeout")
        assert notifier.wait_idle(10)
        fake.fail("sendMessage", 400)
        ctl.events.publish("error", message="bad one")
        assert notifier.wait_idle(10)
    finally:
        notifier.stop()
        configure_logging(None)
    calls = fake.calls("sendMessage")
    assert [c.params["text"] for c in calls] == ["❗ Order failed: insufficient margin"] * 2 + \
        ["❗ Error: exchange timeout"] * 3 + ["❗ Error: bad one"]
    assert [m["text"] for m in fake.sent_to(CHAT)] == ["❗ Order failed: insufficient margin"]  # delivered once
    gaps = np.diff([c.time for c in calls[2:5]])
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # exponential backoff: 0.1 s, then 0.2 s
    assert notifier.stats == {"sent": 1, "failed": 2, "dropped": 0, "retries": 3}
    text = (log_dir / "perpbot.jsonl").read_text()
    logs = [json.loads(line) for line in text.splitlines()]
    failed = [e for e in logs if e["event"] == "notify_send_failed"]
    assert [(e["attempt"], e["permanent"], e["level"]) for e in failed] == [
        (1, False, "warning"), (1, False, "warning"), (2, False, "warning"), (3, False, "warning"),
        (1, True, "warning")]
    assert "Internal Server Error" in failed[0]["error"] and failed[0]["target"] == str(CHAT)
    assert "Bad Gateway" in failed[2]["error"] and failed[0]["channel"] == "telegram"
    assert [(e["attempts"], e["level"]) for e in logs if e["event"] == "notify_gave_up"] == [(3, "error"),
                                                                                              (1, "error")]
    assert TOKEN not in text and "sendMessage" not in text  # no request URL (it holds the token) is logged


def test_full_queue_drops_oldest_without_blocking(tmp_path, fake):
    s = settings_for(tmp_path, fake)
    ctl = BotControl(EventBus())
    fake.hang("sendMessage")
    notifier = Notifier(s, BotContext(s, ctl), [TelegramChannel(s, timeout=30)], queue_size=3).start()
    try:
        t0 = time.perf_counter()
        for k in range(10):
            ctl.events.publish("error", message=f"e{k}")
        assert time.perf_counter() - t0 < 0.01
        assert fake.wait_for(lambda f: f.hanging == 1 and notifier.stats["dropped"] >= 6, 10)
        assert notifier.stats["dropped"] in (6, 7) and notifier.stats["sent"] == 0
        assert notifier.pending == 10 - notifier.stats["dropped"]
    finally:
        notifier.stop()
    assert notifier.pending == 0


# ------------------------------------------------------------------ the loop is never delayed
def test_hanging_telegram_never_delays_the_loop(tmp_path, fake, candles):
    s = settings_for(tmp_path, fake)
    fake.hang("sendMessage")
    warm = PaperBot(s, "ema-cross")
    _feed(warm, candles.iloc[:300])  # JIT and caches
    plain = PaperBot(s, "ema-cross", control=BotControl(EventBus()))
    ctl = BotControl(EventBus())
    watched = PaperBot(s, "ema-cross", control=ctl)
    notifier = Notifier(s, BotContext(s, ctl), [TelegramChannel(s, timeout=60)]).start()
    t_plain, t_watched = [], []
    try:
        for r in candles.iloc[:1000].itertuples(index=False):  # interleaved: both see the same machine load
            for bot, times in ((plain, t_plain), (watched, t_watched)):
                t0 = time.perf_counter()
                bot.on_candle(r.timestamp, r.open, r.high, r.low, r.close, r.volume)
                times.append(time.perf_counter() - t0)
        # the loop is done while the first message is still hanging and the rest wait behind it (the dispatcher
        # drains the bus in batches: the last events are queued once it has taken them)
        assert notifier.wait_dispatched(5.0)
        entries = len(watched.exchange.result().trades) * 2
        assert entries >= 10 and fake.hanging == 1 and notifier.pending >= entries - 1
        assert notifier.stats["sent"] == 0 and len(fake.sent_to(CHAT)) == 0
    finally:
        t_stop = time.perf_counter()
        notifier.stop()
    m_plain, m_watched = statistics.median(t_plain), statistics.median(t_watched)
    print(f"median cycle: {m_plain * 1e3:.2f} ms without notifier, {m_watched * 1e3:.2f} ms with; "
          f"sums {sum(t_plain):.2f} s, {sum(t_watched):.2f} s; stop {time.perf_counter() - t_stop:.2f} s")
    assert m_watched <= max(1.5 * m_plain, m_plain + 0.002), (m_plain, m_watched)
    assert sum(t_watched) <= 1.5 * sum(t_plain) + 0.5
    assert len(watched.exchange.result().trades) == len(plain.exchange.result().trades)


# ------------------------------------------------------------------ e-mail: daily summary over SMTP
class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_daily_summary_by_email_from_backtest_ledger(tmp_path, sol5m_path):
    from aiosmtpd.controller import Controller

    s = load_settings(None, output_dir=tmp_path, funding=False, candles_file=sol5m_path, language="id",
                      smtp_host="127.0.0.1", smtp_port=_free_port(), email_from="bot@perpbot.test",
                      email_to=["ops@perpbot.test", "risk@perpbot.test"])
    market = load_market(sol5m_path, "5m").slice(0, 6000)
    out = backtest_job(s, ["ema-cross"], market=market, ledger=Ledger(s.ledger))
    rid = out.run_ids["ema-cross"]
    led = Ledger(s.ledger)
    trades, eq = led.trades(rid), led.equity(rid)
    day = trades.exit_time.dt.floor("D").value_counts().idxmax()  # the busiest day
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=s.smtp_port)
    smtp.start()
    notifier = Notifier(s, BotContext(s, BotControl()), [EmailChannel(s)], retry_base=0.05).start()
    try:
        summary = notifier.send_daily_summary(f"{day:%Y-%m-%d}", run_id=rid)
        assert notifier.wait_idle(10)
    finally:
        notifier.stop()
        smtp.stop()
    sel = trades[(trades.exit_time >= day) & (trades.exit_time < day + pd.Timedelta(days=1))]
    path = pd.concat([eq[eq.index <= day].iloc[-1:], eq[(eq.index > day) & (eq.index <= day + pd.Timedelta(days=1))]])
    dd = min(0.0, (path / path.cummax() - 1).min())
    n, wins = len(sel), int((sel.pnl > 0).sum())
    assert n >= 3 and summary["trades"] == n and summary["pnl"] == pytest.approx(sel.pnl.sum())
    assert summary["max_drawdown"] == pytest.approx(dd) and summary["fees"] == pytest.approx(sel.fees.sum())
    assert len(inbox.messages) == 1
    env = inbox.messages[0]
    assert env.mail_from == "bot@perpbot.test" and env.rcpt_tos == ["ops@perpbot.test", "risk@perpbot.test"]
    msg = email.message_from_bytes(env.content, policy=email.policy.default)
    assert msg["Subject"] == f"[perpbot] Ringkasan harian {day:%Y-%m-%d}"
    body = msg.get_content().splitlines()
    idn = lambda x: f"{x:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")  # noqa: E731
    assert body[:7] == [f"📊 Ringkasan harian {day:%Y-%m-%d} (UTC)", f"Transaksi: {n} ({wins} untung, {n - wins} rugi)",
                        f"Win rate: {idn(wins / n * 100)}%", f"Laba/rugi: {'+' if sel.pnl.sum() >= 0 else ''}"
                        f"{idn(sel.pnl.sum())} USDT", f"Biaya: {idn(sel.fees.sum())} USDT",
                        f"Drawdown maksimum: {idn(dd * 100)}%", f"Ekuitas: {idn(path.iloc[-1])} USDT"]
    assert [li.split()[0] for li in body[8:]] == [f"#{t}" for t in sel.trade_id]
