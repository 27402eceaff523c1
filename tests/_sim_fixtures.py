"""Helpers shared by the live-trading tests: quiet loggers, real data for the Bitget simulator."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from perpbot.data import load_candles, load_funding
from perpbot.devtools.bitget_sim import BitgetSim


@contextmanager
def quiet_loggers(*names: str):
    """Raise the given loggers to ERROR for the duration, then restore their levels."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, n_rows: int):
    """(first ``n_rows`` real 5m candles, funding history, 8h mark candles)."""
    return (load_candles(sol5m_path).iloc[:n_rows].reset_index(drop=True), load_funding(sol_funding_path),
            load_candles(sol_mark8h_path))


@contextmanager
def running_sim(data, start_bar: int, capital: float = 1000.0):
    """A started :class:`BitgetSim` over ``data`` (see :func:`sim_data`), stopped at exit."""
    s = BitgetSim(candles=data[0], funding=data[1], mark=data[2], start_bar=start_bar, capital=capital)
    s.start()
    try:
        yield s
    finally:
        s.stop()
