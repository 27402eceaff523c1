"""Notification texts (English / Indonesian) for bot events: entries, exits, halts, errors, summaries.

:func:`render_event` turns one :class:`perpbot.bot.events.BotEvent` into a :class:`Note`
(subject + text) in the settings' language, or None for events that are not notified
(``cycle``: one per candle, too many). Numbers follow :mod:`perpbot.notify.fmt`: USDT with 2
decimals, prices per tick size, quantities per lot size, fractions as percents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perpbot.notify import fmt

#: Event kinds sent as notifications (``cycle`` is not: one per candle).
NOTIFY_KINDS = ("entry", "exit", "risk_halt", "order_failed", "error", "daily_summary", "paused", "resumed",
                "force_exit", "model")

_SIDE = {"en": {"long": "LONG", "short": "SHORT"}, "id": {"long": "LONG", "short": "SHORT"}}

#: Exit headline per exit reason (``{side}`` = LONG/SHORT).
EXIT_TITLES = {
    "en": {"take_profit": "✅ Take-profit hit: {side} closed",
           "stop_loss": "🛑 Stop-loss hit: {side} closed",
           "trailing_stop": "🛑 Trailing stop hit: {side} closed",
           "signal": "🔁 {side} closed on a signal",
           "liquidation": "💥 {side} LIQUIDATED",
           "manual": "✋ {side} closed manually (force exit)",
           "end_of_data": "⏹ {side} closed at the end of the data"},
    "id": {"take_profit": "✅ Take-profit tercapai: posisi {side} ditutup",
           "stop_loss": "🛑 Stop-loss tersentuh: posisi {side} ditutup",
           "trailing_stop": "🛑 Trailing stop tersentuh: posisi {side} ditutup",
           "signal": "🔁 Posisi {side} ditutup karena sinyal",
           "liquidation": "💥 Posisi {side} TERLIKUIDASI",
           "manual": "✋ Posisi {side} ditutup manual (tutup paksa)",
           "end_of_data": "⏹ Posisi {side} ditutup di akhir data"},
}

T = {
    "en": {
        "entry_title": "🟢 {side} opened: {symbol}", "qty": "Qty", "entry": "Entry", "exit": "Exit",
        "stop_loss": "Stop-loss", "take_profit": "Take-profit", "liquidation": "Liquidation", "trade": "Trade",
        "pnl": "PnL", "move": "Price move",
        "daily_loss_halt": "⚠️ Trading halted: daily loss limit reached ({value} today). "
                           "No new positions until 00:00 UTC.",
        "max_drawdown_halt": "⛔ Trading halted: maximum drawdown reached ({value} from the peak). "
                             "No new positions for the rest of this run.",
        "risk_other": "⚠️ Risk event {event}: {value}",
        "order_failed": "❗ Order failed: {message}", "error": "❗ Error: {message}",
        "paused": "⏸ Bot paused by {by}: no new positions; stop-loss and take-profit stay active.",
        "resumed": "▶️ Bot resumed by {by}: it may open positions again.",
        "force_exit": "✋ Force exit requested by {by}: the position closes at the next candle.",
        "summary_title": "📊 Daily summary {day} (UTC)", "trades": "Trades",
        "won_lost": "{wins} won, {losses} lost", "win_rate": "Win rate", "fees": "Fees",
        "max_dd": "Max drawdown", "equity": "Equity", "no_trades": "No trades closed this day.", "model_live": "Model live: precision {live} over {n} labelled calls (out-of-sample {oos})",
        "model_drift": "WARNING: live precision is significantly below the model's out-of-sample precision (p = {p})",
        "subject_summary": "Daily summary {day}", "subject_entry": "{side} opened",
        "subject_exit": "{side} closed ({reason})", "subject_halt": "Trading halted",
        "subject_order_failed": "Order failed", "subject_error": "Error", "subject_paused": "Paused",
        "subject_resumed": "Resumed", "subject_force_exit": "Force exit",
        "model": "🧠 {message}", "subject_model": "Model promoted",
    },
    "id": {
        "entry_title": "🟢 Posisi {side} dibuka: {symbol}", "qty": "Jumlah", "entry": "Harga masuk",
        "exit": "Harga keluar", "stop_loss": "Stop-loss", "take_profit": "Take-profit",
        "liquidation": "Harga likuidasi", "trade": "Transaksi", "pnl": "Laba/rugi", "move": "Pergerakan harga",
        "daily_loss_halt": "⚠️ Trading dihentikan: batas rugi harian tercapai ({value} hari ini). "
                           "Tidak ada posisi baru sampai pukul 00:00 UTC.",
        "max_drawdown_halt": "⛔ Trading dihentikan: drawdown maksimum tercapai ({value} dari puncak). "
                             "Tidak ada posisi baru selama sisa run ini.",
        "risk_other": "⚠️ Peristiwa risiko {event}: {value}",
        "order_failed": "❗ Order gagal: {message}", "error": "❗ Terjadi kesalahan: {message}",
        "paused": "⏸ Bot dijeda oleh {by}: tidak membuka posisi baru; stop-loss dan take-profit tetap aktif.",
        "resumed": "▶️ Bot dilanjutkan oleh {by}: bot boleh membuka posisi lagi.",
        "force_exit": "✋ Tutup paksa diminta oleh {by}: posisi ditutup pada candle berikutnya.",
        "summary_title": "📊 Ringkasan harian {day} (UTC)", "trades": "Transaksi",
        "won_lost": "{wins} untung, {losses} rugi", "win_rate": "Win rate", "fees": "Biaya",
        "max_dd": "Drawdown maksimum", "equity": "Ekuitas", "no_trades": "Tidak ada transaksi yang ditutup hari ini.", "model_live": "Model live: presisi {live} dari {n} sinyal berlabel (out-of-sample {oos})",
        "model_drift": "PERINGATAN: presisi live jauh di bawah presisi out-of-sample model (p = {p})",
        "subject_summary": "Ringkasan harian {day}", "subject_entry": "Posisi {side} dibuka",
        "subject_exit": "Posisi {side} ditutup ({reason})", "subject_halt": "Trading dihentikan",
        "subject_order_failed": "Order gagal", "subject_error": "Kesalahan", "subject_paused": "Dijeda",
        "subject_resumed": "Dilanjutkan", "subject_force_exit": "Tutup paksa",
        "model": "🧠 Model diganti: {message}", "subject_model": "Model diganti",
    },
}

REASON_SHORT = {
    "en": {"take_profit": "TP", "stop_loss": "SL", "trailing_stop": "trailing", "signal": "signal",
           "liquidation": "liquidation", "manual": "manual", "end_of_data": "end"},
    "id": {"take_profit": "TP", "stop_loss": "SL", "trailing_stop": "trailing", "signal": "sinyal",
           "liquidation": "likuidasi", "manual": "manual", "end_of_data": "akhir data"},
}


@dataclass(frozen=True)
class Note:
    """One notification: ``kind`` (event kind), ``subject`` (e-mail subject line) and ``text``."""

    kind: str
    subject: str
    text: str


def lang_of(settings: Any) -> str:
    lang = getattr(settings, "language", "en")
    return lang if lang in T else "en"


def side_name(side: Any, lang: str = "en") -> str:
    """"long"/"short" or +1/-1 -> LONG/SHORT."""
    if isinstance(side, (int, float)):
        side = "long" if side > 0 else "short"
    return _SIDE[lang].get(str(side).lower(), str(side).upper())


def _market(d: dict, settings: Any) -> tuple[str, float, float]:
    """(symbol, tick, lot) of an event: its own (a node over several symbols), else the settings'."""
    return (d.get("symbol") or settings.symbol, d.get("tick_size") or settings.tick_size,
            d.get("lot_size") or settings.lot_size)


