"""`perpbot download` against the local Bitget simulator with the real ccxt client.

The simulator replays real SOLUSDT 5m candles and funding; what the store holds after a
download is compared row for row with the frame the simulator served (candles only once
closed, mark/index = the trade candles with volume 0 per the simulator's model).
"""

from __future__ import annotations

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from perpbot.data import load_candles, load_funding
from perpbot.exchange.download import DownloadError, download, parse_time
from perpbot.exchange.download import make_sync_exchange as make_exchange
from perpbot.data.store import append_rows, read_store, rows_to_frame, store_path, write_parquet_atomic

SYMBOL = "SOL/USDT:USDT"
N, START_BAR, SINCE_BAR = 4000, 3500, 400  # 3,100 closed candles to fetch: 16 pages of 200


def ms(ts) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


@pytest.fixture(scope="module")
def source(sol5m, sol_funding_path):
    return sol5m.iloc[:N].reset_index(drop=True), load_funding(sol_funding_path)


@pytest.fixture
def sim(source):
    from perpbot.devtools.bitget_sim import BitgetSim

    candles, funding = source
    s = BitgetSim(candles=candles, funding=funding, start_bar=START_BAR)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def ex(sim):
    e = make_exchange("bitget", api_url=sim.base_url)
    e.rateLimit = 1  # the simulator has no rate limit; keep the test fast
    return e


def candle_requests(sim, endpoint: str = "history-candles") -> list[dict]:
    return [r for r in sim.requests if r["path"].endswith("/" + endpoint)]


def test_download_paginates_and_stores_exactly_the_served_candles(sim, ex, source, tmp_path):
    candles, funding = source
    since = ms(candles.timestamp[SINCE_BAR])
    res = download(ex, SYMBOL, "5m", tmp_path, since=since)

    want = candles.iloc[SINCE_BAR:START_BAR].reset_index(drop=True)  # the still-open candle 3500 is not stored
    got = load_candles(tmp_path / "bitget" / "SOLUSDT-5m.parquet", "5m")  # no gap, no duplicate
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_like=False)
    assert res.kinds["candles"].added == 3100 and res.kinds["candles"].rows == 3100
    assert len(candle_requests(sim)) == 16  # ceil(3100 / 200): ccxt's history endpoint pages of 200

    for kind in ("mark", "index"):
        g = load_candles(store_path(tmp_path, "bitget", "SOLUSDT", "5m", kind), "5m")
        pd.testing.assert_frame_equal(g, want.assign(volume=0.0))
    assert len(candle_requests(sim, "history-mark-candles")) == 16
    assert len(candle_requests(sim, "history-index-candles")) == 16

    now = sim.market.now_ms  # close time of the last closed candle
    f = load_funding(tmp_path / "bitget" / "SOLUSDT-funding.parquet")
    sel = funding[(funding.timestamp >= pd.Timestamp(since, unit="ms", tz="UTC"))
                  & (funding.timestamp <= pd.Timestamp(now, unit="ms", tz="UTC"))].reset_index(drop=True)
    assert len(sel) == 32  # 3,100 x 5 min = 258.3 h: 32 settlements every 8 h
    pd.testing.assert_frame_equal(f, sel)

    oi = read_store(tmp_path / "bitget" / "SOLUSDT-open-interest.parquet", "open-interest")
    assert len(oi) == 1 and ms(oi.timestamp[0]) == now
    assert oi.open_interest[0] == pytest.approx(sim.market.open_interest_size(), abs=1e-9)


def test_second_run_appends_nothing_and_new_candles_are_appended(sim, ex, source, tmp_path):
    candles, _ = source
    download(ex, SYMBOL, "5m", tmp_path, since=ms(candles.timestamp[SINCE_BAR]))
    files = sorted((tmp_path / "bitget").glob("*.parquet"))
    before = {p.name: p.read_bytes() for p in files}
    n_req = len(candle_requests(sim))

    res = download(ex, SYMBOL, "5m", tmp_path)
    assert {k: r.added for k, r in res.kinds.items()} == {k: 0 for k in res.kinds}
    assert {p.name: p.read_bytes() for p in files} == before  # files untouched
    assert len(candle_requests(sim)) == n_req  # nothing missing, no candle request at all

    sim.advance(7)
    res = download(ex, SYMBOL, "5m", tmp_path, kinds=["candles", "open-interest"])
    assert res.kinds["candles"].added == 7 and res.kinds["open-interest"].added == 1
    got = load_candles(tmp_path / "bitget" / "SOLUSDT-5m.parquet", "5m")
    pd.testing.assert_frame_equal(got, candles.iloc[SINCE_BAR:START_BAR + 7].reset_index(drop=True))
    assert len(read_store(tmp_path / "bitget" / "SOLUSDT-open-interest.parquet", "open-interest")) == 2


