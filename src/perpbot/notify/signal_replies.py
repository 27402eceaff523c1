"""Reply texts of the signal bot (English / Indonesian, Telegram HTML) from a
:class:`~perpbot.intel.desk.SignalReport`.

Pure functions: report in, HTML text out, always within ``limit`` UTF-16 units
(:func:`perpbot.notify.safe_cut.safe_cut`). Numbers follow :mod:`perpbot.notify.fmt`
(English ``1,234.56``, Indonesian ``1.234,56``); prices get 5 significant digits before the
point and at least 2 decimals (:func:`price`); percents are percents; USD amounts are
shortened (``4.50 B``). Every value that comes from outside (symbols, venue names, source
details) is HTML-escaped. What is missing is named on its own line
(:meth:`SignalReport.missing_line`).
"""

from __future__ import annotations

import html
import math
from typing import Any

from perpbot.notify import fmt
from perpbot.notify.safe_cut import safe_cut
from perpbot.notify.signal_texts import COMMANDS, T

__all__ = ["help_text", "price", "scalp_text", "signal_text", "timeframe_detail", "timeframes_text", "tr", "usd"]


def tr(lang: str, key: str, **kw: Any) -> Any:
    """Text ``key`` in ``lang`` (English fallback), formatted with ``kw`` when given."""
    text = T.get(lang, T["en"]).get(key, T["en"][key])
    return text.format(**kw) if kw else text


def _e(x: Any) -> str:
    return html.escape(str(x), quote=False)


def price(x: Any, lang: str = "en") -> str:
    """A price with 5 significant digits before the point, at least 2 and at most 10 decimals."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return fmt.DASH
    if not math.isfinite(v):
        return fmt.DASH
    d = 2 if v == 0 else int(min(10, max(2, 5 - math.floor(math.log10(abs(v))))))
    return fmt.number(v, d, lang)


def usd(x: Any, lang: str = "en") -> str:
    """A USD amount shortened: ``4.50 B``, ``21.00 K``, ``950.00``."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return fmt.DASH
    for div, unit in ((1e9, " B"), (1e6, " M"), (1e3, " K")):
        if abs(v) >= div:
            return fmt.number(v / div, 2, lang) + unit
    return fmt.number(v, 2, lang)


def _pct(x: Any, lang: str, d: int = 2, sign: bool = False) -> str:
    return fmt.number(x, d, lang, sign)


def _num(x: Any, lang: str, d: int = 1, sign: bool = False) -> str:
    return fmt.number(x, d, lang, sign)


def _title(key: str, rep: Any, lang: str) -> str:
    return tr(lang, key, symbol=_e(rep.symbol), venue=_e(rep.venue), time=fmt.when(rep.taken_at))


def _tail(rep: Any, lang: str, age: float, left: float) -> list[str]:
    out = []
    missing = rep.missing_line()
    if missing:
        out.append(tr(lang, "missing", what=_e(missing)))
    if age > 0:
        out.append(tr(lang, "cached", age=int(round(age)), left=int(math.ceil(left))))
    return out


def _bias_line(bias: Any, lang: str) -> str:
    t = T[lang]
    if bias is None:
        return f"<b>{t['bias']}:</b> {t['no_tf_data']}"
    n = sum(1 for v in bias.scores.values() if v is not None)
    return (f"<b>{t['bias']}:</b> {t['dir'][bias.direction]} ({t['strength'][bias.strength]}, "
            f"{_num(bias.score, lang, 2, sign=True)}) · {tr(lang, 'agree', agree=bias.agreeing, of=n)}")


def _levels_line(lv: Any, lang: str) -> str:
    return tr(lang, "levels", side=T[lang]["dir"][lv.side], sl=price(lv.stop_loss, lang), tp=price(lv.take_profit, lang),
              risk=_pct(lv.risk_pct, lang), reward=_pct(lv.reward_pct, lang))


def _tf_line(tf: str, row: dict | None, status: Any, lang: str) -> str:
    t = T[lang]
    if not row:
        why = status.state if status is not None else "no_data"
        return t["no_tf"].format(tf=tf, why=_e(why))
    arrow = "▲" if row["trend"] == "up" else "▼"
    return (f"{tf}: {arrow} {t['trend'][row['trend']]} · {price(row['close'], lang)} · RSI "
            f"{_num(row['rsi14'], lang)} · ATR {price(row['atr14'], lang)}")