def render_entry(d: dict, settings: Any, lang: str) -> Note:
    t = T[lang]
    symbol, tick, lot = _market(d, settings)
    side = side_name(d.get("side"), lang)
    p, sl, tp = d.get("price"), d.get("stop_loss"), d.get("take_profit")

    def dist(level):
        try:
            return fmt.pct((float(level) / float(p) - 1.0), lang, sign=True)
        except (TypeError, ValueError, ZeroDivisionError):
            return fmt.DASH

    lines = [t["entry_title"].format(side=side, symbol=symbol),
             f"{t['qty']}: {fmt.qty(d.get('qty'), lot, lang)} {fmt.base_asset(symbol)}",
             f"{t['entry']}: {fmt.price(p, tick, lang)} USDT",
             f"{t['stop_loss']}: {fmt.price(sl, tick, lang)} ({dist(sl)})",
             f"{t['take_profit']}: {fmt.price(tp, tick, lang)} ({dist(tp)})",
             f"{t['liquidation']}: {fmt.price(d.get('liquidation_price'), tick, lang)}"]
    return Note("entry", t["subject_entry"].format(side=side), "\n".join(lines))


def render_exit(d: dict, settings: Any, lang: str) -> Note:
    t = T[lang]
    symbol, tick, lot = _market(d, settings)
    side = side_name(d.get("side"), lang)
    reason = str(d.get("reason"))
    title = EXIT_TITLES[lang].get(reason, EXIT_TITLES[lang]["signal"]).format(side=side)
    sgn = 1.0 if str(d.get("side")).lower() in ("long", "1") else -1.0
    try:
        move = sgn * (float(d["exit_price"]) / float(d["entry_price"]) - 1.0)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        move = None
    lines = [title,
             f"{t['trade']} #{d.get('trade_id')} · {symbol}",
             f"{t['qty']}: {fmt.qty(d.get('qty'), lot, lang)} {fmt.base_asset(symbol)}",
             f"{t['entry']}: {fmt.price(d.get('entry_price'), tick, lang)} → "
             f"{t['exit']}: {fmt.price(d.get('exit_price'), tick, lang)}",
             f"{t['pnl']}: {fmt.usdt(d.get('pnl'), lang, sign=True)}",
             f"{t['move']}: {fmt.pct(move, lang, sign=True)}"]
    return Note("exit", t["subject_exit"].format(side=side, reason=REASON_SHORT[lang].get(reason, reason)),
                "\n".join(lines))


