"""Account configuration of one simulated (or live) futures account: fees, sizing, risk limits,
market rules and margin tiers, as fractions (not percents).

:meth:`AccountConfig.for_strategy` is the one place where settings (percent fields) become an
account configuration for a strategy (baseline overrides, the venue's market rules); the compiled
loop reads it as a float64 parameter array (:meth:`AccountConfig.params`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from perpbot.sim import kernel as K
from perpbot.sim.market_rules import account_rules
from perpbot.sim.sizing import (
    SIZING_ATR, SIZING_EQUITY, SIZING_FIXED_FRACTION, STOP_ATR, STOP_LEVELS, STOP_PERCENT, protective_levels,
)

# Bitget SOLUSDT USDT-M position tiers (upper notional bound in USDT, maintenance margin rate),
# announcement Sep 2025 (shared/reference/bitget.md). The venue's own from the market cache when
# it has the symbol (perpbot.sim.market_rules; perpbot markets refresh).
SOLUSDT_TIERS = ((50_000.0, 0.005), (100_000.0, 0.008), (1_000_000.0, 0.01), (5_000_000.0, 0.02),
                 (10_000_000.0, 0.03), (30_000_000.0, 0.05), (60_000_000.0, 0.12))

#: what a spot market changes in the account: no leverage (the coins are bought with the cash
#: balance), no funding, no maintenance margin (a 1x long's liquidation price is 0: never reached),
#: no short positions
SPOT_ACCOUNT = {"leverage": 1.0, "funding": False, "tiers": ((float("inf"), 0.0),), "long_only": True}

_SIZING = {"fixed_fraction": SIZING_FIXED_FRACTION, "atr": SIZING_ATR, "equity": SIZING_EQUITY}
_STOP = {"percent": STOP_PERCENT, "atr": STOP_ATR, "levels": STOP_LEVELS}


@dataclass(frozen=True)
class AccountConfig:
    """Account, risk and market-rule settings of one simulation (fractions, not percents).

    ``stop_loss`` / ``take_profit``: fractions of the entry price (stop_mode "percent") or ATR
    multiples (stop_mode "atr"); 0 disables the level (buy-and-hold baseline only).
    """

    capital: float = 1000.0
    leverage: float = 3.0
    taker_fee: float = 0.0006
    slippage: float = 0.0002
    sizing: str = "fixed_fraction"
    risk: float = 0.01
    equity_fraction: float = 1.0
    sizing_atr_mult: float = 2.0
    stop_mode: str = "percent"
    stop_loss: float = 0.01
    take_profit: float = 0.02
    trailing_stop: float = 0.0
    max_daily_loss: float = 0.05
    max_drawdown: float = 0.20
    cooldown_bars: int = 6
    lot_size: float = 0.1
    tick_size: float = 0.001
    min_qty: float = 0.1
    min_notional: float = 5.0
    funding: bool = True
    warmup_bars: int = 0
    atr_period: int = 14
    tiers: tuple = field(default=SOLUSDT_TIERS)
    long_only: bool = False  # spot: no short positions
    limit_offset: float = 0.0  # > 0: post-only limit entries this fraction from the signal close (kernel)
    maker_fee: float = 0.0002
    limit_bars: int = 1
    limit_fallback: bool = False  # an unfilled limit entry becomes a market entry at the next open
    adaptive_leverage: bool = False  # leverage per trade from volatility and the size scale (sizing.trade_leverage)
    leverage_min: float = 1.0
    leverage_target_atr: float = 0.01  # ATR as a fraction of the price up to which the full leverage is used
    levels_lookback: int = 48  # stop_mode "levels": candles of support / resistance, ATR buffer, min reward / risk
    levels_buffer_atr: float = 0.25
    min_risk_reward: float = 1.5

    @classmethod
    def for_strategy(cls, settings, strategy: str | None = None, rules=None, **overrides) -> "AccountConfig":
        """The account of ``strategy`` under ``settings``: :meth:`from_settings`, then the
        baseline's overrides (buy-and-hold: 1x full equity, no stops), then the venue's market
        ``rules`` (:class:`~perpbot.exchange.venue.MarketRules`: lot, tick, minimums, taker and maker fee)."""
        cfg = cls.from_settings(settings, **overrides)
        if strategy is not None:
            from perpbot.strategy.signals import baseline_overrides

            cfg = replace(cfg, **baseline_overrides(strategy))
        if rules is not None:
            cfg = replace(cfg, lot_size=rules.lot, tick_size=rules.tick, min_qty=rules.min_qty,
                          min_notional=rules.min_notional, taker_fee=rules.taker,
                          maker_fee=cfg.maker_fee if getattr(rules, "maker", None) is None else rules.maker)
        return cfg

    @classmethod
    def for_live(cls, settings, strategy: str, rules=None) -> "AccountConfig":
        """:meth:`for_strategy` for a live run; the venue's ``rules``
        (:class:`~perpbot.exchange.executor.MarketRules`) replace the settings' lot, tick, minimums
        and taker fee. Raises ValueError when the strategy trades without a stop-loss."""
        cfg = cls.for_strategy(settings, strategy, rules)
        if cfg.adaptive_leverage and cfg.leverage_min != math.floor(cfg.leverage_min):
            raise ValueError(f"leverage_min {cfg.leverage_min:g} is not a whole number; venues take integer leverage "
                             "(leverage_mode = \"adaptive\" sets a whole leverage per entry)")
        if not cfg.stop_loss > 0:
            raise ValueError(f"live trading needs a stop-loss on every entry; strategy {strategy!r} trades without one")
        return cfg

    def levels(self, side: int, price: float, atr: float, support: float = math.nan,
               resistance: float = math.nan) -> tuple[float, float, float]:
        """(stop-loss, take-profit, stop distance) in USDT for an entry at ``price`` (kernel rule:
        :func:`~perpbot.sim.sizing.protective_levels`); ``atr`` USDT, used by ATR stops and the levels' buffer;
        ``support`` / ``resistance`` (USDT) for stop_mode "levels" (:func:`~perpbot.sim.sizing.recent_levels`)."""
        return protective_levels(int(side), float(price), _STOP[self.stop_mode], self.stop_loss, self.take_profit,
                                 float(atr), self.tick_size, float(support), float(resistance), self.levels_buffer_atr)

    def with_baseline(self, strategy: str) -> "AccountConfig":
        """This account with ``strategy``'s baseline overrides (none for non-baselines)."""
        from perpbot.strategy.signals import baseline_overrides

        return replace(self, **baseline_overrides(strategy))

    @classmethod
    def from_settings(cls, s, **overrides) -> "AccountConfig":
        """Build from :class:`perpbot.config.Settings` (percent fields converted to fractions; lot,
        tick, minimum quantity and notional and the margin tiers of the symbol: the settings' own,
        else the venue's from the market cache, else the shipped ones,
        :func:`perpbot.sim.market_rules.account_rules`)."""
        rules = account_rules(s)
        values = dict(
            capital=s.starting_capital, leverage=s.leverage, taker_fee=s.taker_fee_frac,
            slippage=s.slippage_frac, sizing=s.sizing, risk=s.risk_frac,
            equity_fraction=s.equity_fraction, sizing_atr_mult=s.sizing_atr_mult, stop_mode=s.stop_mode,
            stop_loss=s.stop_loss_frac, take_profit=s.take_profit_frac,
            trailing_stop=s.trailing_stop_frac, max_daily_loss=s.max_daily_loss_frac,
            max_drawdown=s.max_drawdown_frac, cooldown_bars=s.cooldown_bars,
            funding=s.funding, warmup_bars=s.warmup_bars, atr_period=s.atr_period,
            limit_offset=s.limit_offset / 100.0 if s.entry_order == "limit" else 0.0, maker_fee=s.maker_fee / 100.0,
            limit_bars=s.limit_timeout_bars, limit_fallback=s.limit_fallback == "market",
            adaptive_leverage=s.leverage_mode == "adaptive", leverage_min=s.leverage_min,
            leverage_target_atr=s.leverage_target_atr / 100.0, levels_lookback=s.levels_lookback,
            levels_buffer_atr=s.levels_buffer_atr, min_risk_reward=s.min_risk_reward,
            **rules.values,  # the symbol's lot, tick and minimums unless the settings set them
        )
        if rules.tiers is not None:
            values["tiers"] = rules.tiers
        if getattr(s, "market_type", "futures") == "spot":  # a spot account: bought with cash, never short
            values.update(SPOT_ACCOUNT)
        values.update(overrides)
        return cls(**values)

    def params(self) -> np.ndarray:
        """The float64 parameter array of :func:`perpbot.sim.kernel.run_bars`."""
        if self.sizing not in _SIZING:
            raise ValueError(f"sizing {self.sizing!r} is not one of {sorted(_SIZING)}")
        if self.stop_mode not in _STOP:
            raise ValueError(f"stop_mode {self.stop_mode!r} is not one of {sorted(_STOP)}")
        p = np.zeros(K.N_PARAMS, dtype=np.float64)
        p[K.P_LEVERAGE] = self.leverage
        p[K.P_TAKER_FEE] = self.taker_fee
        p[K.P_SLIPPAGE] = self.slippage
        p[K.P_SIZING] = _SIZING[self.sizing]
        p[K.P_RISK] = self.risk
        p[K.P_EQUITY_FRAC] = self.equity_fraction
        p[K.P_SIZING_ATR_MULT] = self.sizing_atr_mult
        p[K.P_STOP_MODE] = _STOP[self.stop_mode]
        p[K.P_SL] = self.stop_loss
        p[K.P_TP] = self.take_profit
        p[K.P_TRAIL] = self.trailing_stop
        p[K.P_MAX_DAILY_LOSS] = self.max_daily_loss
        p[K.P_MAX_DD] = self.max_drawdown
        p[K.P_COOLDOWN] = self.cooldown_bars
        p[K.P_LOT] = self.lot_size
        p[K.P_TICK] = self.tick_size
        p[K.P_MIN_QTY] = self.min_qty
        p[K.P_MIN_NOTIONAL] = self.min_notional
        p[K.P_FUNDING_ON] = 1.0 if self.funding else 0.0
        p[K.P_WARMUP] = self.warmup_bars
        p[K.P_LONG_ONLY] = 1.0 if self.long_only else 0.0
        p[K.P_LIMIT_OFFSET] = self.limit_offset
        p[K.P_MAKER_FEE] = self.maker_fee
        p[K.P_LIMIT_BARS] = self.limit_bars
        p[K.P_LIMIT_FALLBACK] = 1.0 if self.limit_fallback else 0.0
        p[K.P_LEV_ADAPTIVE] = 1.0 if self.adaptive_leverage else 0.0
        p[K.P_LEV_MIN] = self.leverage_min
        p[K.P_LEV_TARGET_ATR] = self.leverage_target_atr
        p[K.P_LEVELS_N] = self.levels_lookback
        p[K.P_LEVELS_BUFFER] = self.levels_buffer_atr
        p[K.P_MIN_RR] = self.min_risk_reward
        return p

    def tier_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        upper = np.array([t[0] for t in self.tiers], dtype=np.float64)
        mmr = np.array([t[1] for t in self.tiers], dtype=np.float64)
        return upper, mmr
