"""What each Telegram command answers: the command bodies, run in a worker thread (no asyncio).

:class:`Commands` turns a command name and its arguments into (reply text, inline keyboard or
None) from a :class:`perpbot.bot.context.BotContext`; bad arguments raise :class:`UsageError`
whose message is the one-line reply. :mod:`perpbot.notify.telegram_bot` wires it to Telegram.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from perpbot.notify import replies as R
from perpbot.notify.messages import lang_of

MAX_TRADES, MAX_DAYS = 1000, 366


class UsageError(ValueError):
    """A command's arguments are wrong; the message is the one-line reply."""


class Commands:
    """Command bodies over one bot's context (``settings.language`` picks the texts)."""

    def __init__(self, settings: Any, ctx: Any) -> None:
        self.settings, self.ctx = settings, ctx
        self.lang = lang_of(settings)

    def t(self, key: str, **kw: Any) -> str:
        return R.tr(self.lang, key, **kw)

    def build(self, name: str, args: list[str], chat_id: int) -> tuple[str, Any]:
        ctx, s, lang = self.ctx, self.settings, self.lang
        if name in ("start", "menu"):
            st = ctx.status()
            return self.t("menu", symbol=s.symbol, timeframe=s.timeframe, mode=st.get("mode"),
                          strategy=st.get("strategy")), self.menu_markup()
        if name == "help":
            return R.help_text(lang), None
        if name == "status":
            return R.status_text(ctx.status(), s, lang), None
        if name == "balance":
            return R.balance_text(ctx.balance(), lang), None
        if name == "positions":
            return R.positions_text(ctx.positions(), s, lang), None
        if name == "pause":
            if ctx.control.paused:
                return self.t("already_paused"), None
            ctx.control.pause(by=f"telegram:{chat_id}")
            return self.t("paused_ok"), None
        if name == "resume":
            if not ctx.control.paused:
                return self.t("not_paused"), None
            ctx.control.resume(by=f"telegram:{chat_id}")
            return self.t("resumed_ok"), None
        if name == "forceexit":
            pos = ctx.positions()
            if not pos:
                return self.t("fx_none"), None
            desc = ", ".join(R._pos_line(p, s, lang) for p in pos)
            kb = InlineKeyboardMarkup([[InlineKeyboardButton(self.t("fx_yes"), callback_data="fx:yes"),
                                        InlineKeyboardButton(self.t("fx_no"), callback_data="fx:no")]])
            return self.t("fx_confirm", pos=desc), kb
        if name == "signal":
            symbol = self.symbol_arg(name, args)
            try:
                return R.signal_text(ctx.current_signal(symbol), lang), None
            except ValueError as exc:
                if "no trained model" in str(exc):
                    return self.t("no_model"), None
                raise
        if name == "timeframes":
            return self._timeframes(self.symbol_arg(name, args), "all")
        rid = ctx.run_id()
        if rid is None:
            return self.t("no_run"), None
        if name == "trades":
            n = self.int_arg(name, args, 10, MAX_TRADES)
            return R.trades_text(ctx.trades(limit=n), rid, s, lang), None
        if name == "profit":
            return R.profit_text(ctx.profit(), rid, float(s.starting_capital), lang), None
        if name == "daily":
            return R.daily_text(self.daily_table(rid, self.int_arg(name, args, 7, MAX_DAYS)), rid, lang), None
        if name == "performance":
            run = ctx.ledger.get_run(rid)
            return R.performance_text(self.run_metrics(run), run, lang), None
        return self.t("unknown_cmd", cmd=f"/{name}"), None

    def menu_markup(self) -> InlineKeyboardMarkup:
        buttons = [InlineKeyboardButton(label, callback_data=f"cmd:{cmd}") for cmd, label in R.menu_labels(self.lang)]
        return InlineKeyboardMarkup([buttons[i:i + 3] for i in range(0, len(buttons), 3)])

    def symbol_arg(self, cmd: str, args: list[str]) -> str:
        """The traded symbol for ``args[0]`` (accepts SOL, SOLUSDT, SOL/USDT, SOL/USDT:USDT; any case)."""
        symbol = self.settings.symbol
        if not args:
            raise UsageError(self.t("usage_symbol", cmd=cmd, example=symbol))
        base, quote = symbol.split(":")[0].split("/")
        given = args[0].strip().upper().replace("-", "/")
        if given in {base, base + quote, f"{base}/{quote}", symbol.upper(), f"{base}{quote}:{quote}"}:
            return symbol
        raise UsageError(self.t("unknown_symbol", sym=args[0], symbol=symbol))

    def int_arg(self, cmd: str, args: list[str], default: int, hi: int) -> int:
        if not args:
            return default
        try:
            n = int(args[0])
        except ValueError:
            n = 0
        if not 1 <= n <= hi:
            raise UsageError(self.t("bad_int", arg=args[0], hi=hi, cmd=cmd, example=default))
        return n

    def _timeframes(self, symbol: str, which: str) -> tuple[str, Any]:
        ind = self.ctx.indicators(symbol)
        if which == "all":
            text = R.timeframes_text(ind, symbol, self.settings, self.lang)
        else:
            text = R.timeframe_detail(which, ind.get(which), symbol, self.settings, self.lang)
        row = [InlineKeyboardButton(("• " if tf == which else "") + tf, callback_data=f"tf:{tf}") for tf in ind]
        kb = [row] + ([[InlineKeyboardButton(self.t("tf_all"), callback_data="tf:all")]] if which != "all" else [])
        return text, InlineKeyboardMarkup(kb)

    def daily_table(self, rid: int, n_days: int) -> pd.DataFrame:
        """PnL (USDT) and trade count per UTC day (by exit time) for the ``n_days`` ending at the bot's
        last candle (else the run's data end, else the last exit, else today)."""
        trades = self.ctx.trades(rid, limit=10**9)
        end = self.ctx.status().get("last_candle_time")
        if end is None:
            end = self.ctx.ledger.get_run(rid).get("data_range_end")
        if end is None and len(trades):
            end = trades["exit_time"].max()
        end = pd.Timestamp(end if end is not None else pd.Timestamp.now(tz="UTC"))
        end = (end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")).floor("D")
        days = pd.date_range(end - pd.Timedelta(days=n_days - 1), end, freq="D")
        if len(trades):
            g = trades.groupby(trades["exit_time"].dt.floor("D"))["pnl"].agg(["sum", "count"])
            g.index = pd.DatetimeIndex(g.index).as_unit("ns")
        else:
            g = pd.DataFrame({"sum": [], "count": []}, index=pd.DatetimeIndex([], tz="UTC"))
        g = g.reindex(days.as_unit("ns"), fill_value=0)
        return pd.DataFrame({"pnl": g["sum"].astype(float), "trades": g["count"].astype(int)}, index=days)

    def run_metrics(self, run: dict) -> dict:
        """The run's recorded metrics, else computed now from its ledger equity and trades."""
        if run.get("metrics"):
            return run["metrics"]
        from perpbot.ml.trading_metrics import trading_metrics

        eq = self.ctx.ledger.equity(run["id"])
        if not len(eq):
            return {}
        return trading_metrics(eq, self.ctx.ledger.trades(run["id"]), float(self.settings.starting_capital))