def render_summary(d: dict, settings: Any, lang: str) -> Note:
    """Daily summary text; ``d`` as :meth:`perpbot.notify.notifier.Notifier.daily_summary` returns."""
    t = T[lang]
    n, wins = int(d.get("trades") or 0), int(d.get("wins") or 0)
    lines = [t["summary_title"].format(day=d.get("day")),
             f"{t['trades']}: {n} ({t['won_lost'].format(wins=wins, losses=n - wins)})",
             f"{t['win_rate']}: {fmt.pct(d.get('win_rate'), lang)}",
             f"{t['pnl']}: {fmt.usdt(d.get('pnl'), lang, sign=True)}",
             f"{t['fees']}: {fmt.usdt(d.get('fees'), lang)}",
             f"{t['max_dd']}: {fmt.pct(d.get('max_drawdown'), lang)}",
             f"{t['equity']}: {fmt.usdt(d.get('equity'), lang)}"]
    if d.get("unproven_model"):
        lines.append(f"UNPROVEN MODEL ACCEPTED (--accept-unproven-model): {d['unproven_model']}")
    items = d.get("trade_list") or []
    if items:
        lines.append("")
        for tr in items:
            lines.append(f"#{tr['trade_id']} {side_name(tr['side'], lang)} "
                         f"{REASON_SHORT[lang].get(tr['reason'], tr['reason'])} "
                         f"{fmt.usdt(tr['pnl'], lang, sign=True)}")
    elif n == 0:
        lines.append(t["no_trades"])
    card = d.get("model_live")
    if card and card.get("n_labelled"):
        lines += ["", t["model_live"].format(live=fmt.pct(card["precision"], lang), n=card["n_labelled"],
                                             oos=fmt.pct(card["oos_precision"], lang))]
        if card.get("drift"):
            lines.append(t["model_drift"].format(p=f"{card['p_value']:.2g}"))
    return Note("daily_summary", t["subject_summary"].format(day=d.get("day")), "\n".join(lines))


def render_event(kind: str, data: dict, settings: Any) -> Note | None:
    """The notification for one event, or None when ``kind`` is not notified (e.g. ``cycle``)."""
    lang = lang_of(settings)
    t = T[lang]
    if kind == "entry":
        return render_entry(data, settings, lang)
    if kind == "exit":
        return render_exit(data, settings, lang)
    if kind == "daily_summary":
        return render_summary(data, settings, lang)
    if kind == "risk_halt":
        event = str(data.get("event"))
        value = fmt.pct(data.get("value"), lang)
        key = event if event in ("daily_loss_halt", "max_drawdown_halt") else "risk_other"
        return Note(kind, t["subject_halt"], t[key].format(value=value, event=event))
    if kind in ("order_failed", "error", "model"):
        return Note(kind, t[f"subject_{kind}"], t[kind].format(message=data.get("message", "")))
    if kind in ("paused", "resumed", "force_exit"):
        return Note(kind, t[f"subject_{kind}"], t[kind].format(by=data.get("by", "operator")))
    return None
