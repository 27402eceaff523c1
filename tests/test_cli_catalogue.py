"""The catalogue commands as a user meets them (real subprocesses): ``runs`` (list, show, compare,
delete), ``trades`` in 80 columns, ``new-config`` / ``show-config``, ``list-*``.

The ledger is filled by one real backtest (EMA cross beside the baselines) of 3,000 real SOLUSDT
5m candles; every number shown is checked against what the ledger itself returns.
"""

from __future__ import annotations

import pytest
from _cli_helpers import error_lines, perpbot

NARROW = {"COLUMNS": "80"}


@pytest.fixture(scope="module")
def filled(tmp_path_factory, sol5m, sol_funding_path, sol_mark8h_path):
    d = tmp_path_factory.mktemp("catalogue")
    sol5m.iloc[:3000].to_parquet(d / "candles.parquet")
    (d / "perpbot.toml").write_text(
        f'[perpbot]\ncandles_file = "{d / "candles.parquet"}"\nfunding_file = "{sol_funding_path}"\n'
        f'mark_file = "{sol_mark8h_path}"\noutput_dir = "out"\n')
    proc = perpbot(["backtest", "--strategy", "ema-cross"], d)
    assert proc.returncode == 0, proc.stderr
    from perpbot.storage.ledger import Ledger

    led = Ledger(f"sqlite:///{d / 'out' / 'perpbot.db'}")
    return d, led


def _fits(text: str, width: int = 80) -> None:
    long = [ln for ln in text.splitlines() if len(ln) > width]
    assert not long, long


def test_runs_lists_every_run_in_80_columns(filled):
    d, led = filled
    runs = led.runs()
    assert list(runs["strategy"]) == ["ema-cross", "buy-and-hold", "scoring"]
    proc = perpbot(["runs"], d, NARROW)
    assert proc.returncode == 0, proc.stderr
    _fits(proc.stdout)
    for run in runs.to_dict("records"):
        row = next(ln for ln in proc.stdout.splitlines() if ln.split()[:2] == [str(run["id"]), "backtest"])
        assert run["strategy"] in row and f"{run['metrics']['total_return'] * 100:.2f}%" in row
        assert row.split()[-1] == f"{run['metrics']['trade_count']:.0f}"


def test_trades_fit_80_columns_and_show_the_ledger_values(filled):
    d, led = filled
    trades = led.trades(1)
    assert len(trades) >= 3
    proc = perpbot(["trades", "--run-id", "1", "--limit", "500"], d, NARROW)
    assert proc.returncode == 0, proc.stderr
    _fits(proc.stdout)
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.split() and ln.split()[0].isdigit()]
    assert len(rows) == len(trades)
    first = trades.iloc[0]
    assert rows[0][:3] == ["1", "long" if first.side > 0 else "short", f"{first.entry_time:%m-%d}"]
    assert rows[0][4] == f"{first.entry_price:.3f}" and rows[0][-1] == f"{first.pnl:.2f}"
    wide = perpbot(["trades", "--run-id", "1"], d)  # 200 columns: every column, full dates
    assert "entry_time" in wide.stdout and "qty" in wide.stdout and f"{first.entry_time:%Y-%m-%d}" not in proc.stdout


def test_missing_run_is_one_clear_line_exit_1(filled):
    d, _ = filled
    for args in (["trades", "--run-id", "999"], ["runs", "show", "999"], ["runs", "compare", "1", "999"]):
        proc = perpbot(args, d)
        assert proc.returncode == 1, (args, proc.stderr)
        lines = error_lines(proc)
        assert len(lines) == 1 and lines[0].startswith("error: run 999 is not in the ledger sqlite:///"), lines
        assert "Ledger(" not in lines[0] and "<" not in lines[0]