def _market_lines(snap: Any, lang: str, *, liquidations: bool = True, sentiment: bool = True) -> list[str]:
    t, out = T[lang], []
    fr, vf = snap.get("funding"), snap.get("venue_funding")
    parts = []
    if fr is not None:
        parts.append(f"{_pct(fr.mean_rate_pct, lang, 4, sign=True)}% ({tr(lang, 'venues', n=len(fr.stablecoin()))})")
    if vf is not None:
        parts.append(f"{t['venue']} {_pct(vf.funding_rate * 100, lang, 4, sign=True)}%")
    if parts:
        out.append(f"{t['funding']}: " + " · ".join(parts) + f" {t['per_interval']}")
    oi, voi = snap.get("open_interest"), snap.get("venue_open_interest")
    parts = []
    if oi is not None:
        parts.append(f"{usd(oi.oi_usd, lang)} USD ({t['oi_24h']} {_pct(oi.change_24h_pct, lang, 2, sign=True)}%)")
    if voi is not None and voi.amount is not None:
        parts.append(f"{t['venue']} {_num(voi.amount, lang, 2)} {_e(snap.coin)}")
    if parts:
        out.append(f"{t['oi']}: " + " · ".join(parts))
    lsr = snap.get("long_short")
    if lsr is not None:
        out.append(f"{tr(lang, 'lsr', rng=_e(lsr.range))}: {_pct(lsr.buy_ratio_pct, lang, 1)}% {t['buy']} / "
                   f"{_pct(lsr.sell_ratio_pct, lang, 1)}% {t['sell']} ({t['ratio']} {_num(lsr.ratio, lang, 2)})")
    liq = snap.get("liquidations")
    if liquidations and liq is not None:
        from perpbot.intel.explain import LIQUIDATION_BARS

        lo, sh = liq.total(LIQUIDATION_BARS)
        n = min(LIQUIDATION_BARS, len(liq.bars))
        out.append(f"{tr(lang, 'liq', n=n, iv=_e(liq.interval))}: {t['longs']} {usd(lo, lang)} USD · "
                   f"{t['shorts']} {usd(sh, lang)} USD")
    fg = snap.get("fear_greed")
    if sentiment and fg is not None:
        out.append(f"{t['fg']}: {fg.value} ({_e(fg.classification)})")
    news = snap.get("sentiment")
    if sentiment and news is not None:
        if news.n_posts:
            out.append(f"{t['news']}: {_num(news.score, lang, 2, sign=True)} ({t['label'][news.label]}, "
                       f"{news.n_posts} {t['posts']}, {_e(news.scorer)})")
        else:
            out.append(f"{t['news']}: {t['no_posts']}")
    return out


def _reason(r: Any, lang: str) -> str:
    v = dict(r.values)
    for k in ("poc", "val", "vah", "atr"):
        if k in v:
            v[k] = price(v[k], lang)
    for k in ("rate_pct",):
        if k in v:
            v[k] = _pct(v[k], lang, 4, sign=True)
    for k in ("oi_pct", "price_pct", "atr_pct"):
        if k in v:
            v[k] = _pct(v[k], lang, 2, sign=k != "atr_pct")
    if "rsi" in v:
        v["rsi"] = _num(v["rsi"], lang)
    if "share" in v:
        v["share"] = _num(v["share"] * 100, lang, 0)
    if "usd" in v:
        v["usd"] = usd(v["usd"], lang)
    if "strength" in v:
        v["strength"] = T[lang]["strength"][v["strength"]]
    return "• " + T[lang]["r"][r.key].format(**v)


def signal_text(rep: Any, lang: str, limit: int, age: float = 0.0, left: float = 0.0) -> str:
    """The ``/signal`` answer (bias, short signal, timeframes, market, sentiment score, why, model)."""
    t = T[lang]
    lines = [_title("signal_title", rep, lang), _bias_line(rep.bias, lang)]
    sig = rep.signal
    if sig is not None:
        head = f"<b>{t['signal']}:</b> {t['action'][sig.action]}"
        if sig.levels is not None:
            lv = sig.levels
            head += f" · {t['entry']} {price(lv.entry, lang)} · " + _levels_line(lv, lang).split(": ", 1)[1]
        elif t["wait_reason"].get(sig.reason):
            head += f" ({t['wait_reason'][sig.reason]})"
        lines.append(head)
    if rep.model:
        m = rep.model
        lines.append(f"<b>{t['model']}</b> ({_e(m.get('model_version'))}): {t['decision'][m['decision']]} · "
                     f"{t['confidence']} {fmt.pct(m.get('confidence'), lang, 1)}")
    lines.append(f"<b>{t['timeframes']}</b>")
    lines += [_tf_line(tf, rep.rows.get(tf), rep.statuses.get(tf), lang) for tf in rep.rows]
    market = _market_lines(rep.snapshot, lang) if rep.snapshot is not None else []
    if market:
        lines.append(f"<b>{t['market']}</b>")
        lines += market
    s = rep.sentiment
    if s is not None and s.components:
        lines.append(f"<b>{t['score']}:</b> {_num(s.score, lang, 0, sign=True)} ({t['label'][s.label]}, "
                     f"{len(s.components)}/6)")
    if rep.reasons:
        lines.append(f"<b>{t['why']}</b>")
        lines += [_reason(r, lang) for r in rep.reasons]
    lines += _tail(rep, lang, age, left)
    lines.append(f"<i>{t['footer']}</i>")
    return safe_cut("\n".join(lines), limit)


