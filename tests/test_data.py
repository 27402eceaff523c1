"""Tests for perpbot.data: loading the real Binance USDT-M files, rejecting corrupt data,
resampling (checked against the exchange's own 1h/5m files) and funding alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perpbot.data import (
    TIMEFRAMES,
    DataError,
    align_funding,
    load_candles,
    resample_candles,
    timeframe_to_ms,
    validate_candles,
    validate_funding,
)

UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


@pytest.fixture(scope="module")
def mark8h(sol_mark8h_path) -> pd.DataFrame:
    return load_candles(sol_mark8h_path)


@pytest.fixture(scope="module")
def small(sol5m) -> pd.DataFrame:
    """First 2000 real 5m candles as read from disk (not through our loader)."""
    return sol5m.iloc[:2000].reset_index(drop=True)


def write(df: pd.DataFrame, path: Path) -> Path:
    df.to_parquet(path, index=False)
    return path


# ---------------------------------------------------------------- timeframes

def test_timeframe_to_ms():
    assert TIMEFRAMES == ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "1d")
    assert timeframe_to_ms("1m") == 60_000
    assert timeframe_to_ms("5m") == 300_000
    assert timeframe_to_ms("8h") == 28_800_000
    assert timeframe_to_ms("1d") == 86_400_000
    with pytest.raises(ValueError, match=r"unknown timeframe '7m'; allowed: 1m, 3m, 5m.*1d"):
        timeframe_to_ms("7m")


# ---------------------------------------------------------------- real files

@pytest.mark.parametrize("fixture, n, first, last, tf", [
    ("sol5m_path", 86_400, "2025-04-07 00:00", "2026-01-31 23:55", "5m"),
    ("sol1m_path", 43_200, "2025-05-04 15:33", "2025-06-03 15:32", "1m"),
    ("sol_mark8h_path", 1_095, "2025-02-01 00:00", "2026-01-31 16:00", "8h"),
])
def test_load_real_candles(request, fixture, n, first, last, tf):
    df = load_candles(request.getfixturevalue(fixture))
    assert len(df) == n
    assert isinstance(df.index, pd.RangeIndex) and df.index[0] == 0
    assert list(df.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert str(df["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert all(df[c].dtype == np.float64 for c in ["open", "high", "low", "close", "volume"])
    assert df["timestamp"].iloc[0] == ts(first) and df["timestamp"].iloc[-1] == ts(last)
    assert df.attrs["timeframe"] == tf


def test_mark_candles_have_zero_volume_and_load(mark8h):
    assert (mark8h["volume"] == 0).all()
    assert mark8h["open"].iloc[0] == pytest.approx(231.613722, abs=1e-6)


def test_load_real_funding(funding):
    assert len(funding) == 1_095
    assert list(funding.columns) == ["timestamp", "funding_rate"]
    assert str(funding["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert funding["funding_rate"].dtype == np.float64
    assert funding["timestamp"].iloc[0] == ts("2025-02-01 00:00")
    assert funding["timestamp"].iloc[-1] == ts("2026-01-31 16:00")
    assert (funding["timestamp"].dt.hour.isin([0, 8, 16])).all()


def test_timeframe_given_must_match(sol5m_path):
    assert load_candles(sol5m_path, "5m").attrs["timeframe"] == "5m"
    with pytest.raises(DataError, match=r"SOLUSDT-5m\.parquet: most common timestamp step is 5m but timeframe 1h"):
        load_candles(sol5m_path, "1h")
    with pytest.raises(ValueError, match="unknown timeframe"):
        load_candles(sol5m_path, "5min")


# ---------------------------------------------------------------- corrupt files

def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.parquet: file not found"):
        load_candles(tmp_path / "nope.parquet")


def test_garbage_and_truncated_parquet(tmp_path, sol5m_path):
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet at all" * 10)
    with pytest.raises(DataError, match=r"junk\.parquet: unreadable Parquet file"):
        load_candles(junk)
    raw = Path(sol5m_path).read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.parquet: unreadable Parquet file"):
        load_candles(cut)


def test_missing_column(tmp_path, small):
    p = write(small.drop(columns=["volume"]), tmp_path / "novol.parquet")
    with pytest.raises(DataError, match=r"novol\.parquet: missing column\(s\) volume"):
        load_candles(p)


def test_dropped_row_is_a_gap(tmp_path, small):
    p = write(small.drop(index=[700, 701, 1500]), tmp_path / "gap.parquet")
    msg = (r"gap\.parquet: 2 gap\(s\) \(3 missing 5m candle\(s\)\), first after 2025-04-09T10:15:00\+00:00 "
           r"\(next candle 2025-04-09T10:30:00\+00:00, row 700\)")
    with pytest.raises(DataError, match=msg):
        load_candles(p)
    df = load_candles(p, allow_gaps=True)
    assert len(df) == 1997 and df.attrs["timeframe"] == "5m"


def test_duplicated_row(tmp_path, small):
    dup = pd.concat([small.iloc[:501], small.iloc[500:]], ignore_index=True)
    p = write(dup, tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"dup\.parquet: 1 duplicate timestamp\(s\), first 2025-04-08T17:40:00\+00:00 "
                                        r"at row 501"):
        load_candles(p)


def test_swapped_rows(tmp_path, small):
    order = list(range(len(small)))
    order[300], order[301] = 301, 300
    p = write(small.iloc[order], tmp_path / "swap.parquet")
    msg = r"swap\.parquet: timestamps not sorted: 1 step\(s\) go backwards, first at row 301"
    with pytest.raises(DataError, match=msg):
        load_candles(p)


def _edit(small: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    df = small.copy()
    for col, val in values.items():
        df.loc[row, col] = val
    return df


@pytest.mark.parametrize("edit, message", [
    (dict(close=np.nan), r"1 NaN/infinite value\(s\) in close, first NaN at 2025-04-07T03:20:00\+00:00 \(row 40\)"),
    (dict(volume=np.inf), r"1 NaN/infinite value\(s\) in volume, first infinite"),
    (dict(open=0.0), r"1 row\(s\) with non-positive price, first at 2025-04-07T03:20:00\+00:00 \(row 40"),
    (dict(high=90.0, low=200.0), r"1 row\(s\) with high < low"),
    (dict(high=105.36), r"1 row\(s\) with high < max\(open, close\)"),  # row 40: o=105.37 h=105.63 l=105.01 c=105.28
    (dict(low=105.29), r"1 row\(s\) with low > min\(open, close\)"),
    (dict(volume=-1.0), r"1 row\(s\) with negative volume"),
])
def test_bad_values(tmp_path, small, edit, message):
    assert small.loc[40, ["open", "high", "low", "close"]].tolist() == [105.37, 105.63, 105.01, 105.28]
    p = write(_edit(small, 40, **edit), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: " + message):
        load_candles(p)


def test_timestamp_zone_checks(small):
    naive = small.assign(timestamp=small["timestamp"].dt.tz_localize(None))
    with pytest.raises(DataError, match=r"<frame>: timestamp is naive"):
        validate_candles(naive, "5m")
    berlin = small.assign(timestamp=small["timestamp"].dt.tz_convert("Europe/Berlin"))
    with pytest.raises(DataError, match=r"replay: timestamp is in time zone Europe/Berlin; expected UTC"):
        validate_candles(berlin, "5m", source="replay")
    as_int = small.assign(timestamp=small["timestamp"].astype("int64"))
    with pytest.raises(DataError, match=r"timestamp has dtype int64"):
        validate_candles(as_int)
    as_text = small.assign(timestamp=small["timestamp"].astype(str))
    with pytest.raises(DataError, match=r"timestamp has dtype (str|object)"):
        validate_candles(as_text)
    with pytest.raises(DataError, match=r"column open is not numeric"):
        validate_candles(small.assign(open="x"))


def test_off_grid_and_short_frames(small):
    shifted = small.assign(timestamp=small["timestamp"] + pd.Timedelta(seconds=30))
    with pytest.raises(DataError, match=r"2000 timestamp\(s\) not on the 5m grid, first 2025-04-07T00:00:30"):
        validate_candles(shifted)
    with pytest.raises(DataError, match=r"cannot infer the timeframe from 1 row"):
        validate_candles(small.iloc[:1])
    assert len(validate_candles(small.iloc[:1], "5m")) == 1
    with pytest.raises(DataError, match=r"no rows"):
        validate_candles(small.iloc[:0], "5m")


def test_validate_candles_in_memory_matches_loader(small, c5):
    out = validate_candles(small, "5m", source="replay.parquet")
    pd.testing.assert_frame_equal(out, c5.iloc[:2000])


def test_funding_validation(funding):
    f = funding.iloc[:10].copy()
    jitter = f.assign(timestamp=f["timestamp"].astype("datetime64[ns, UTC]") + pd.Timedelta(milliseconds=4))
    pd.testing.assert_frame_equal(validate_funding(jitter), f)  # rounded back to the second
    with pytest.raises(DataError, match=r"f: 1 duplicate timestamp\(s\), first 2025-02-01T08:00:00\+00:00 at row 2"):
        validate_funding(pd.concat([f.iloc[:2], f.iloc[1:]], ignore_index=True), source="f")
    with pytest.raises(DataError, match=r"timestamps not sorted"):
        validate_funding(f.iloc[[0, 2, 1, 3]])
    with pytest.raises(DataError, match=r"1 NaN/infinite funding_rate value\(s\), first at 2025-02-01T16:00:00"):
        validate_funding(_edit(f, 2, funding_rate=np.nan))


# ---------------------------------------------------------------- resampling

def test_resample_5m_to_1h_equals_exchange_1h(c5, data_dir):
    h1 = load_candles(data_dir / "SOLUSDT-1h.parquet")
    r = resample_candles(c5, "1h")
    assert len(r) == 7_200 and r.attrs["timeframe"] == "1h"
    assert r["timestamp"].iloc[0] == ts("2025-04-07 00:00") and r["timestamp"].iloc[-1] == ts("2026-01-31 23:00")
    m = h1.merge(r, on="timestamp", suffixes=("", "_r"), validate="1:1")
    assert len(m) == 7_200
    for col in ["open", "high", "low", "close"]:
        np.testing.assert_array_equal(m[col].to_numpy(), m[col + "_r"].to_numpy(), err_msg=col)
    np.testing.assert_allclose(m["volume_r"], m["volume"], rtol=1e-12)


def test_resample_1m_to_5m_drops_partial_buckets(sol1m_path, c5):
    m1 = load_candles(sol1m_path)  # 15:33 .. 15:32: first and last 5m buckets are partial
    r = resample_candles(m1, "5m")
    assert r["timestamp"].iloc[0] == ts("2025-05-04 15:35") and r["timestamp"].iloc[-1] == ts("2025-06-03 15:25")
    assert len(r) == (43_200 - 2 - 3) // 5
    m = c5.merge(r, on="timestamp", suffixes=("", "_r"))
    assert len(m) == len(r)
    for col in ["open", "high", "low", "close"]:
        np.testing.assert_array_equal(m[col].to_numpy(), m[col + "_r"].to_numpy(), err_msg=col)
    np.testing.assert_allclose(m["volume_r"], m["volume"], rtol=1e-9)


def test_resample_incomplete_bucket_dropped(c5):
    # 4 hours of 5m candles, one candle missing in hour 1
    gappy = validate_candles(c5.iloc[:48].drop(index=[15]), "5m", allow_gaps=True)
    r = resample_candles(gappy, "1h")
    assert r["timestamp"].tolist() == [ts("2025-04-07 00:00"), ts("2025-04-07 02:00"), ts("2025-04-07 03:00")]
    first = c5.iloc[:12]
    assert r.loc[0, "open"] == first["open"].iloc[0] and r.loc[0, "close"] == first["close"].iloc[-1]
    assert r.loc[0, "high"] == first["high"].max() and r.loc[0, "low"] == first["low"].min()


def test_resample_rejects_bad_target(c5):
    with pytest.raises(ValueError, match="cannot resample 5m candles to 1m"):
        resample_candles(c5.iloc[:100], "1m")
    with pytest.raises(ValueError, match="unknown timeframe"):
        resample_candles(c5.iloc[:100], "7m")


# ---------------------------------------------------------------- funding alignment

def test_align_funding_real(c5, funding, mark8h):
    rate, mark = align_funding(c5["timestamp"], "5m", funding, mark8h, c5["open"].to_numpy())
    assert rate.dtype == np.float64 and mark.dtype == np.float64 and rate.shape == mark.shape == (86_400,)
    first, last = c5["timestamp"].iloc[0], c5["timestamp"].iloc[-1]
    span = funding[(funding["timestamp"] >= first) & (funding["timestamp"] <= last)]
    assert len(span) == 900 and (span["funding_rate"] != 0).all()
    assert np.count_nonzero(rate) == 900
    # every event lands on the 5m bar that opens at the settlement time
    np.testing.assert_array_equal(c5["timestamp"][rate != 0].to_numpy(), span["timestamp"].to_numpy())
    # hand spot-check: 2025-10-11 00:00 UTC settlement (files: rate -0.00302761, mark open 187.65;
    # the 5m trade candle opened at 187.66, so the mark price really came from the mark file)
    i = 53_856
    assert c5["timestamp"].iloc[i] == ts("2025-10-11 00:00")
    assert rate[i] == -0.00302761 and mark[i] == 187.65
    assert rate[i - 1] == 0.0 and mark[i - 1] == c5["open"].iloc[i - 1]
    no_event = rate == 0
    np.testing.assert_array_equal(mark[no_event], c5["open"].to_numpy()[no_event])
    # total funding per unit long position = sum over events of mark x rate
    expected = span.merge(mark8h[["timestamp", "open"]], on="timestamp")
    assert len(expected) == 900
    assert (rate * mark).sum() == pytest.approx((expected["open"] * expected["funding_rate"]).sum(), rel=1e-12)


def _frame(times: list[str], rates: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime(times, utc=True).as_unit("ms"), "funding_rate": rates})


def test_align_funding_window_rule_without_mark():
    opens = pd.Series(pd.date_range("2025-01-01 00:00", periods=4, freq="1h", tz=UTC).as_unit("ms"))
    fb = np.array([10.0, 11.0, 12.0, 13.0])
    f = _frame(["2024-12-31 23:00", "2025-01-01 00:00", "2025-01-01 01:30", "2025-01-01 05:00"],
               [0.05, 0.001, -0.002, 0.07])
    rate, mark = align_funding(opens, "1h", f, None, fb)
    # before open[0]: ignored; == open[0]: bar 0; 01:30 in (01:00, 02:00]: bar 2; after the last open: ignored
    np.testing.assert_array_equal(rate, [0.001, 0.0, -0.002, 0.0])
    np.testing.assert_array_equal(mark, fb)
    rate0, mark0 = align_funding(opens, "1h", None, None, fb)
    assert not rate0.any() and (mark0 == fb).all()
    with pytest.raises(ValueError, match=r"fallback_price has shape \(3,\)"):
        align_funding(opens, "1h", f, None, fb[:3])


def test_align_funding_several_events_per_bar_preserves_payment(funding, mark8h):
    opens = pd.Series(pd.date_range("2025-03-01", periods=5, freq="1D", tz=UTC).as_unit("ms"))
    fb = np.full(5, 1.0)
    rate, mark = align_funding(opens, "1d", funding, mark8h, fb)
    for i in range(1, 5):  # bar i collects the events at 08:00 and 16:00 of day i-1 and 00:00 of day i
        lo, hi = opens[i - 1], opens[i]
        ev = funding[(funding["timestamp"] > lo) & (funding["timestamp"] <= hi)].merge(mark8h, on="timestamp")
        assert len(ev) == 3
        assert mark[i] == ev["open"].iloc[-1]
        assert rate[i] * mark[i] == pytest.approx((ev["open"] * ev["funding_rate"]).sum(), rel=1e-12)
    assert rate[0] == funding.loc[funding["timestamp"] == opens[0], "funding_rate"].iloc[0]
