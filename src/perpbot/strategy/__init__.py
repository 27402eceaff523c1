"""perpbot.strategy: turn features / model output into buy, sell or hold signals per bar."""

from perpbot.strategy.donchian import donchian_signals
from perpbot.strategy.ema_cross import ema_cross_signals
from perpbot.strategy.scoring import rule_scores

__all__ = ["donchian_signals", "ema_cross_signals", "rule_scores"]