def test_earlier_since_fills_the_missing_start(sim, ex, source, tmp_path):
    candles, _ = source
    download(ex, SYMBOL, "5m", tmp_path, kinds=["candles"], since=ms(candles.timestamp[3000]))
    res = download(ex, SYMBOL, "5m", tmp_path, kinds=["candles"], since=ms(candles.timestamp[2500]))
    assert res.kinds["candles"].added == 500
    got = load_candles(tmp_path / "bitget" / "SOLUSDT-5m.parquet", "5m")
    pd.testing.assert_frame_equal(got, candles.iloc[2500:START_BAR].reset_index(drop=True))


def test_interrupted_download_keeps_what_it_fetched_and_resumes(sim, ex, source, tmp_path):
    candles, _ = source
    since = ms(candles.timestamp[SINCE_BAR])
    armed = []

    def progress(kind, done, total):  # after 5 pages the venue starts failing with 503
        if kind == "candles" and done >= 1000 and not armed:
            armed.append(done)
            sim.faults.server_error(endpoint="history-candles", count=50, status=503)

    with pytest.raises(DownloadError) as err:
        download(ex, SYMBOL, "5m", tmp_path, kinds=["candles"], since=since, progress=progress,
                 retries=2, retry_delay=0.01, flush_pages=3)
    assert "\n" not in str(err.value) and "rerun to resume" in str(err.value)
    assert sum(1 for kind, _ in sim.faults.fired if kind == "5xx") == 3  # first try + 2 retries
    path = tmp_path / "bitget" / "SOLUSDT-5m.parquet"
    partial = load_candles(path, "5m")
    pd.testing.assert_frame_equal(partial, candles.iloc[SINCE_BAR:SINCE_BAR + 1000].reset_index(drop=True))

    sim.faults.clear()
    n_before = len(candle_requests(sim))
    res = download(ex, SYMBOL, "5m", tmp_path, kinds=["candles"])
    assert res.kinds["candles"].added == 2100
    first = candle_requests(sim)[n_before]
    assert f"startTime={ms(candles.timestamp[SINCE_BAR + 1000])}" in first["query"]  # resumed, not restarted
    pd.testing.assert_frame_equal(load_candles(path, "5m"), candles.iloc[SINCE_BAR:START_BAR].reset_index(drop=True))


def test_until_bounds_the_download(sim, ex, source, tmp_path):
    candles, funding = source
    res = download(ex, SYMBOL, "5m", tmp_path, kinds=["candles", "funding"], since=candles.timestamp[100].isoformat(),
                   until=candles.timestamp[350].isoformat())
    got = load_candles(tmp_path / "bitget" / "SOLUSDT-5m.parquet", "5m")
    pd.testing.assert_frame_equal(got, candles.iloc[100:350].reset_index(drop=True))
    f = load_funding(tmp_path / "bitget" / "SOLUSDT-funding.parquet")
    # 2025-04-07 08:20 .. 2025-04-08 05:10 (exclusive) holds the 16:00 and 00:00 settlements
    want = funding[(funding.timestamp >= candles.timestamp[100]) & (funding.timestamp < candles.timestamp[350])]
    assert list(want.timestamp.dt.strftime("%m-%d %H:%M")) == ["04-07 16:00", "04-08 00:00"]
    pd.testing.assert_frame_equal(f, want.reset_index(drop=True))
    assert res.kinds["funding"].added == 2


def test_the_candle_still_open_is_not_stored(sim, source, tmp_path):
    """A live venue also serves the candle in progress: the server clock is 2.5 min into
    candle 3500, which the (test-side) subclass appends to every answer; it is dropped."""
    import ccxt

    candles, _ = source
    open_ts = ms(candles.timestamp[START_BAR])

    class LiveBitget(ccxt.bitget):
        def fetch_time(self, params={}):
            return super().fetch_time(params) + 150_000

        def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params={}):
            rows = super().fetch_ohlcv(symbol, timeframe, since, limit, params)
            return rows + [[open_ts, 150.0, 151.0, 149.0, 150.5, 12.0]]

    ex = LiveBitget({"options": {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}})
    ex.urls["api"] = {k: sim.base_url for k in ex.urls["api"]}
    ex.rateLimit = 1
    res = download(ex, SYMBOL, "5m", tmp_path, kinds=["candles"], since=ms(candles.timestamp[3000]))
    got = load_candles(tmp_path / "bitget" / "SOLUSDT-5m.parquet", "5m")
    assert res.kinds["candles"].added == 500 and ms(got.timestamp.iloc[-1]) == open_ts - 300_000
    pd.testing.assert_frame_equal(got, candles.iloc[3000:START_BAR].reset_index(drop=True))


