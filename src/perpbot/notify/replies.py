"""Reply texts of the Telegram command bot (English / Indonesian), built from BotContext answers.

Pure functions: data in (dicts / DataFrames from :class:`perpbot.bot.context.BotContext`),
plain text out. Numbers follow :mod:`perpbot.notify.fmt` (USDT 2 decimals, prices per tick,
fractions as percents, UTC times).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from perpbot.notify import fmt
from perpbot.notify.messages import REASON_SHORT, side_name

#: (command, English label, Indonesian label, description en, description id) in menu order.
COMMANDS = (
    ("status", "Status", "Status", "bot state, position, equity", "keadaan bot, posisi, ekuitas"),
    ("balance", "Balance", "Saldo", "equity and PnL", "ekuitas dan laba/rugi"),
    ("positions", "Positions", "Posisi", "open positions", "posisi terbuka"),
    ("trades", "Trades", "Transaksi", "last N trades (default 10)", "N transaksi terakhir (bawaan 10)"),
    ("profit", "Profit", "Profit", "closed-trade profit", "profit transaksi selesai"),
    ("daily", "Daily", "Harian", "PnL per UTC day (default 7 days)",
     "laba/rugi per hari UTC (bawaan 7 hari)"),
    ("performance", "Performance", "Performa", "run metrics (Sharpe, drawdown...)",
     "metrik run (Sharpe, drawdown...)"),
    ("signal", "Signal", "Sinyal", "the model's current call", "keputusan model saat ini"),
    ("timeframes", "Timeframes", "Timeframe", "EMA/RSI/ATR on 5m, 15m, 1h, 4h",
     "EMA/RSI/ATR di 5m, 15m, 1h, 4h"),
    ("pause", "⏸ Pause", "⏸ Jeda", "stop opening positions", "berhenti membuka posisi"),
    ("resume", "▶️ Resume", "▶️ Lanjutkan", "allow new positions again", "izinkan posisi baru lagi"),
    ("forceexit", "✋ Force exit", "✋ Tutup paksa", "close the position (asks to confirm)",
     "tutup posisi (minta konfirmasi)"),
    ("help", "Help", "Bantuan", "this list", "daftar ini"),
)

T = {
    "en": {
        "menu": "perpbot: {symbol} {timeframe}, {mode} mode, strategy {strategy}.\nChoose a command:",
        "help_title": "Commands:", "unauthorised": "⛔ Not authorised: this chat may not command this bot.",
        "slow_down": "Slow down: one command every {sec} s.", "unknown_cmd": "Unknown command {cmd}. See /help.",
        "usage_symbol": "Usage: /{cmd} SYMBOL, e.g. /{cmd} {example}",
        "unknown_symbol": "Unknown symbol {sym!r}: this bot trades {symbol}.",
        "bad_int": "Bad argument {arg!r}: give a whole number from 1 to {hi}, e.g. /{cmd} {example}.",
        "no_run": "No runs in the ledger yet.", "no_model": "No trained model is loaded (run perpbot train).",
        "error": "Sorry, that failed: {msg}",
        "status_title": "Status: {symbol} {timeframe}", "mode": "Mode", "strategy": "Strategy",
        "state": "State", "running": "running", "paused": "paused", "stopped": "stopped",
        "position": "Position", "none": "none", "equity": "Equity", "last_signal": "Last signal",
        "last_candle": "Last candle", "cycles": "Cycles", "errors": "Errors", "run": "Run",
        "balance_title": "Balance", "capital": "Starting capital", "pnl": "PnL",
        "positions_title": "Open positions", "no_position": "No open position.",
        "trades_title": "Last {n} trades (run #{rid})", "no_trades": "No trades yet.",
        "profit_title": "Profit (run #{rid})", "closed": "Closed trades", "won": "won", "win_rate": "Win rate",
        "net_pnl": "Net PnL", "of_capital": "of starting capital", "fees": "Fees", "funding": "Funding",
        "daily_title": "Daily PnL (UTC, last {n} days, run #{rid})", "trades_n": "trades",
        "perf_title": "Performance (run #{rid}, {strategy} {kind})", "total_return": "Total return",
        "cagr": "CAGR", "sharpe": "Sharpe ratio", "sortino": "Sortino ratio", "max_dd": "Max drawdown",
        "profit_factor": "Profit factor", "trade_count": "Trades", "avg_trade": "Average trade",
        "exposure": "Exposure", "final_equity": "Final equity",
        "signal_title": "Signal {symbol}: candle {time}", "call": "Call", "confidence": "confidence",
        "threshold": "threshold", "model": "Model", "features": "Features",
        "decision": {"buy": "BUY (long)", "sell": "SELL (short)", "hold": "HOLD (no trade)"},
        "tf_title": "Timeframes {symbol} (last closed candles)", "trend": {"up": "up", "down": "down"},
        "tf_detail": "{symbol} {tf}: candle {time}", "close": "Close", "atr_of_close": "of close",
        "tf_pick": "Tap a timeframe for details.", "tf_all": "« All", "no_tf": "Not enough candles for {tf}.",
        "paused_ok": "⏸ Paused: no new positions; stop-loss and take-profit stay active. /resume to continue.",
        "already_paused": "Already paused.", "resumed_ok": "▶️ Resumed: the bot may open positions again.",
        "not_paused": "Not paused.", "fx_confirm": "Close the open {pos} at market now?",
        "fx_yes": "✅ Yes, close it", "fx_no": "Cancel",
        "fx_done": "✋ Force exit requested: the position closes at the next candle.",
        "fx_cancel": "Cancelled: the position stays open.", "fx_none": "No open position to close.",
    },
    "id": {
        "menu": "perpbot: {symbol} {timeframe}, mode {mode}, strategi {strategy}.\nPilih perintah:",
        "help_title": "Daftar perintah:",
        "unauthorised": "⛔ Tidak diizinkan: chat ini tidak boleh memberi perintah ke bot ini.",
        "slow_down": "Pelan-pelan: satu perintah setiap {sec} detik.",
        "unknown_cmd": "Perintah {cmd} tidak dikenal. Lihat /help.",
        "usage_symbol": "Cara pakai: /{cmd} SIMBOL, contoh /{cmd} {example}",
        "unknown_symbol": "Simbol {sym!r} tidak dikenal: bot ini memperdagangkan {symbol}.",
        "bad_int": "Argumen {arg!r} tidak valid: isi bilangan bulat 1 sampai {hi}, contoh /{cmd} {example}.",
        "no_run": "Belum ada run di ledger.",
        "no_model": "Belum ada model terlatih yang dimuat (jalankan perpbot train).",
        "error": "Maaf, perintah gagal: {msg}",
        "status_title": "Status: {symbol} {timeframe}", "mode": "Mode", "strategy": "Strategi",
        "state": "Keadaan", "running": "berjalan", "paused": "dijeda", "stopped": "berhenti",
        "position": "Posisi", "none": "tidak ada", "equity": "Ekuitas", "last_signal": "Sinyal terakhir",
        "last_candle": "Candle terakhir", "cycles": "Siklus", "errors": "Error", "run": "Run",
        "balance_title": "Saldo", "capital": "Modal awal", "pnl": "Laba/rugi",
        "positions_title": "Posisi terbuka", "no_position": "Tidak ada posisi terbuka.",
        "trades_title": "{n} transaksi terakhir (run #{rid})", "no_trades": "Belum ada transaksi.",
        "profit_title": "Profit (run #{rid})", "closed": "Transaksi selesai", "won": "untung",
        "win_rate": "Win rate", "net_pnl": "Laba/rugi bersih", "of_capital": "dari modal awal", "fees": "Biaya",
        "funding": "Funding", "daily_title": "Laba/rugi harian (UTC, {n} hari terakhir, run #{rid})",
        "trades_n": "transaksi", "perf_title": "Performa (run #{rid}, {strategy} {kind})",
        "total_return": "Total imbal hasil", "cagr": "CAGR", "sharpe": "Rasio Sharpe", "sortino": "Rasio Sortino",
        "max_dd": "Drawdown maksimum", "profit_factor": "Profit factor", "trade_count": "Transaksi",
        "avg_trade": "Rata-rata per transaksi", "exposure": "Eksposur", "final_equity": "Ekuitas akhir",
        "signal_title": "Sinyal {symbol}: candle {time}", "call": "Keputusan", "confidence": "keyakinan",
        "threshold": "ambang", "model": "Model", "features": "Fitur",
        "decision": {"buy": "BELI (long)", "sell": "JUAL (short)", "hold": "TAHAN (tanpa transaksi)"},
        "tf_title": "Timeframe {symbol} (candle tertutup terakhir)", "trend": {"up": "naik", "down": "turun"},
        "tf_detail": "{symbol} {tf}: candle {time}", "close": "Harga penutupan", "atr_of_close": "dari harga",
        "tf_pick": "Ketuk timeframe untuk detail.", "tf_all": "« Semua",
        "no_tf": "Candle belum cukup untuk {tf}.",
        "paused_ok": "⏸ Dijeda: tidak membuka posisi baru; stop-loss dan take-profit tetap aktif. "
                     "/resume untuk melanjutkan.",
        "already_paused": "Sudah dijeda.", "resumed_ok": "▶️ Dilanjutkan: bot boleh membuka posisi lagi.",
        "not_paused": "Bot tidak sedang dijeda.", "fx_confirm": "Tutup posisi {pos} sekarang dengan harga pasar?",
        "fx_yes": "✅ Ya, tutup", "fx_no": "Batal",
        "fx_done": "✋ Permintaan tutup paksa diterima: posisi ditutup pada candle berikutnya.",
        "fx_cancel": "Dibatalkan: posisi tetap terbuka.", "fx_none": "Tidak ada posisi terbuka untuk ditutup.",
    },
}


def tr(lang: str, key: str, **kw: Any) -> str:
    """The text ``key`` in ``lang`` (English fallback) with ``kw`` filled in."""
    text = T.get(lang, T["en"]).get(key, T["en"][key])
    return text.format(**kw) if kw else text


def menu_labels(lang: str) -> list[tuple[str, str]]:
    return [(c[0], c[2] if lang == "id" else c[1]) for c in COMMANDS]


_USAGE = {"en": {"trades": " [N]", "daily": " [days]", "signal": " SYMBOL", "timeframes": " SYMBOL"},
          "id": {"trades": " [N]", "daily": " [hari]", "signal": " SIMBOL", "timeframes": " SIMBOL"}}


def help_text(lang: str) -> str:
    lines = [tr(lang, "help_title"), "/start, /menu: " + ("menu utama" if lang == "id" else "main menu")]
    lines += [f"/{c[0]}{_USAGE[lang].get(c[0], '')}: {c[4] if lang == 'id' else c[3]}" for c in COMMANDS]
    return "\n".join(lines)


def _pos_line(p: dict, s: Any, lang: str) -> str:
    side = side_name(p.get("side"), lang) if p.get("side") else fmt.DASH
    return (f"{side} {fmt.qty(p.get('qty'), s.lot_size, lang)} {fmt.base_asset(s.symbol)} @ "
            f"{fmt.price(p.get('entry_price'), s.tick_size, lang)}")


def status_text(st: dict, s: Any, lang: str) -> str:
    t = T[lang]
    state = t["paused"] if st.get("paused") else (t["running"] if st.get("running") else t["stopped"])
    pos = st.get("position")
    sig = st.get("last_signal") or {}
    sig_text = fmt.DASH
    if sig.get("signal") is not None:
        sig_text = t["decision"][{1: "buy", -1: "sell", 0: "hold"}[int(sig["signal"])]]
        if sig.get("p_up") is not None:
            sig_text += f" (P↑ {fmt.pct(sig['p_up'], lang, 1)}, P↓ {fmt.pct(sig['p_down'], lang, 1)})"
    lines = [t["status_title"].format(symbol=st.get("symbol", s.symbol), timeframe=st.get("timeframe", s.timeframe)),
             f"{t['mode']}: {st.get('mode')} · {t['strategy']}: {st.get('strategy')}",
             f"{t['state']}: {state}",
             f"{t['position']}: {_pos_line(pos, s, lang) if pos and pos.get('side') else t['none']}",
             f"{t['equity']}: {fmt.usdt(st.get('equity'), lang)}",
             f"{t['last_signal']}: {sig_text}",
             f"{t['last_candle']}: {fmt.when(st.get('last_candle_time'))}",
             f"{t['cycles']}: {fmt.number(st.get('cycles') or 0, 0, lang)} · {t['errors']}: {st.get('errors') or 0}",
             f"{t['run']}: #{st.get('run_id') if st.get('run_id') is not None else fmt.DASH}"]
    return "\n".join(lines)


def balance_text(b: dict, lang: str) -> str:
    t = T[lang]
    cap, pnl = b.get("starting_capital"), b.get("pnl")
    ret = fmt.pct(pnl / cap, lang, sign=True) if pnl is not None and cap else fmt.DASH
    return "\n".join([t["balance_title"] + (f" (run #{b['run_id']})" if b.get("run_id") is not None else ""),
                      f"{t['equity']}: {fmt.usdt(b.get('equity'), lang)}",
                      f"{t['capital']}: {fmt.usdt(cap, lang)}",
                      f"{t['pnl']}: {fmt.usdt(pnl, lang, sign=True)} ({ret})"])


def positions_text(positions: list[dict], s: Any, lang: str) -> str:
    t = T[lang]
    if not positions:
        return t["no_position"]
    lines = [t["positions_title"]]
    for p in positions:
        lines.append(f"{p.get('symbol', s.symbol)} {_pos_line(p, s, lang)}")
        lines.append(f"  SL {fmt.price(p.get('stop_loss'), s.tick_size, lang)} · TP "
                     f"{fmt.price(p.get('take_profit'), s.tick_size, lang)} · Liq "
                     f"{fmt.price(p.get('liquidation_price'), s.tick_size, lang)} · Margin "
                     f"{fmt.usdt(p.get('margin'), lang)}")
    return "\n".join(lines)


def trade_line(r: Any, s: Any, lang: str) -> str:
    """``#172 LONG 5.0 155.051 → 154.109 signal -5.64 USDT (2025-05-31 06:00 UTC)``."""
    return (f"#{int(r.trade_id)} {side_name(int(r.side), lang)} {fmt.qty(r.qty, s.lot_size, lang)} "
            f"{fmt.price(r.entry_price, s.tick_size, lang)} → {fmt.price(r.exit_price, s.tick_size, lang)} "
            f"{REASON_SHORT[lang].get(r.exit_reason, r.exit_reason)} {fmt.usdt(r.pnl, lang, sign=True)} "
            f"({fmt.when(r.exit_time)})")