def timeframes_text(rep: Any, lang: str, limit: int, age: float = 0.0, left: float = 0.0) -> str:
    """The ``/timeframes`` overview: one line per timeframe and the bias."""
    lines = [_title("tf_title", rep, lang)]
    lines += [_tf_line(tf, rep.rows.get(tf), rep.statuses.get(tf), lang) for tf in rep.rows]
    lines.append(_bias_line(rep.bias, lang))
    lines += _tail(rep, lang, age, left)
    lines.append(T[lang]["tf_pick"])
    return safe_cut("\n".join(lines), limit)


def timeframe_detail(rep: Any, tf: str, lang: str, limit: int) -> str:
    """One timeframe's EMA20, EMA50, RSI14, ATR14 and score (the ``/timeframes`` button)."""
    from perpbot.intel.analysis import timeframe_score

    t, row = T[lang], rep.rows.get(tf)
    if not row:
        return safe_cut(_tf_line(tf, None, rep.statuses.get(tf), lang), limit)
    atr_pct = row["atr14"] / row["close"] * 100 if row.get("atr14") and row.get("close") else None
    lines = [tr(lang, "tf_detail", symbol=_e(rep.symbol), tf=tf, time=fmt.when(row["time"])),
             f"{t['close']}: {price(row['close'], lang)}",
             f"EMA20: {price(row['ema20'], lang)} · EMA50: {price(row['ema50'], lang)} ({t['trend'][row['trend']]})",
             f"RSI14: {_num(row['rsi14'], lang, 2)}",
             f"ATR14: {price(row['atr14'], lang)} ({_pct(atr_pct, lang)}% {t['atr_of_close']})",
             f"{t['score_tf']}: {_num(timeframe_score(row), lang, 2, sign=True)}"]
    return safe_cut("\n".join(lines), limit)


def scalp_text(rep: Any, lang: str, limit: int, *, show_profile: bool = True, age: float = 0.0,
               left: float = 0.0) -> str:
    """The ``/scalp`` answer; POC / HVN / LVN only with ``show_profile``."""
    t = T[lang]
    lines = [_title("scalp_title", rep, lang)]
    sv, snap = rep.scalp, rep.snapshot
    micro = snap.get("micro") if snap is not None else None
    if sv is None:
        lines.append(f"<b>{t['intraday']}:</b> {t['no_tf_data']}")
    else:
        parts = [f"5m {_num(_score(rep, '5m'), lang, 2, sign=True)}", f"15m {_num(_score(rep, '15m'), lang, 2, sign=True)}"]
        if sv.poc_side is not None:
            parts.append(t["poc_side"][sv.poc_side])
        lines.append(f"<b>{t['intraday']}:</b> {t['dir'][sv.direction]} ({_num(sv.score, lang, 2, sign=True)}) · "
                     + " · ".join(parts))
        atr = f"{price(micro.atr, lang)} ({_pct(micro.atr_pct, lang, 3)}%)" if micro is not None else fmt.DASH
        lines.append(f"{t['price']}: {price(sv.price, lang)} · {t['atr1m']}: {atr}")
        lines += [_levels_line(lv, lang) for lv in sv.levels] or [t["no_levels"]]
    if snap is not None:
        lines += _market_lines(snap, lang, liquidations=False, sentiment=False)
    if show_profile and micro is not None and micro.profile is not None:
        p = micro.profile
        lines.append(f"<b>{tr(lang, 'profile', minutes=micro.minutes)}</b>: POC {price(p.poc, lang)} · {t['va']} "
                     f"{price(p.value_area_low, lang)}–{price(p.value_area_high, lang)} "
                     f"({_pct(p.value_area_range_pct, lang)}%)")
        if p.hvn:
            lines.append("HVN: " + ", ".join(price(x, lang) for x in p.hvn))
        if p.lvn:
            lines.append("LVN: " + ", ".join(price(x, lang) for x in p.lvn))
    lines += _tail(rep, lang, age, left)
    lines.append(f"<i>{t['footer']}</i>")
    return safe_cut("\n".join(lines), limit)


def _score(rep: Any, tf: str) -> float | None:
    from perpbot.intel.analysis import timeframe_score

    return timeframe_score(rep.rows.get(tf))


def help_text(lang: str, venue: str) -> str:
    lines = [_e(tr(lang, "help_title", venue=venue))]
    lines += [f"/{c}{' SYMBOL' if c in ('signal', 'timeframes', 'scalp') else ''}: {d_id if lang == 'id' else d_en}"
              for c, d_en, d_id in COMMANDS]
    return "\n".join(lines)