@pytest.mark.parametrize("args, needle", [
    (dict(symbol="DOGE/USDT:USDT"), "symbol 'DOGE/USDT:USDT' is not listed"),
    (dict(timeframe="7m"), "timeframe '7m' is not supported"),
    (dict(timeframe="8h"), "bitget does not offer timeframe '8h'"),
    (dict(kinds=["candles", "trades"]), "unknown data kind(s) trades"),
    (dict(since="2025-13-45"), "--since '2025-13-45' is not an ISO date"),
    (dict(since="2025-06-02", until="2025-06-01"), "must be before --until"),
])
def test_bad_requests_raise_one_line(sim, ex, tmp_path, args, needle):
    kw = dict(symbol=SYMBOL, timeframe="5m") | args
    with pytest.raises(DownloadError) as err:
        download(ex, kw.pop("symbol"), kw.pop("timeframe"), tmp_path, **kw)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "bitget").exists()


def test_unknown_exchange_and_network_down(tmp_path):
    with pytest.raises(DownloadError, match="unknown exchange 'bitgett'.*did you mean bitget"):
        make_exchange("bitgett")
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    ex = make_exchange("bitget", api_url=f"http://127.0.0.1:{port}", timeout_ms=2000)
    with pytest.raises(DownloadError, match="bitget: network error while loading markets"):
        download(ex, SYMBOL, "5m", tmp_path, retries=0)


def test_parse_time():
    assert parse_time("2025-06-01") == ms("2025-06-01T00:00Z")
    assert parse_time("2025-06-01T02:00+02:00") == ms("2025-06-01T00:00Z")
    assert parse_time(1_700_000_000_000) == 1_700_000_000_000 and parse_time(None) is None


def test_store_writes_are_atomic_and_merges_never_duplicate(sol5m, tmp_path):
    path = store_path(tmp_path, "bitget", "SOL/USDT:USDT", "5m", "candles")
    assert path == tmp_path / "bitget" / "SOLUSDTUSDT-5m.parquet"
    rows = [[int(t.value // 1_000_000), o, h, lo, c, v] for t, o, h, lo, c, v in sol5m.iloc[:10].itertuples(index=False)]
    assert append_rows(path, rows_to_frame(rows[:6], "candles"), "candles", "5m") == 6
    assert append_rows(path, rows_to_frame(rows[4:], "candles"), "candles", "5m") == 4  # 4, 5 already stored
    pd.testing.assert_frame_equal(load_candles(path, "5m"), sol5m.iloc[:10].reset_index(drop=True))
    good = path.read_bytes()
    bad = pd.DataFrame({"timestamp": [object()], "open": [1.0]})  # pyarrow cannot write this
    with pytest.raises(Exception):
        write_parquet_atomic(bad, path)
    assert path.read_bytes() == good  # the old file is intact
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_cli_download(sim, source, tmp_path, monkeypatch):
    from perpbot.cli.download import download as download_cmd

    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("PERPBOT_")]:
        monkeypatch.delenv(key)
    app = typer.Typer()
    app.command()(download_cmd)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    candles, _ = source
    args = ["download", "--api-url", sim.base_url, "--data-dir", "store", "--since",
            candles.timestamp[3300].isoformat(), "--kinds", "candles,funding"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "200" in out.output and "SOLUSDT" in out.output
    pd.testing.assert_frame_equal(load_candles(tmp_path / "store" / "bitget" / "SOLUSDT-5m.parquet", "5m"),
                                  candles.iloc[3300:START_BAR].reset_index(drop=True))

    for extra, needle in ((["--exchange", "nosuchvenue"], "unknown exchange 'nosuchvenue'"),
                          (["--symbol", "XRP/USDT:USDT"], "symbol 'XRP/USDT:USDT' is not listed"),
                          (["--timeframe", "2w"], "timeframe '2w' is not supported")):
        out = runner.invoke(app, ["download", "--api-url", sim.base_url, "--data-dir", "store", *extra])
        assert out.exit_code == 1
        lines = [ln for ln in out.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], out.output
