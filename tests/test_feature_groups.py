"""Feature groups (perpbot.features.groups) on real data: hand-worked values, look-ahead and
recursive causality of every group (including the BTC / ETH / funding / mark inputs), and the
look-ahead test catching a higher-timeframe join by the HTF bar's open time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perpbot.features import lookahead_violations, perturb_after, recursive_violations
from perpbot.features.asof import asof_rows, asof_take, bar_close_ms
from perpbot.features.groups import (
    GROUP_NAMES, FeatureInputs, compute_groups, group_feature_names, groups_hash, normalize_groups, window_bars,
)
from perpbot.features.htf import htf_bar_features, htf_features, htf_names

ALL = list(GROUP_NAMES)
H = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def inputs(data_dir, funding):
    from perpbot.data import load_candles

    return FeatureInputs(funding=funding, mark=load_candles(data_dir / "SOLUSDT-8h-mark.parquet"),
                         series={"btc": load_candles(data_dir / "BTCUSDT-1h.parquet"),
                                 "eth": load_candles(data_dir / "ETHUSDT-1h.parquet")})


@pytest.fixture(scope="module")
def sub(c5):
    """Two weeks of 5m candles from 2025-06-01 00:00 UTC (row 0)."""
    i = int(np.flatnonzero(c5["timestamp"] == pd.Timestamp("2025-06-01", tz="UTC"))[0])
    out = c5.iloc[i: i + 4032].reset_index(drop=True)
    out.attrs = dict(c5.attrs)
    return out


@pytest.fixture(scope="module")
def feats(sub, inputs):
    return compute_groups(sub, ALL, inputs)


def _row(frame, ts: str) -> int:
    return int(np.flatnonzero(frame["timestamp"] == pd.Timestamp(ts, tz="UTC"))[0])


def test_names_order_hash_and_config_agree():
    from perpbot.config import FEATURE_GROUPS, load_settings
    from perpbot.features.build import feature_names, features_hash

    assert FEATURE_GROUPS == GROUP_NAMES
    assert normalize_groups("regime,candles") == ("candles", "regime")
    with pytest.raises(ValueError, match="unknown feature group 'vibes'"):
        normalize_groups(["vibes"])
    # today's feature set keeps today's hash: models trained before groups load unchanged
    assert groups_hash(["candles"], feature_names()) == features_hash(feature_names())
    assert groups_hash(["candles", "htf"], feature_names()) != features_hash(feature_names())
    assert group_feature_names(["htf"], "5m")[:2] == ["htf15m_logret1", "htf15m_logret3"]
    assert htf_names("1h") == [n for n in htf_names("5m") if n.startswith("htf4h")]  # only levels above 1h
    assert len(group_feature_names(ALL, "5m")) == len(feature_names()) + 18 + 12 + 6 + 6
    assert load_settings(None, features=["regime", "htf"]).features == ["htf", "regime"]


def test_htf_values_against_a_manual_resample(sub, feats):
    """The 1h bar 10:00-11:00 of 2025-06-01, resampled by pandas from the 5m rows, is first seen by
    the 5m row 10:55 (closes 11:00); the row 10:50 still sees the 09:00 bar."""
    s = sub.set_index("timestamp")
    hourly = s.resample("1h", label="left", closed="left").agg({"open": "first", "close": "last"})
    t10, t9, t8 = (pd.Timestamp(f"2025-06-01 {h:02d}:00", tz="UTC") for h in (10, 9, 8))
    r1055, r1050 = _row(sub, "2025-06-01 10:55"), _row(sub, "2025-06-01 10:50")
    # by hand from the file: open of the 10:00 candle, close of the 10:55 candle
    assert hourly.loc[t10, "open"] == sub["open"].iloc[_row(sub, "2025-06-01 10:00")]
    assert hourly.loc[t10, "close"] == sub["close"].iloc[r1055]
    assert feats["htf1h_body"].iloc[r1055] == pytest.approx(hourly.loc[t10, "close"] / hourly.loc[t10, "open"] - 1,
                                                            rel=1e-12)
    assert feats["htf1h_logret1"].iloc[r1055] == pytest.approx(np.log(hourly.loc[t10, "close"] /
                                                                      hourly.loc[t9, "close"]), rel=1e-12)
    assert feats["htf1h_logret1"].iloc[r1050] == pytest.approx(np.log(hourly.loc[t9, "close"] /
                                                                      hourly.loc[t8, "close"]), rel=1e-12)
    # 4h: the 08:00-12:00 bar is seen from the 11:55 row on, not at 11:50
    four = s.resample("4h").agg({"close": "last"})["close"]
    r1155 = _row(sub, "2025-06-01 11:55")
    assert feats["htf4h_logret1"].iloc[r1155] == pytest.approx(np.log(four.iloc[2] / four.iloc[1]), rel=1e-12)
    assert feats["htf4h_logret1"].iloc[r1155 - 1] == pytest.approx(np.log(four.iloc[1] / four.iloc[0]), rel=1e-12)
    # std12 on 1h closes = pandas' sample std of the last 12 hourly log returns
    lr = np.log(hourly["close"]).diff()
    assert feats["htf1h_std12"].iloc[r1055 + 12 * 24] == pytest.approx(
        lr.loc[: t10 + 24 * H].iloc[-12:].std(ddof=1), rel=1e-9)


def test_cross_asset_values_by_hand(sub, feats, inputs):
    btc = inputs.series["btc"].set_index("timestamp")["close"]
    sol = sub.set_index("timestamp")["close"]
    t10, t9 = pd.Timestamp("2025-06-02 10:00", tz="UTC"), pd.Timestamp("2025-06-02 09:00", tz="UTC")
    r = _row(sub, "2025-06-02 10:55")
    assert feats["xa_btc_logret1"].iloc[r] == pytest.approx(np.log(btc[t10] / btc[t9]), rel=1e-12)
    assert feats["xa_btc_logret1"].iloc[r - 1] == pytest.approx(np.log(btc[t9] / btc[t9 - H]), rel=1e-12)
    # relative strength over 24 h: SOL's 5m close at 10:55 vs the previous day's 10:55, minus BTC's
    prev = pd.Timestamp("2025-06-01 10:55", tz="UTC")
    sol_24 = np.log(sol[pd.Timestamp("2025-06-02 10:55", tz="UTC")] / sol[prev])
    assert feats["xa_btc_relstr24"].iloc[r] == pytest.approx(sol_24 - np.log(btc[t10] / btc[t10 - 24 * H]), rel=1e-9)
    # correlation of the last 24 hourly returns (numpy's corrcoef)
    hours = pd.date_range(t10 - 24 * H, t10, freq="1h")
    sol_h = np.array([sol[h + pd.Timedelta(minutes=55)] for h in hours])
    want = np.corrcoef(np.diff(np.log(sol_h)), np.diff(np.log(btc[hours].to_numpy())))[0, 1]
    assert feats["xa_btc_corr24"].iloc[r] == pytest.approx(want, rel=1e-9)


def test_funding_basis_values_by_hand(sub, feats, inputs):
    mark = inputs.mark.set_index("timestamp")
    r = _row(sub, "2025-06-01 07:55")  # closes 08:00, when the 00:00-08:00 mark bar closes
    want = mark.loc[pd.Timestamp("2025-06-01 00:00", tz="UTC"), "close"] / sub["close"].iloc[r] - 1
    assert feats["fb_basis_last"].iloc[r] == pytest.approx(want, rel=1e-12)
    assert feats["fb_basis_last"].iloc[r - 1] != pytest.approx(want, rel=1e-6)  # not known at 07:55
    assert feats["fb_hours_to_funding"].iloc[r - 1] == pytest.approx(5 / 60)
    assert feats["fb_hours_to_funding"].iloc[r] == 8.0
    f = inputs.funding.set_index("timestamp")["funding_rate"]
    t8 = pd.Timestamp("2025-06-01 08:00", tz="UTC")
    assert feats["fb_funding_chg"].iloc[r] == pytest.approx(f[t8] - f[t8 - 8 * H], abs=1e-15)
    last21 = f.loc[:t8].iloc[-21:]
    assert feats["fb_funding_mean21"].iloc[r] == pytest.approx(last21.mean(), rel=1e-12)
    assert feats["fb_funding_z21"].iloc[r] == pytest.approx((f[t8] - last21.mean()) / last21.std(ddof=1), rel=1e-9)


def test_regime_values_by_hand(sub, feats):
    lr = np.log(sub["close"]).diff()
    rv = lr.rolling(288).std(ddof=1)
    t = 3000
    assert feats["reg_rv_1d"].iloc[t] == pytest.approx(rv.iloc[t], rel=1e-9)
    assert feats["reg_rv_rank"].iloc[t] == pytest.approx((rv.iloc[t - 575: t + 1] <= rv.iloc[t]).mean(), rel=1e-12)
    assert np.isnan(feats["reg_rv_rank"].iloc[3 * 288 - 2]) and np.isfinite(feats["reg_rv_rank"].iloc[3 * 288 - 1])
    c = sub["close"].to_numpy()
    assert feats["reg_efficiency"].iloc[t] == pytest.approx(abs(c[t] - c[t - 48]) / np.abs(np.diff(c[t - 48: t + 1])).sum())


def _perturb_inputs(base: FeatureInputs):
    """perturb_after for the candles AND every input series: each value not yet known at the
    close of row t (bars closing later, funding events settled later) is changed too."""
    def perturb(candles, t, rng):
        out = perturb_after(candles, t, rng)
        known = int(bar_close_ms(candles.iloc[[t]])[0])
        series = {}
        for k, frame in base.series.items():
            j = int(np.searchsorted(bar_close_ms(frame), known, side="right")) - 1
            series[k] = perturb_after(frame, j, rng)
        j = int(np.searchsorted(bar_close_ms(base.mark), known, side="right")) - 1
        fund = base.funding.copy()
        late = fund["timestamp"].dt.as_unit("ms").astype("int64") > known
        fund.loc[late, "funding_rate"] += rng.normal(0, 1e-4, late.sum())
        out.attrs["inputs"] = FeatureInputs(funding=fund, mark=perturb_after(base.mark, j, rng), series=series)
        return out
    return perturb


def test_every_group_passes_lookahead_with_its_inputs_perturbed(sub, inputs):
    fn = lambda d: compute_groups(d, ALL, d.attrs.get("inputs", inputs))  # noqa: E731
    assert lookahead_violations(fn, sub, [0, 100, 1000, 2017, 2018, 3500, 4030], perturb=_perturb_inputs(inputs)) == []
    # the perturbation reaches the inputs: a join that reads the next BTC hour is caught
    def peek(d):
        f = compute_groups(d, ["cross_asset"], d.attrs.get("inputs", inputs))
        return f.shift(-12)  # the value 12 candles later: the next hour's BTC bar
    assert "xa_btc_logret1" in lookahead_violations(peek, sub, [1000, 2000], perturb=_perturb_inputs(inputs))


def test_lookahead_test_catches_an_htf_join_by_open_time(sub):
    """Joining each HTF bar by its OPEN time shows a 5m row the hour still forming: its close
    (and range, returns ...) come from candles after the row. The standing test must fail it."""
    def leaky(d):
        ts_ms = d["timestamp"].dt.as_unit("ms").astype("int64").to_numpy()
        from perpbot.data.resample import resample_candles
        out = {}
        for lvl in ("1h", "4h"):
            bars = resample_candles(d, lvl)
            idx = asof_rows(ts_ms, bars["timestamp"].dt.as_unit("ms").astype("int64").to_numpy())  # the leak
            for x, v in htf_bar_features(bars).items():
                out[f"htf{lvl}_{x}"] = asof_take(v, idx)
        return pd.DataFrame(out)

    caught = lookahead_violations(leaky, sub, [100, 1000, 2500])
    assert {"htf1h_body", "htf1h_logret1", "htf4h_body", "htf4h_range_pos12"} <= set(caught)
    assert lookahead_violations(htf_features, sub, [100, 1000, 2500]) == []  # the close-time join passes


def test_every_group_recursive_on_the_trailing_window(c5, inputs):
    window = window_bars(ALL, "5m")
    assert window == 1000  # the live window (settings.live_window) suffices
    part = c5.iloc[-20_000:].reset_index(drop=True)
    part.attrs = dict(c5.attrs)
    fn = lambda d: compute_groups(d, ALL, inputs)  # noqa: E731
    assert recursive_violations(fn, part, window, list(range(window + 1, len(part), 997)) + [len(part) - 1]) == []
    # the window matters: 300 candles are too few for the 4h level and the regime rank
    short = recursive_violations(lambda d: compute_groups(d, ["htf", "regime"]), part, 300, range(1000, 6000, 499))
    assert {"htf4h_std12", "reg_rv_rank"} <= set(short) and "htf15m_logret1" not in short


@pytest.mark.parametrize("tf", ["15m", "1h"])
def test_groups_at_higher_timeframes_are_causal(c5, inputs, tf):
    from perpbot.data.resample import resample_candles

    bars = resample_candles(c5.iloc[-30_000:].reset_index(drop=True), tf)
    fn = lambda d: compute_groups(d, ALL, d.attrs.get("inputs", inputs))  # noqa: E731
    n = len(bars)
    assert lookahead_violations(fn, bars, [n // 3, n // 2, n - 2], perturb=_perturb_inputs(inputs)) == []
    assert recursive_violations(lambda d: compute_groups(d, ALL, inputs), bars, window_bars(ALL, tf),
                                [n - 301, n - 1]) == []


def test_inputs_digest_keys_the_probability_cache_to_the_extra_series(inputs):
    from perpbot.features.groups import inputs_digest

    assert inputs_digest(["candles", "htf", "regime"], inputs) == ""  # today's cache keys unchanged
    d = inputs_digest(["candles", "cross_asset"], inputs)
    assert d.startswith(":") and len(d) == 17 and d != inputs_digest(["funding_basis"], inputs)
    btc = inputs.series["btc"].copy()
    btc.loc[btc.index[-1], "close"] *= 1.001
    other = FeatureInputs(inputs.funding, inputs.mark, {"btc": btc, "eth": inputs.series["eth"]})
    assert inputs_digest(["cross_asset"], other) != inputs_digest(["cross_asset"], inputs)
