"""The signal bot end to end: unpatched python-telegram-bot against the local Bot API server
(tests/fake_telegram.py), a real ccxt bitget client against the Bitget simulator replaying real
1m candles of SOL, BTC and ETH, and the CoinGlass / Fear & Greed / feed fakes.

Numbers in the replies are checked against indicators recomputed here with plain numpy
(SMA-seeded EMA, Wilder RSI and ATR written out) from the raw 1m files resampled with pandas.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
import pytest

from _intel_world import COINS, fakes, sim_exchange, three_symbol_sim, world_data, world_settings
from _threads import _no_thread_left_behind  # noqa: F401 (autouse fixture)
from fake_telegram import FakeTelegram
from perpbot.cli.intel_commands import start_signal_bot
from perpbot.notify.safe_cut import utf16_len

TOKEN = "654321:SIGNAL-token-abcdef"
CHAT, STRANGER = 111, 999
CORE = "/api/v2/mix/market/candles"


# ------------------------------------------------------------------ independent reference maths
def ema(x: np.ndarray, n: int) -> float:
    """EMA seeded with the SMA of the first n values (TA-Lib's definition), last value."""
    k = 2.0 / (n + 1)
    e = x[:n].mean()
    for v in x[n:]:
        e = v * k + e * (1 - k)
    return e


def wilder(x: np.ndarray, n: int) -> float:
    s = x[:n].mean()
    for v in x[n:]:
        s = (s * (n - 1) + v) / n
    return s


def rsi(c: np.ndarray, n: int = 14) -> float:
    d = np.diff(c)
    up, down = wilder(np.clip(d, 0, None), n), wilder(np.clip(-d, 0, None), n)
    return 100.0 - 100.0 / (1.0 + up / down)


def atr(h, lo, c, n: int = 14) -> float:
    tr = np.maximum(h[1:] - lo[1:], np.maximum(abs(h[1:] - c[:-1]), abs(lo[1:] - c[:-1])))
    return wilder(tr, n)


def closed_bars(coin: str, rule: str, now_ms: int, n: int = 200) -> pd.DataFrame:
    """The last ``n`` complete ``rule`` bars of the replayed 1m candles closed by ``now_ms``."""
    c = world_data()[f"{coin}USDT"][0]
    c = c[c["timestamp"] + pd.Timedelta(minutes=1) <= pd.Timestamp(now_ms, unit="ms", tz="UTC")]
    g = c.set_index("timestamp").resample(rule, label="left", closed="left")
    bars = pd.DataFrame({"high": g["high"].max(), "low": g["low"].min(), "close": g["close"].last(),
                         "n": g["close"].count()})
    step = pd.Timedelta(rule)
    bars = bars[(bars["n"] == step // pd.Timedelta(minutes=1))]
    return bars.iloc[-n:]


def price_text(x: float, lang: str) -> str:
    d = int(min(10, max(2, 5 - math.floor(math.log10(abs(x))))))
    s = f"{x:,.{d}f}"
    return s.replace(",", "_").replace(".", ",").replace("_", ".") if lang == "id" else s


def plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text))


# ------------------------------------------------------------------ harness
class Harness:
    def __init__(self, sim, cg, fg, feeds, tmp_path, **over):
        self.fake = FakeTelegram().start()
        self.settings = world_settings(tmp_path, cg, fg, feeds, telegram_token=TOKEN, telegram_chat_ids=[CHAT],
                                       telegram_base_url=self.fake.base_url, **over)
        self.runner = start_signal_bot(self.settings, exchange=sim_exchange(sim), now_ms=lambda: sim.market.now_ms,
                                       poll_timeout=2)

    def ask(self, text: str, chat: int = CHAT) -> dict:
        before = len(self.fake.sent_to(chat))
        self.fake.send_text(chat, text)
        return self.fake.wait_sent(chat, before + 1, timeout=30)[before]

    def close(self):
        self.runner.stop()
        self.fake.stop()


@pytest.fixture
def world(tmp_path):
    made = []
    with three_symbol_sim() as sim, fakes() as (cg, fg, feeds):
        def make(**over):
            h = Harness(sim, cg, fg, feeds, tmp_path / f"h{len(made)}", **over)
            made.append(h)
            return h
        yield sim, cg, fg, feeds, make
        for h in made:
            h.close()


@pytest.mark.parametrize("lang", ["en", "id"])
def test_signal_timeframes_scalp_for_btc_eth_sol(world, lang):
    sim, cg, fg, feeds, make = world
    h = make(language=lang, signal_max_message_chars=3000)
    now = sim.market.now_ms
    words = {"en": ("Bias", "Timeframes", "Sentiment score", "Why", "Funding", "Fear & Greed", "Intraday bias"),
             "id": ("Bias", "Timeframe", "Skor sentimen", "Alasan", "Funding", "Fear & Greed", "Bias intraday")}[lang]
    for coin in COINS:
        one_h = closed_bars(coin, "1h", now)
        h1, l1, c1 = (one_h[k].to_numpy() for k in ("high", "low", "close"))
        msg = h.ask(f"/signal {coin.lower()}")
        text = plain(msg["text"])
        assert utf16_len(msg["text"]) <= 3000
        assert f"{coin}/USDT:USDT" in text and all(w in text for w in words[:6])
        line_1h = next(ln for ln in text.splitlines() if ln.startswith("1h:"))
        rsi_text = f"RSI {rsi(c1):.1f}".replace(".", "," if lang == "id" else ".")
        assert rsi_text in line_1h and price_text(c1[-1], lang) in line_1h, line_1h
        assert price_text(atr(h1, l1, c1), lang) in line_1h
        assert "Fear & Greed: 40 (Fear)" in text
        if coin == "ETH":       # the CoinGlass funding list has no ETH: named, the venue's rate still shown
            assert "funding (no_data)" in text
        else:
            assert "funding (" not in text
        # /timeframes and a press of its 1h button: the message is edited into the 1h detail
        tf = h.ask(f"/timeframes {coin}USDT")
        buttons = [b["callback_data"] for b in tf["reply_markup"]["inline_keyboard"][0]]
        assert buttons == [f"stf:{t}:{coin}" for t in ("5m", "15m", "1h", "4h")]
        n_edits = len(h.fake.edits)
        h.fake.press(CHAT, tf["message_id"], f"stf:1h:{coin}")
        detail = plain(h.fake.wait_edits(n_edits + 1, timeout=30)[-1]["text"])
        assert f"EMA20: {price_text(ema(c1, 20), lang)}" in detail and f"EMA50: {price_text(ema(c1, 50), lang)}" in detail
        # /scalp: ATR(1m)-based levels and the volume profile
        sc = h.ask(f"/scalp {coin}/USDT:USDT")
        st = plain(sc["text"])
        assert words[6] in st and "POC" in st and "HVN" in st and "SL " in st and "TP " in st
        assert utf16_len(sc["text"]) <= 3000
    sent = h.fake.calls("sendMessage", CHAT)
    assert sent and all(r.params.get("parse_mode") == "HTML" for r in sent)


def test_toggles_and_the_message_cap(world):
    sim, cg, fg, feeds, make = world
    h = make(signal_scalp_volume_profile=False, signal_explain_volume_profile=False, signal_max_message_chars=400)
    sig = h.ask("/signal SOL")
    assert utf16_len(sig["text"]) <= 400 and re.search(r"…(</[a-z]+>)*$", sig["text"]), sig["text"]
    scalp = h.ask("/scalp BTC")
    assert utf16_len(scalp["text"]) <= 400
    assert "POC" not in scalp["text"] and "HVN" not in scalp["text"] and "LVN" not in scalp["text"]
    full = make(signal_scalp_volume_profile=False, signal_explain_volume_profile=False, signal_max_message_chars=4096)
    text = plain(full.ask("/signal ETH")["text"])
    assert "POC" not in text and "ATR(1m)" not in text and "Why" in text
    assert "POC" not in plain(full.ask("/scalp ETH")["text"])
    on = make(signal_max_message_chars=4096)
    assert "POC" in plain(on.ask("/signal ETH")["text"])


def test_per_symbol_cooldown_reuses_the_answer(world):
    sim, cg, fg, feeds, make = world
    h = make(signal_cooldown=600)
    first = h.ask("/signal SOL")
    n_candles = sum(1 for q in sim.requests if "/market/candles" in q["path"] or "history-candles" in q["path"])
    again = h.ask("/signal sol")
    n_after = sum(1 for q in sim.requests if "/market/candles" in q["path"] or "history-candles" in q["path"])
    assert n_after == n_candles and "Same answer as" in plain(again["text"])
    assert plain(first["text"]).splitlines()[1] == plain(again["text"]).splitlines()[1]
    other = h.ask("/signal BTC")          # another symbol is not held back
    assert "Same answer" not in plain(other["text"])
    assert sum(1 for q in sim.requests if "candles" in q["path"]) > n_after


def test_unauthorised_chat_refused_and_unknown_symbol_named(world):
    sim, cg, fg, feeds, make = world
    h = make()
    refusal = h.ask("/signal SOL", chat=STRANGER)
    assert "Not authorised" in refusal["text"]
    assert not any("candles" in q["path"] for q in sim.requests)
    assert h.ask("/signal DOGE")["text"] == "DOGE is not a USDT-M perpetual on bitget."
    assert "Usage: /scalp SYMBOL" in h.ask("/scalp")["text"]


def test_a_source_down_gives_a_partial_answer_naming_it(world, tmp_path):
    sim, cg, fg, feeds, make = world
    h = make(intel_coinglass_base_url="http://127.0.0.1:9", language="id")
    text = plain(h.ask("/signal BTC")["text"])
    for part in ("funding (down)", "open_interest (down)", "long_short (down)", "liquidations (down)"):
        assert part in text
    assert "Fear & Greed: 40" in text and "1h:" in text and "Bias" in text
    keyless = make(coinglass_api_key=None)
    text = plain(keyless.ask("/scalp SOL")["text"])
    assert "funding (keyless)" in text and "ATR(1m)" in text


def test_the_models_call_for_a_symbol_with_a_trained_model(world, tmp_path):
    from threadpoolctl import threadpool_limits

    from perpbot.bot.context import BotContext
    from perpbot.features.build import compute_features, feature_names, features_hash
    from perpbot.ml.labels import triple_barrier_labels
    from perpbot.ml.models import make_model
    from perpbot.ml.registry import ModelBundle, save_bundle

    sim, cg, fg, feeds, make = world
    now = pd.Timestamp(sim.market.now_ms, unit="ms", tz="UTC")
    one = world_data()["SOLUSDT"][0]
    one = one[one["timestamp"] + pd.Timedelta(minutes=1) <= now].set_index("timestamp")
    g = one.resample("5min", label="left", closed="left")
    c = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(),
                      "close": g["close"].last(), "volume": g["volume"].sum(), "n": g["close"].count()})
    c = c[c.pop("n") == 5].reset_index()           # complete 5m bars only, as the venue serves them
    c.attrs["timeframe"] = "5m"
    names = feature_names(with_funding=False)
    X = compute_features(c, None)[names]
    y = triple_barrier_labels(c.high.to_numpy(), c.low.to_numpy(), c.close.to_numpy(), 0.01, 0.005, 24)
    ok = np.isfinite(X.to_numpy()).all(axis=1) & np.isfinite(y)
    with threadpool_limits(1):
        model = make_model("logreg", n_jobs=1).fit(X.to_numpy()[ok], y[ok])
    t0 = c.timestamp.iloc[0]
    bundle = ModelBundle(model_name="logreg", params={}, feature_names=names, features_hash=features_hash(names),
                         folds=[], final_model=model, train_start_time=t0, train_end_time=c.timestamp.iloc[-1],
                         final_from_time=t0, label_settings={"take_profit": 0.01, "stop_loss": 0.005, "horizon": 24,
                                                             "barrier_mode": "fixed"})
    path = save_bundle(bundle, tmp_path / "sol-logreg.joblib")
    h = make(signal_models={"SOL": str(path)}, live_window=300, signal_max_message_chars=4096)
    text = plain(h.ask("/signal SOL")["text"])
    window = c.iloc[-300:].reset_index(drop=True)
    window.attrs["timeframe"] = "5m"
    s = h.settings.model_copy(update={"symbol": "SOL/USDT:USDT"})
    want = BotContext(s, candles_source=lambda _s: window, bundle=bundle).current_signal("SOL/USDT:USDT", window=300)
    decision = {"buy": "BUY (long)", "sell": "SELL (short)", "hold": "HOLD (no trade)"}[want["decision"]]
    assert f"Model ({bundle.version}): {decision} · confidence {want['confidence'] * 100:.1f}%" in text, text
    assert "Model (" not in plain(h.ask("/signal BTC")["text"])       # no model for BTC: no line, nothing missing
