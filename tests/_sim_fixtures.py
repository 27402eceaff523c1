"""Helpers shared by the live-trading tests: quiet loggers, real data for the Bitget simulator."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import contextmanager

import pytest

from perpbot.data import load_candles, load_funding
from perpbot.devtools.bitget_sim import BitgetSim
from perpbot.exchange.clients import make_async_exchange


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
def running_sim(data, start_bar: int, capital: float = 1000.0, cls: type = BitgetSim):
    """A started simulator (``cls``: :class:`BitgetSim`, or the Binance / Bybit / OKX one of the same
    constructor) over ``data`` (see :func:`sim_data`), stopped at exit."""
    s = cls(candles=data[0], funding=data[1], mark=data[2], start_bar=start_bar, capital=capital)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def sim_module_fixtures(cls: type = BitgetSim, n_rows: int = 1400, start: int = 1000,
                        loggers: tuple[str, ...] = ("ccxt", "aiohttp", "asyncio")):
    """The fixtures of a simulator's protocol tests, to bind by name in the test module
    (``_quiet, data, sim = sim_module_fixtures(BinanceSim, N_ROWS, START)``): ``_quiet`` (module, autouse: the
    ``loggers`` at ERROR), ``data`` (module: :func:`sim_data` of ``n_rows`` rows) and ``sim`` (a started ``cls``
    at row ``start``, see :func:`running_sim`)."""
    @pytest.fixture(scope="module", autouse=True)
    def _quiet():
        with quiet_loggers(*loggers):  # ccxt logs every request at DEBUG: slow in pytest's log capture
            yield

    @pytest.fixture(scope="module")
    def data(sol5m_path, sol_funding_path, sol_mark8h_path):
        return sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, n_rows)

    @pytest.fixture
    def sim(data):
        with running_sim(data, start, cls=cls) as s:
            yield s

    return _quiet, data, sim


def drive_client(sim, make, body):
    """``await body(ex)`` with the asyncio ccxt client ``make()`` (built in the loop) pointed at ``sim``, its
    markets loaded; the client is closed after. Returns what ``body`` returns."""
    async def main():
        ex = make()
        sim.point(ex)
        try:
            await ex.load_markets()
            return await body(ex)
        finally:
            await ex.close()
    return asyncio.run(main())


def assert_auth_refusals(drive, sim, bad: list[tuple[dict, type, str | None]], stale: tuple[type, str | None]):
    """Each ``(client config, ccxt error, message pattern)`` of ``bad`` (a wrong key, secret, passphrase) is
    refused as that error; with the venue's clock 2 min ahead (``faults.clock_skew``) the request is stale:
    ``stale`` (error, pattern); once the fault is cleared the balance reads 1,000 USDT. ``drive(sim, body,
    **config)`` runs ``body`` with the venue's client."""
    async def fetch_balance(ex):
        return await ex.fetch_balance()

    for config, error, match in bad:
        with pytest.raises(error, match=match):
            drive(sim, fetch_balance, **config)
    sim.faults.clock_skew(120_000)  # older than the venue's receive window
    try:
        with pytest.raises(stale[0], match=stale[1]):
            drive(sim, fetch_balance)
    finally:
        sim.faults.clear()
    assert drive(sim, fetch_balance)["USDT"]["total"] == 1000.0


def funding_time(data, start: int):
    """(16:00 UTC of the day of candle ``start - 1``, the index of its candle, the funding rate then, the 8h
    mark price's open then) of ``data`` (see :func:`sim_data`)."""
    import pandas as pd

    candles, funding, mark = data
    t16 = candles["timestamp"].iloc[start - 1].normalize() + pd.Timedelta(hours=16)
    k = int((candles["timestamp"] == t16).to_numpy().argmax())
    rate = float(funding.loc[funding["timestamp"] == t16, "funding_rate"].iloc[0])
    mk = float(mark.loc[mark["timestamp"] == t16, "open"].iloc[0])
    return t16, k, rate, mk


async def assert_clock_and_last_candles(ex, candles, start: int, since: bool = False) -> None:
    """The venue's server time is the wall clock (ms), and ccxt ``fetch_ohlcv`` of the simulator's symbol gives
    the 6 closed candles before row ``start`` of ``candles`` exactly (asked by ``limit`` alone, or with ``since``
    their first open time)."""
    before = int(time.time() * 1000)
    assert before - 1 <= await ex.fetch_time() <= int(time.time() * 1000) + 1  # the venue's wall clock
    first = int(candles.timestamp.iloc[start - 6].timestamp() * 1000) if since else None
    rows = await ex.fetch_ohlcv("SOL/USDT:USDT", "5m", first, 6)
    want = candles.iloc[start - 6:start]
    assert [r[0] for r in rows] == [int(t.timestamp() * 1000) for t in want["timestamp"]]
    assert [r[1:] for r in rows] == want[["open", "high", "low", "close", "volume"]].values.tolist()


