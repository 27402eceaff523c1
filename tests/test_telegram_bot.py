"""The Telegram command bot end to end: real python-telegram-bot against a local fake Bot API.

Every command is sent as a Telegram update and the reply texts are checked against numbers
recomputed here with pandas / TA-Lib from a ledger filled by a real backtest (ema-cross on
20,000 real SOLUSDT 5m candles) and a real (small, quickly fitted) model.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest
import talib
from threadpoolctl import threadpool_limits

from _threads import _no_thread_left_behind  # noqa: F401 (autouse fixture)
from fake_telegram import FakeTelegram
from perpbot.bot.context import BotContext
from perpbot.bot.control import BotControl
from perpbot.app.jobs import backtest_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.features.build import compute_features, feature_names, features_hash
from perpbot.ml.labels import triple_barrier_labels
from perpbot.ml.models import make_model
from perpbot.ml.registry import ModelBundle
from perpbot.notify.telegram_bot import run_bot_in_thread
from perpbot.storage.ledger import Ledger

TOKEN = "123456:TEST-token-abcdef"
CHAT, OTHER, STRANGER = 111, 222, 999


def usd(x: float, sign: bool = False, lang: str = "en") -> str:
    """Independent formatting for the assertions (Python's format, separators swapped for id)."""
    s = format(x, "+,.2f" if sign else ",.2f")
    return (s.replace(",", "_").replace(".", ",").replace("_", ".") if lang == "id" else s) + " USDT"


def p3(x: float, lang: str = "en") -> str:
    s = f"{x:,.3f}"
    return s.replace(",", "_").replace(".", ",").replace("_", ".") if lang == "id" else s


@pytest.fixture(scope="module")
def world(sol5m_path, tmp_path_factory):
    """Backtest ledger + model + a control whose status looks like a running paper bot."""
    tmp = tmp_path_factory.mktemp("tgbot")
    s = load_settings(None, output_dir=tmp, funding=False, candles_file=sol5m_path)
    market = load_market(sol5m_path, "5m").slice(0, 20000)
    out = backtest_job(s, ["ema-cross", "buy-and-hold"], market=market, ledger=Ledger(s.ledger))
    rid = out.run_ids["ema-cross"]
    led = Ledger(s.ledger)
    trades, run = led.trades(rid), led.get_run(rid)
    # a real model, fitted quickly (logreg) on the first 12,000 bars
    c = market.candles
    X = compute_features(c.iloc[:12000], None)
    y = triple_barrier_labels(c.high.to_numpy()[:12000], c.low.to_numpy()[:12000], c.close.to_numpy()[:12000],
                              0.02, 0.01, 48)
    names = feature_names(with_funding=False)
    ok = np.isfinite(X[names].to_numpy()).all(axis=1) & np.isfinite(y)
    with threadpool_limits(1):  # BLAS threads thrash on a busy 2-core runner
        model = make_model("logreg", n_jobs=1).fit(X[names].to_numpy()[ok], y[ok])
    bundle = ModelBundle(model_name="logreg", params={}, feature_names=names, features_hash=features_hash(names),
                         folds=[], final_model=model, train_start_time=c.timestamp.iloc[0],
                         train_end_time=c.timestamp.iloc[11999], final_from_time=c.timestamp.iloc[12000],
                         label_settings={"take_profit": 0.02, "stop_loss": 0.01, "horizon": 48,
                                         "barrier_mode": "fixed"})
    return {"settings": s, "market": market, "rid": rid, "trades": trades, "run": run, "bundle": bundle,
            "model": model, "names": names}


def make_ctx(world, **status):
    control = BotControl(mode="paper", strategy="ema-cross")
    t = world["trades"]
    control.update_status(running=True, run_id=world["rid"], equity=world["run"]["metrics"]["final_equity"],
                          position={"side": 1, "qty": 5.0, "entry_price": 145.12345, "stop_loss": 143.6721,
                                    "take_profit": 148.0252, "liquidation_price": 97.5004, "margin": 241.8712},
                          last_signal={"signal": 1, "p_down": 0.1, "p_flat": 0.2, "p_up": 0.7,
                                       "time": "2025-05-31T06:00:00+00:00"},
                          last_candle_time=t.exit_time.iloc[-1].isoformat(), cycles=20000, **status)
    return BotContext(world["settings"], control, candles_source=lambda sym: world["market"].candles,
                      bundle=world["bundle"])


class Harness:
    """A fake Bot API + the command bot polling it, for one test."""

    def __init__(self, world, lang="en", cooldown=0.0):
        self.fake = FakeTelegram().start()
        self.settings = world["settings"].model_copy(update={
            "telegram_chat_ids": [CHAT, OTHER], "telegram_base_url": self.fake.base_url, "language": lang,
            "telegram_cooldown": cooldown, "telegram_token": load_settings(None, telegram_token=TOKEN).telegram_token})
        self.ctx = make_ctx(world)
        self.ctx.settings = self.settings
        self.runner = run_bot_in_thread(self.settings, self.ctx, poll_timeout=5)

    def ask(self, text: str, chat: int = CHAT, n: int = 1) -> list[str]:
        """Send ``text`` and return the texts of the ``n`` replies it causes."""
        before = len(self.fake.sent_to(chat))
        self.fake.send_text(chat, text)
        sent = self.fake.wait_sent(chat, before + n)
        return [m["text"] for m in sent[before:before + n]]

    def last(self, chat: int = CHAT) -> dict:
        return self.fake.sent_to(chat)[-1]

    def close(self):
        self.runner.stop()
        self.fake.stop()
        assert not self.runner._thread.is_alive()


@pytest.fixture
def harness(world):
    made = []

    def make(**kw):
        h = Harness(world, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def test_every_command_en(world, harness):
    h = harness()
    fake, trades, m = h.fake, world["trades"], world["run"]["metrics"]
    assert fake.calls("getMe") and fake.calls("deleteWebhook")
    commands = [c["command"] for c in fake.calls("setMyCommands")[0].params["commands"]]
    assert commands[:3] == ["menu", "status", "balance"] and len(commands) == 14
    assert all(r.token == TOKEN for r in fake.requests)

    (text,) = h.ask("/start")
    assert text.startswith("perpbot: SOL/USDT:USDT 5m, paper mode, strategy ema-cross.")
    kb = [b["callback_data"] for row in h.last()["reply_markup"]["inline_keyboard"] for b in row]
    assert kb == ["cmd:" + c for c in ("status", "balance", "positions", "trades", "profit", "daily",
                                         "performance", "signal", "timeframes", "pause", "resume", "forceexit",
                                         "help")]
    (text,) = h.ask("/menu")
    assert "Choose a command" in text
    menu_id = h.last()["message_id"]

    eq = m["final_equity"]
    (text,) = h.ask("/status")
    assert "State: running" in text and f"Equity: {usd(eq)}" in text
    assert "Position: LONG 5.0 SOL @ 145.123" in text and "Last signal: BUY (long) (P↑ 70.0%, P↓ 10.0%)" in text
    assert f"Last candle: {trades.exit_time.iloc[-1]:%Y-%m-%d %H:%M} UTC" in text and "Cycles: 20,000" in text
    assert f"Run: #{world['rid']}" in text

    (text,) = h.ask("/balance")
    assert f"Equity: {usd(eq)}" in text and "Starting capital: 1,000.00 USDT" in text
    assert f"PnL: {usd(eq - 1000, True)} ({(eq - 1000) / 1000 * 100:+.2f}%)" in text

    (text,) = h.ask("/positions")
    assert "SOL/USDT:USDT LONG 5.0 SOL @ 145.123" in text
    assert "SL 143.672 · TP 148.025 · Liq 97.500 · Margin 241.87 USDT" in text

    (text,) = h.ask("/trades 5")
    lines = text.split("\n")
    assert lines[0] == f"Last 5 trades (run #{world['rid']})"
    reason = {"take_profit": "TP", "stop_loss": "SL", "signal": "signal"}
    expect = [f"#{r.trade_id} {'LONG' if r.side > 0 else 'SHORT'} {r.qty:.1f} {r.entry_price:.3f} → "
              f"{r.exit_price:.3f} {reason[r.exit_reason]} {usd(r.pnl, True)} ({r.exit_time:%Y-%m-%d %H:%M} UTC)"
              for r in trades.tail(5).itertuples()]
    assert lines[1:] == expect

    (text,) = h.ask("/profit")
    n, wins, pnl = len(trades), int((trades.pnl > 0).sum()), trades.pnl.sum()
    assert f"Closed trades: {n} ({wins} won)" in text and f"Win rate: {wins / n * 100:.2f}%" in text
    assert f"Net PnL: {usd(pnl, True)} ({pnl / 1000 * 100:+.2f}% of starting capital)" in text
    assert f"Fees: {usd(trades.fees.sum())} · Funding: 0.00 USDT" in text

    (text,) = h.ask("/daily 7")
    end = trades.exit_time.iloc[-1].floor("D")
    days = pd.date_range(end - pd.Timedelta(days=6), end, freq="D")
    lines = text.split("\n")
    assert lines[0] == f"Daily PnL (UTC, last 7 days, run #{world['rid']})" and len(lines) == 8
    for day, line in zip(days, lines[1:]):
        sel = trades[trades.exit_time.dt.floor("D") == day]
        assert line == f"{day:%Y-%m-%d}  {usd(sel.pnl.sum(), True)}  {len(sel)} trades"
    assert sum(int(li.split()[-2]) for li in lines[1:]) > 0

    (text,) = h.ask("/performance")
    assert f"Sharpe ratio: {m['sharpe']:.2f}" in text and f"Max drawdown: {m['max_drawdown'] * 100:.2f}%" in text
    assert f"Trades: {int(m['trade_count'])}" in text and f"Final equity: {usd(eq)}" in text
    assert f"Total return: {m['total_return'] * 100:+.2f}%" in text and "ema-cross backtest" in text

    # /signal: the model's call on the latest candle, recomputed here from features + model
    (text,) = h.ask("/signal sol")
    c = world["market"].candles.iloc[-1000:].reset_index(drop=True)
    feats = compute_features(c, None).iloc[[-1]]
    proba = world["model"].predict_proba(feats[world["names"]].to_numpy())[0]
    assert f"Signal SOL/USDT:USDT: candle {c.timestamp.iloc[-1]:%Y-%m-%d %H:%M} UTC" in text
    assert (f"P(down) {proba[0] * 100:.1f}% · P(flat) {proba[1] * 100:.1f}% · P(up) {proba[2] * 100:.1f}%"
            in text)
    decision = "BUY" if proba[2] >= 0.6 else "SELL" if proba[0] >= 0.6 else "HOLD"
    assert f"Call: {decision}" in text and f"confidence {max(proba[0], proba[2]) * 100:.1f}%" in text
    assert f"rsi14 {feats['rsi14'].iloc[0]:,.4f}" in text
    assert h.ask("/signal")[0] == "Usage: /signal SYMBOL, e.g. /signal SOL/USDT:USDT"
    assert h.ask("/signal BTC/USDT")[0] == "Unknown symbol 'BTC/USDT': this bot trades SOL/USDT:USDT."
    assert h.ask("/timeframes")[0] == "Usage: /timeframes SYMBOL, e.g. /timeframes SOL/USDT:USDT"
    assert h.ask("/trades abc")[0] == "Bad argument 'abc': give a whole number from 1 to 1000, e.g. /trades 10."
    assert h.ask("/daily 0")[0].startswith("Bad argument '0'")
    assert h.ask("/frobnicate")[0] == "Unknown command /frobnicate. See /help."

    (text,) = h.ask("/help")
    for cmd in ("/start", "/menu", "/status", "/balance", "/positions", "/trades", "/profit", "/daily",
                "/performance", "/signal", "/timeframes", "/pause", "/resume", "/forceexit", "/help"):
        assert cmd in text

    # a menu button runs its command
    before = len(fake.sent_to(CHAT))
    fake.press(CHAT, menu_id, "cmd:balance")
    assert fake.wait_sent(CHAT, before + 1)[-1]["text"].startswith("Balance")
    assert fake.wait_calls("answerCallbackQuery", 1)
    fake.press(CHAT, menu_id, "cmd:signal")  # buttons take the bot's own symbol
    assert fake.wait_sent(CHAT, before + 2)[-1]["text"].startswith("Signal SOL/USDT:USDT: candle")
    fake.press(CHAT, menu_id, "cmd:forceexit")
    assert fake.wait_sent(CHAT, before + 3)[-1]["text"] == "Close the open LONG 5.0 SOL @ 145.123 at market now?"


def test_timeframes_buttons_edit_the_message(world, harness):
    h = harness()
    (text,) = h.ask("/timeframes SOL/USDT:USDT")
    msg = h.last()
    assert [b["callback_data"] for b in msg["reply_markup"]["inline_keyboard"][0]] == ["tf:5m", "tf:15m", "tf:1h",
                                                                                       "tf:4h"]
    # independent 1h indicators: pandas resample of the last 3,600 5m candles, complete hours only, TA-Lib
    c = world["market"].candles.iloc[-3600:].set_index("timestamp")
    agg = c.resample("1h").agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "count"})
    h1 = agg[agg.volume == 12]
    hi, lo, cl = (h1[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    rsi, atr, ema20 = talib.RSI(cl, 14)[-1], talib.ATR(hi, lo, cl, 14)[-1], talib.EMA(cl, 20)[-1]
    line_1h = [li for li in text.split("\n") if li.startswith("1h:")][0]
    assert f"{cl[-1]:.3f}" in line_1h and f"RSI {rsi:.1f}" in line_1h

    h.fake.press(CHAT, msg["message_id"], "tf:1h")
    edit = h.fake.wait_edits(1)[-1]
    assert edit["message_id"] == msg["message_id"]
    assert edit["text"].startswith(f"SOL/USDT:USDT 1h: candle {h1.index[-1]:%Y-%m-%d %H:%M} UTC")
    assert f"Close: {cl[-1]:.3f}" in edit["text"] and f"RSI14: {rsi:.2f}" in edit["text"]
    assert f"EMA20: {ema20:.3f}" in edit["text"] and f"ATR14: {atr:.3f} USDT ({atr / cl[-1] * 100:.2f}% of close)" \
        in edit["text"]
    ema50_shown = float(re.search(r"EMA50: ([\d.]+)", edit["text"]).group(1))
    assert ema50_shown == pytest.approx(talib.EMA(cl, 50)[-1], abs=2e-3)
    assert [b["callback_data"] for row in edit["reply_markup"]["inline_keyboard"] for b in row][-1] == "tf:all"
    h.fake.press(CHAT, msg["message_id"], "tf:all")
    assert h.fake.wait_edits(2)[-1]["text"] == text


def test_pause_resume_and_force_exit_confirm(world, harness):
    h = harness()
    ctl = h.ctx.control
    assert h.ask("/pause")[0].startswith("⏸ Paused: no new positions") and ctl.paused
    assert h.ask("/pause")[0] == "Already paused."
    assert h.ask("/resume")[0].startswith("▶️ Resumed") and not ctl.paused
    assert h.ask("/resume")[0] == "Not paused."

    (text,) = h.ask("/forceexit")
    assert text == "Close the open LONG 5.0 SOL @ 145.123 at market now?"
    msg = h.last()
    assert [b["callback_data"] for b in msg["reply_markup"]["inline_keyboard"][0]] == ["fx:yes", "fx:no"]
    h.fake.press(CHAT, msg["message_id"], "fx:no")
    assert h.fake.wait_edits(1)[-1]["text"] == "Cancelled: the position stays open."
    assert ctl.take_force_exit() is False

    h.ask("/forceexit")
    h.fake.press(CHAT, h.last()["message_id"], "fx:yes")
    assert h.fake.wait_edits(2)[-1]["text"].startswith("✋ Force exit requested")
    assert ctl.take_force_exit() is True
    by = [e.data["by"] for e in ctl.events.recent(50)]
    assert by == [f"telegram:{CHAT}"] * 3  # paused, resumed, force_exit

    ctl.update_status(position=None)
    assert h.ask("/forceexit")[0] == "No open position to close."
    assert h.ask("/positions")[0] == "No open position."


def test_unauthorised_chat_is_refused(world, harness):
    h = harness()
    assert h.ask("/status", chat=STRANGER) == ["⛔ Not authorised: this chat may not command this bot."]
    h.fake.send_text(STRANGER, "/pause")
    h.fake.wait_sent(STRANGER, 2)
    # a button press from a stranger (on a message shown to them) is refused too
    h.fake.press(STRANGER, h.last(STRANGER)["message_id"], "fx:yes")
    h.fake.wait_calls("answerCallbackQuery", 1)
    assert h.ask("/status", chat=OTHER)[0].startswith("Status")  # the second allowed chat works
    sent = h.fake.sent_to(STRANGER)
    assert [m["text"] for m in sent] == ["⛔ Not authorised: this chat may not command this bot."] * 2
    assert h.fake.calls("answerCallbackQuery")[0].params["text"].startswith("⛔ Not authorised")
    assert not h.fake.edits and not h.ctx.control.paused and h.ctx.control.take_force_exit() is False


def test_cooldown_replies_slow_down_once(world, harness):
    h = harness(cooldown=2.0)
    for cmd in ("/status", "/balance", "/profit", "/positions"):
        h.fake.send_text(CHAT, cmd)
    h.fake.wait_sent(CHAT, 2)
    assert h.fake.wait_for(lambda f: f.updates_pending() == 0, 5)  # all four fetched (and acknowledged)
    time.sleep(0.5)
    texts = [m["text"] for m in h.fake.sent_to(CHAT)]
    assert len(texts) == 2 and texts[0].startswith("Status") and texts[1] == "Slow down: one command every 2.0 s."
    time.sleep(2.0)
    assert h.ask("/balance")[0].startswith("Balance")


def test_long_reply_is_split(world, harness):
    h = harness()
    trades = world["trades"]
    h.fake.send_text(CHAT, f"/trades {len(trades)}")
    assert h.fake.wait_for(lambda f: len(f.sent_to(CHAT)) >= 2 and
                           f.sent_to(CHAT)[-1]["text"].split("\n")[-1].startswith(f"#{trades.trade_id.iloc[-1]} "))
    parts = [m["text"] for m in h.fake.sent_to(CHAT)]
    assert len(parts) >= 3 and all(len(p) <= 4096 for p in parts)
    # split at line breaks, greedily: the next part's first line would not have fitted
    assert all(len(a) + 1 + len(b.split("\n")[0]) > 4096 for a, b in zip(parts, parts[1:]))
    lines = "\n".join(parts).split("\n")
    assert lines[0] == f"Last {len(trades)} trades (run #{world['rid']})"
    assert [int(li.split()[0][1:]) for li in lines[1:]] == list(trades.trade_id)


def test_indonesian_replies(world, harness):
    h = harness(lang="id")
    m, trades = world["run"]["metrics"], world["trades"]
    eq = m["final_equity"]
    assert h.ask("/status", chat=STRANGER)[0] == ("⛔ Tidak diizinkan: chat ini tidak boleh memberi perintah "
                                                   "ke bot ini.")
    (text,) = h.ask("/menu")
    assert text.endswith("Pilih perintah:") and "mode paper, strategi ema-cross" in text
    labels = [b["text"] for row in h.last()["reply_markup"]["inline_keyboard"] for b in row]
    assert "Saldo" in labels and "✋ Tutup paksa" in labels
    (text,) = h.ask("/status")
    assert "Keadaan: berjalan" in text and f"Ekuitas: {usd(eq, lang='id')}" in text
    assert f"Posisi: LONG 5,0 SOL @ {p3(145.123, 'id')}" in text and "Siklus: 20.000" in text
    (text,) = h.ask("/balance")
    assert f"Modal awal: {usd(1000, lang='id')}" in text and f"Laba/rugi: {usd(eq - 1000, True, 'id')}" in text
    (text,) = h.ask("/profit")
    n, wins = len(trades), int((trades.pnl > 0).sum())
    assert f"Transaksi selesai: {n} ({wins} untung)" in text
    assert f"Win rate: {wins / n * 100:.2f}%".replace(".", ",") in text
    assert f"Laba/rugi bersih: {usd(trades.pnl.sum(), True, 'id')}" in text
    (text,) = h.ask("/daily 3")
    assert text.startswith("Laba/rugi harian (UTC, 3 hari terakhir") and "transaksi" in text
    assert h.ask("/pause")[0].startswith("⏸ Dijeda: tidak membuka posisi baru")
    assert h.ask("/signal")[0] == "Cara pakai: /signal SIMBOL, contoh /signal SOL/USDT:USDT"
    assert h.ask("/signal ETH")[0] == "Simbol 'ETH' tidak dikenal: bot ini memperdagangkan SOL/USDT:USDT."
    (text,) = h.ask("/signal SOL/USDT")
    assert text.startswith("Sinyal SOL/USDT:USDT: candle") and "Keputusan: " in text and "keyakinan " in text
    h.ctx.bundle = None
    assert h.ask("/signal SOL")[0] == "Belum ada model terlatih yang dimuat (jalankan perpbot train)."
    (text,) = h.ask("/timeframes SOLUSDT")
    assert text.startswith("Timeframe SOL/USDT:USDT") and ("naik" in text or "turun" in text)
    (text,) = h.ask("/forceexit")
    assert text == f"Tutup posisi LONG 5,0 SOL @ {p3(145.123, 'id')} sekarang dengan harga pasar?"
    assert [b["text"] for b in h.last()["reply_markup"]["inline_keyboard"][0]] == ["✅ Ya, tutup", "Batal"]
    assert h.ask("/help")[0].startswith("Daftar perintah:")
    assert h.ask("/xyz")[0] == "Perintah /xyz tidak dikenal. Lihat /help."
    (text,) = h.ask("/performance")
    assert f"Rasio Sharpe: {m['sharpe']:.2f}".replace(".", ",") in text