def trades_text(trades: pd.DataFrame, rid: int, s: Any, lang: str) -> str:
    if trades is None or not len(trades):
        return tr(lang, "no_trades")
    lines = [tr(lang, "trades_title", n=len(trades), rid=rid)]
    lines += [trade_line(r, s, lang) for r in trades.itertuples()]
    return "\n".join(lines)


def profit_text(p: dict, rid: int, capital: float, lang: str) -> str:
    t = T[lang]
    return "\n".join([t["profit_title"].format(rid=rid),
                      f"{t['closed']}: {p['trades']} ({p['wins']} {t['won']})",
                      f"{t['win_rate']}: {fmt.pct(p['win_rate'], lang)}",
                      f"{t['net_pnl']}: {fmt.usdt(p['pnl'], lang, sign=True)} "
                      f"({fmt.pct(p['pnl'] / capital, lang, sign=True)} {t['of_capital']})",
                      f"{t['fees']}: {fmt.usdt(p['fees'], lang)} · {t['funding']}: {fmt.usdt(p['funding'], lang)}"])


def daily_text(days: pd.DataFrame, rid: int, lang: str) -> str:
    """``days``: index = UTC day (Timestamp), columns pnl (USDT) and trades (count)."""
    lines = [tr(lang, "daily_title", n=len(days), rid=rid)]
    for day, row in days.iterrows():
        lines.append(f"{day:%Y-%m-%d}  {fmt.usdt(row['pnl'], lang, sign=True)}  "
                     f"{int(row['trades'])} {tr(lang, 'trades_n')}")
    return "\n".join(lines)