def long_stopped_by_hand(candles, start: int, taker: float, qty: float = 2.0):
    """A long of ``qty`` bought at the close of candle ``start - 1`` with a stop 1 % below (a take-profit 5 %
    above, which the data must not reach first), worked out by hand from the candles: (entry price, stop,
    take-profit, index of the first candle reaching the stop, exit price (a gap below the stop exits at the
    candle's open), entry fee, exit fee) at the ``taker`` rate."""
    close = float(candles["close"].iloc[start - 1])
    stop, tp = round(close * 0.99, 2), round(close * 1.05, 2)
    k = next(i for i in range(start, len(candles)) if candles["low"].iloc[i] <= stop)
    assert not (candles["high"].iloc[start:k + 1] >= tp).any()
    exit_px = min(float(candles["open"].iloc[k]), stop)
    return close, stop, tp, k, exit_px, qty * close * taker, qty * exit_px * taker


def assert_one_funding_payment(drive, sim, data, start: int, open_long, qty: float = 2.0, more=None) -> None:
    """A long of ``qty`` opened by ``drive(sim, open_long)`` at candle ``start`` and replayed through the funding
    time of :func:`funding_time` pays it: ccxt ``fetch_funding_history`` gives one row at that time of
    ``-qty * mark * rate`` USDT; then ``await more(ex, t16, rate)`` (the venue's own checks) on the same client."""
    t16, k, rate, mk = funding_time(data, start)
    drive(sim, open_long)
    sim.advance(k - start + 1)
    assert sim.engine.position is not None

    async def body(ex):
        rows = await ex.fetch_funding_history("SOL/USDT:USDT")
        assert len(rows) == 1 and rows[0]["timestamp"] == int(t16.timestamp() * 1000)
        assert rows[0]["amount"] == pytest.approx(-qty * mk * rate, abs=1e-12) and rows[0]["code"] == "USDT"
        if more is not None:
            await more(ex, t16, rate)
    drive(sim, body)


def two_symbol_data(sol5m_path, sol_funding_path, sol_mark8h_path, data_dir, n_rows: int = 1300):
    """((SOLUSDT 5m candles, funding, 8h mark), (BTCUSDT 5m candles of the same times made from its 1m file,
    funding)): ``n_rows`` real candles each, for a simulator trading both (``tradable=``)."""
    from perpbot.data.resample import resample_candles

    sol = load_candles(sol5m_path)
    btc = resample_candles(load_candles(data_dir / "BTCUSDT-1m.parquet"), "5m")
    common = sol[sol["timestamp"].isin(set(btc["timestamp"]))].iloc[:n_rows].reset_index(drop=True)
    btc = btc.set_index("timestamp").loc[common["timestamp"]].reset_index()
    assert len(common) == len(btc) == n_rows
    return ((common, load_funding(sol_funding_path), load_candles(sol_mark8h_path)),
            (btc, load_funding(data_dir / "BTCUSDT-funding.parquet")))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a node's API)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(cond, what: str, timeout: float = 30.0, poll: float = 0.005):
    """Poll ``cond()`` until it is truthy (returned), failing the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)
    return value


@contextmanager
def dry_node(sim, settings, strategy: str, out):
    """A started dry-run node (``perpbot run --mode paper`` on live prices, :func:`perpbot.cli.dry_run.run_dry_cli`)
    on ``sim`` through the real ccxt client, in a thread: yields its handles (``bot``, ``feed``, ``loop``;
    ``result`` or ``error`` once it has stopped). At exit its feed is stopped and the thread joined."""
    from perpbot.cli.dry_run import run_dry_cli

    ex = make_async_exchange("bitget", config={"enableRateLimit": False})
    sim.point(ex)
    handles: dict = {}

    def main():
        try:
            handles["result"] = run_dry_cli(
                settings, strategy=strategy, out=out, exchange=ex,
                on_start=lambda bot, feed: handles.update(bot=bot, feed=feed, loop=asyncio.get_running_loop()),
                feed_options=dict(clock=lambda: sim.market.now_ms, poll_interval=0.01, reconnect_base=0.05,
                                  use_websocket=False))
        except BaseException as exc:  # noqa: BLE001 (reported by the caller)
            handles["error"] = exc

    th = threading.Thread(target=main, daemon=True)
    th.start()
    wait_until(lambda: "bot" in handles or "error" in handles, "the node to start", 60)
    assert "error" not in handles, (handles["error"], out.export_text())
    try:
        yield handles
    finally:
        handles["loop"].call_soon_threadsafe(handles["feed"].stop)
        th.join(60)


def next_candle(sim, bot) -> None:
    """Close the simulator's next candle and wait until the node's cycle for it is over (its decision is
    appended last)."""
    n = len(bot.decisions)
    sim.advance()
    wait_until(lambda: len(bot.decisions) == n + 1, "the next candle's decision")