def test_runs_show_and_compare(filled):
    d, led = filled
    proc = perpbot(["runs", "show", "1"], d, NARROW)
    assert proc.returncode == 0, proc.stderr
    _fits(proc.stdout)
    assert "ema-cross" in proc.stdout and "SOL/USDT:USDT" in proc.stdout
    proc = perpbot(["runs", "compare", "1", "2"], d)
    assert proc.returncode == 0, proc.stderr
    header = next(ln for ln in proc.stdout.splitlines() if "1 ema-cross" in ln)
    assert "2 buy-and-hold" in header
    fees = next(ln for ln in proc.stdout.splitlines() if "fees_paid" in ln)
    assert f"{led.get_run(1)['metrics']['fees_paid']:,.2f} USDT" in fees
    proc = perpbot(["runs", "compare", "1"], d)
    assert proc.returncode == 2 and "at least two run ids" in error_lines(proc)[0]


def test_runs_delete_removes_the_run_and_its_rows_only(tmp_path, filled):
    import shutil

    from perpbot.storage.ledger import Ledger

    d, _ = filled
    shutil.copytree(d, tmp_path / "copy")
    c = tmp_path / "copy"
    led = Ledger(f"sqlite:///{c / 'out' / 'perpbot.db'}")
    kept = len(led.trades(1))
    proc = perpbot(["runs", "delete", "3", "--yes"], c)
    assert proc.returncode == 0 and "deleted run(s) 3" in proc.stdout, proc.stderr
    assert list(led.runs()["id"]) == [1, 2] and len(led.trades(1)) == kept
    import sqlalchemy as sa

    with sa.create_engine(f"sqlite:///{c / 'out' / 'perpbot.db'}").connect() as conn:
        for table in ("trades", "equity", "orders", "fills"):
            assert conn.execute(sa.text(f"select count(*) from {table} where run_id = 3")).scalar() == 0
    proc = perpbot(["runs", "delete", "3", "--yes"], c)
    assert proc.returncode == 1 and "run 3 is not in the ledger" in error_lines(proc)[0]