def performance_text(m: dict, run: dict, lang: str) -> str:
    t = T[lang]
    g = m.get
    return "\n".join([
        t["perf_title"].format(rid=run.get("id"), strategy=run.get("strategy"), kind=run.get("kind")),
        f"{t['total_return']}: {fmt.pct(g('total_return'), lang, sign=True)} · {t['cagr']}: "
        f"{fmt.pct(g('cagr'), lang, sign=True)}",
        f"{t['sharpe']}: {fmt.number(g('sharpe'), 2, lang)} · {t['sortino']}: {fmt.number(g('sortino'), 2, lang)}",
        f"{t['max_dd']}: {fmt.pct(g('max_drawdown'), lang)}",
        f"{t['win_rate']}: {fmt.pct(g('win_rate'), lang)} · {t['profit_factor']}: "
        f"{fmt.number(g('profit_factor'), 2, lang)}",
        f"{t['trade_count']}: {fmt.number(g('trade_count'), 0, lang)} · {t['avg_trade']}: "
        f"{fmt.usdt(g('avg_trade'), lang, sign=True)}",
        f"{t['exposure']}: {fmt.pct(g('exposure'), lang)}",
        f"{t['fees']}: {fmt.usdt(g('fees_paid'), lang)} · {t['funding']}: {fmt.usdt(g('funding_paid'), lang)}",
        f"{t['final_equity']}: {fmt.usdt(g('final_equity'), lang)}"])


def signal_text(sig: dict, lang: str) -> str:
    t = T[lang]
    feats = " · ".join(f"{k} {fmt.number(v, 4, lang)}" for k, v in (sig.get("features") or {}).items())
    return "\n".join([
        t["signal_title"].format(symbol=sig["symbol"], time=fmt.when(sig["time"])),
        f"{t['call']}: {t['decision'][sig['decision']]} · {t['confidence']} {fmt.pct(sig['confidence'], lang, 1)} "
        f"({t['threshold']} {fmt.pct(sig['threshold'], lang, 1)})",
        f"P(down) {fmt.pct(sig['p_down'], lang, 1)} · P(flat) {fmt.pct(sig['p_flat'], lang, 1)} · "
        f"P(up) {fmt.pct(sig['p_up'], lang, 1)}",
        f"{t['model']}: {sig.get('model_version')}",
        f"{t['features']}: {feats or fmt.DASH}"])


def timeframes_text(ind: dict, symbol: str, s: Any, lang: str) -> str:
    t = T[lang]
    lines = [t["tf_title"].format(symbol=symbol)]
    for tf, d in ind.items():
        arrow = "▲" if d["trend"] == "up" else "▼"
        lines.append(f"{tf}: {arrow} {t['trend'][d['trend']]} · {fmt.price(d['close'], s.tick_size, lang)} · "
                     f"RSI {fmt.number(d['rsi14'], 1, lang)} · ATR {fmt.price(d['atr14'], s.tick_size, lang)}")
    lines.append(t["tf_pick"])
    return "\n".join(lines)


def timeframe_detail(tf: str, d: dict | None, symbol: str, s: Any, lang: str) -> str:
    t = T[lang]
    if not d:
        return t["no_tf"].format(tf=tf)
    atr_frac = d["atr14"] / d["close"] if d.get("atr14") and d.get("close") else None
    return "\n".join([
        t["tf_detail"].format(symbol=symbol, tf=tf, time=fmt.when(d["time"])),
        f"{t['close']}: {fmt.price(d['close'], s.tick_size, lang)}",
        f"EMA20: {fmt.price(d['ema20'], s.tick_size, lang)} · EMA50: {fmt.price(d['ema50'], s.tick_size, lang)} "
        f"({t['trend'][d['trend']]})",
        f"RSI14: {fmt.number(d['rsi14'], 2, lang)}",
        f"ATR14: {fmt.price(d['atr14'], s.tick_size, lang)} USDT ({fmt.pct(atr_frac, lang)} {t['atr_of_close']})"])