def test_new_config_loads_back_to_the_defaults(tmp_path, monkeypatch):
    from perpbot.config import SECRET_FIELDS, Settings, load_settings

    proc = perpbot(["new-config", "-o", "conf/perpbot.toml"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "conf" / "perpbot.toml"
    text = path.read_text()
    assert "# --- account and risk" in text and "leverage = 3.0" in text and "allowed: >= 1 and <= 125" in text
    assert "api_key" not in text.replace("PERPBOT_API_KEY", "")
    for name in set(Settings.model_fields) - set(SECRET_FIELDS):  # every setting but the secrets
        assert f"\n{name} = " in text or f"\n# {name} =   (not set)" in text, name
    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("PERPBOT_")]:
        monkeypatch.delenv(key)
    assert load_settings(path).model_dump() == Settings().model_dump()
    again = perpbot(["new-config", "-o", "conf/perpbot.toml"], tmp_path)
    assert again.returncode == 2 and "--force" in error_lines(again)[0]


def test_show_config_tells_where_each_value_came_from_and_masks_secrets(tmp_path):
    (tmp_path / "perpbot.toml").write_text('leverage = 5\nledger_url = "postgresql+psycopg://u:pw1234@h/db"\n')
    proc = perpbot(["show-config"], tmp_path, {"PERPBOT_STOP_LOSS": "0.8", "PERPBOT_API_KEY": "supersecret1",
                                               **NARROW})
    assert proc.returncode == 0, proc.stderr
    _fits(proc.stdout)
    rows = {ln.split()[0]: ln.split()[1:] for ln in proc.stdout.splitlines() if len(ln.split()) >= 3}
    assert rows["leverage"] == ["5.0", "file"] and rows["stop_loss"] == ["0.8", "env"]
    assert rows["taker_fee"] == ["0.06", "default"] and rows["api_key"] == ["***", "env"]
    assert rows["api_secret"] == ["(not", "set)", "default"]
    assert "supersecret1" not in proc.stdout and "pw1234" not in proc.stdout
    changed = perpbot(["show-config", "--changed"], tmp_path, {"PERPBOT_STOP_LOSS": "0.8"})
    names = {ln.split()[0] for ln in changed.stdout.splitlines() if len(ln.split()) >= 3}
    assert {"leverage", "ledger_url", "stop_loss"} <= names and "taker_fee" not in names


def test_show_config_lists_the_platform_settings_and_masks_its_secrets(tmp_path):
    secrets = {"PERPBOT_MASTER_KEY": "MasterKey-5ecret-0123456789abcdef0123456789abc=",
               "PERPBOT_JWT_SECRET": "JwtSecret-5ecret-0123456789abcdef",
               "PERPBOT_CHAIN_RPC_URL": "https://rpc.example/v2/RpcKey-5ecret-42"}
    (tmp_path / "perpbot.toml").write_text('login_max_failures = 7\ncurrency = "USDC"\n')
    proc = perpbot(["show-config"], tmp_path, {**secrets, "PERPBOT_TOKEN_TTL_S": "1800"})
    assert proc.returncode == 0, proc.stderr
    rows = {ln.split()[0]: ln.split()[1:] for ln in proc.stdout.splitlines() if len(ln.split()) >= 3}
    assert rows["master_key"] == ["***", "env"] and rows["jwt_secret"] == ["***", "env"]
    assert rows["chain_rpc_url"] == ["***", "env"] and rows["chain_private_key"] == ["(not", "set)", "default"]
    assert rows["token_ttl_s"] == ["1800", "env"] and rows["login_max_failures"] == ["7", "file"]
    assert rows["currency"] == ['"USDC"', "file"] and rows["login_lockout_s"] == ["900", "default"]
    assert not [v for v in secrets.values() if v in proc.stdout + proc.stderr]
    assert "5ecret" not in proc.stdout + proc.stderr


def test_invalid_platform_setting_is_one_error_line(tmp_path):
    proc = perpbot(["show-config"], tmp_path, {"PERPBOT_TOKEN_TTL_S": "-5",
                                               "PERPBOT_JWT_SECRET": "JwtSecret-5ecret-0123456789abcdef"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert error_lines(proc) == ["error: config error: token_ttl_s = '-5' is invalid: Input should be greater than "
                                 "or equal to 60; allowed: >= 60 and <= 86400 and finite (PERPBOT_TOKEN_TTL_S or "
                                 "'token_ttl_s' in the config file)"]


def test_list_strategies_models_and_data(tmp_path, data_dir):
    from perpbot.ml.models import MODEL_NAMES
    from perpbot.strategy.signals import STRATEGIES

    out = perpbot(["list-strategies"], tmp_path, NARROW)
    assert out.returncode == 0 and {ln.split()[0] for ln in out.stdout.splitlines() if ln.split()} >= set(STRATEGIES)
    out = perpbot(["list-models"], tmp_path, NARROW)
    assert out.returncode == 0 and all(m in out.stdout for m in MODEL_NAMES) and 'perpbot[deep]' in out.stdout
    out = perpbot(["list-data", "--data-dir", data_dir], tmp_path, NARROW)
    assert out.returncode == 0, out.stderr
    _fits(out.stdout)
    # the figures of ../shared/data/README.md
    sol = next(ln.split() for ln in out.stdout.splitlines() if ln.split()[:3] == ["SOLUSDT", "5m", "candles"])
    assert sol[3:] == ["86,400", "2025-04-07", "00:00", "2026-01-31", "23:55"]
    fund = next(ln.split() for ln in out.stdout.splitlines() if ln.split()[:2] == ["SOLUSDT", "funding"])
    assert fund[2:] == ["1,095", "2025-02-01", "00:00", "2026-01-31", "16:00"]
    mark = next(ln.split() for ln in out.stdout.splitlines() if ln.split()[:3] == ["SOLUSDT", "8h", "mark"])
    assert mark[3] == "1,095"
