"""Secrets never reach any output channel, on error paths or on success.

Every secret (the bot's and the multi-user platform's) is set with a recognisable value and
``ledger_url`` carries a password (PostgreSQL: SQLite URLs have none; the local test server trusts
any password, so the successful runs really use it). Real subprocesses of the CLI then hit bad configurations, an
unreachable ledger, a train / backtest with ``--report`` / paper replay / trades / report /
status, and every channel is searched for every secret: stdout, stderr, every file written
(JSON logs, HTML reports, model metadata), every row of every ledger table, and the REST API
(``/api/v1/config``, status, balance, metrics, trades, served by uvicorn).
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
import sqlalchemy as sa
from _cli_helpers import error_lines, perpbot

PG_URL = os.environ.get("PERPBOT_TEST_POSTGRES_URL")
PASSWORD = "PgPass-5ecretW0rd"
SECRETS = {
    "PERPBOT_API_KEY": "ApiKey-4f1c9e-SECRET",
    "PERPBOT_API_SECRET": "ApiSecret-77ab02-SECRET",
    "PERPBOT_API_PASSPHRASE": "Passphrase-c3d9-SECRET",
    "PERPBOT_TELEGRAM_TOKEN": "123456:TgToken-a9f3e1-SECRET",
    "PERPBOT_SMTP_PASSWORD": "SmtpPass-0b7e-SECRET",
    "PERPBOT_API_TOKEN": "ApiToken-e6d2c8f4a1b3-7b9d0c5e-SECRET",
    # the multi-user platform's (settings like the others since issue 12)
    "PERPBOT_MASTER_KEY": "MasterKey-3a8f0d-SECRET",
    "PERPBOT_JWT_SECRET": "JwtSecret-91c4b7e2d5a8f0c3-SECRET",
    "PERPBOT_CHAIN_RPC_URL": "https://rpc.example/v2/RpcKey-5d1e-SECRET",
    "PERPBOT_CHAIN_PRIVATE_KEY": "0xChainKey-b27f-SECRET",
    # the market-intelligence key and the signal bot's Telegram token (issue 11)
    "PERPBOT_COINGLASS_API_KEY": "CoinGlassKey-6e2a-SECRET",
    "PERPBOT_SIGNAL_BOT_TOKEN": "777777:SignalTok-d41c-SECRET",
}
VALUES = [*SECRETS.values(), PASSWORD]


@pytest.fixture(scope="module")
def pg_schema():
    """A fresh PostgreSQL schema (dropped afterwards) and the ledger URL with a password in it."""
    if not PG_URL:
        if os.environ.get("PERPBOT_REQUIRE_POSTGRES") == "1":
            pytest.fail("PERPBOT_TEST_POSTGRES_URL is not set (PERPBOT_REQUIRE_POSTGRES=1 makes this a failure)")
        pytest.skip("set PERPBOT_TEST_POSTGRES_URL to test secret masking with a PostgreSQL ledger")
    schema = f"pbsecret_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        msg = f"PostgreSQL at PERPBOT_TEST_POSTGRES_URL unreachable: {str(exc.orig).strip().splitlines()[0]}"
        if os.environ.get("PERPBOT_REQUIRE_POSTGRES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    url = (sa.engine.make_url(PG_URL).set(password=PASSWORD)
           .update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False))
    assert PASSWORD in url
    yield {"url": url, "schema": schema, "admin": admin}
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def ledger_rows(pg) -> dict[str, list[str]]:
    """Every row of every table of the test schema, as text."""
    out = {}
    with pg["admin"].connect() as conn:
        tables = conn.execute(sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                              {"s": pg["schema"]}).scalars().all()
        for t in tables:
            out[t] = [repr(tuple(r)) for r in conn.execute(sa.text(f'SELECT * FROM "{pg["schema"]}"."{t}"'))]
    return out


def leaks(text: str) -> list[str]:
    return [v for v in VALUES if v in text]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, sol5m, sol_funding_path, sol_mark8h_path):
    d = tmp_path_factory.mktemp("secrets")
    sol5m.iloc[:6000].to_parquet(d / "candles.parquet")
    (d / "perpbot.toml").write_text(
        "[perpbot]\n"
        f'candles_file = "{d / "candles.parquet"}"\nfunding_file = "{sol_funding_path}"\n'
        f'mark_file = "{sol_mark8h_path}"\nmodel = "logreg"\ntrain_days = 8\ntest_days = 5\noutput_dir = "out"\n'
        "telegram_chat_ids = [42]\n")
    return d


def test_no_secret_in_any_output_channel(workdir, pg_schema):
    env = {**SECRETS, "PERPBOT_LEDGER_URL": pg_schema["url"]}
    unreachable = pg_schema["url"].replace("127.0.0.1:5432", "127.0.0.1:1")
    assert unreachable != pg_schema["url"]
    masked = "postgresql+psycopg://postgres:***@127.0.0.1:5432/test"
    steps = [
        # error paths: a field error, a check across fields (its input is every value, secrets
        # included), a ledger URL with a bad dialect, an unreachable ledger, a missing live run
        (["backtest"], {"PERPBOT_SYMBOL": "BADSYM"}, 2),
        (["backtest"], {"PERPBOT_MIN_NOTIONAL": "900000"}, 2),
        (["trades"], {"PERPBOT_LEDGER_URL": pg_schema["url"].replace("postgresql+psycopg", "postgresqlx")}, 2),
        (["trades"], {"PERPBOT_LEDGER_URL": unreachable}, 1),
        (["trades"], {"PERPBOT_LEDGER_URL": "postgres ql://postgres:" + PASSWORD + "@x/y"}, 2),
        (["status", "--no-exchange"], {}, 1),
        # successful runs on the ledger whose URL carries the password
        (["train"], {}, 0),
        (["backtest", "--report", "out/report.html"], {}, 0),
        (["run", "--replay", "candles.parquet", "--last", "600", "--strategy", "ema-cross"], {}, 0),
        (["trades"], {}, 0),
        (["report", "--output", "out/report2.html"], {}, 0),
    ]
    shown_masked = 0
    for args, extra, code in steps:
        proc = perpbot(args, workdir, {**env, **extra})
        assert proc.returncode == code, (args, proc.stderr[-3000:])
        if code:
            assert len(error_lines(proc)) == 1 and "Traceback" not in proc.stderr, (args, proc.stderr[-3000:])
        assert leaks(proc.stdout) == [] and leaks(proc.stderr) == [], (args, proc.stdout, proc.stderr)
        shown_masked += (proc.stdout + proc.stderr).count("postgres:***@")
    assert shown_masked >= 3  # the URL is shown (masked) by the error lines, the backtest and the paper run

    files = [p for p in workdir.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"perpbot.jsonl", "report.html", "report2.html", "logreg.joblib.json"} <= names, names
    for path in files:
        data = path.read_bytes()
        assert [v for v in VALUES if v.encode() in data] == [], path

    rows = ledger_rows(pg_schema)
    assert len(rows["runs"]) == 5 and len(rows["trades"]) > 0  # 4 backtest runs + 1 paper run
    for table, lines in rows.items():
        assert leaks("\n".join(lines)) == [], table
    with pg_schema["admin"].connect() as conn:
        configs = conn.execute(sa.text(f'SELECT config FROM "{pg_schema["schema"]}".runs')).scalars().all()
    for config in configs:
        config = config if isinstance(config, dict) else json.loads(config)
        assert config["ledger_url"].startswith(masked) and not any(k in config for k in ("api_key", "api_token"))
        assert config["login_max_failures"] == 5
        assert not any(k in config for k in ("master_key", "jwt_secret", "coinglass_api_key", "signal_bot_token"))


def test_api_never_shows_a_secret(workdir, pg_schema, monkeypatch):
    import httpx
    from _api_helpers import serving

    from perpbot.api import create_app
    from perpbot.bot.context import BotContext
    from perpbot.bot.control import BotControl
    from perpbot.bot.events import EventBus
    from perpbot.config import load_settings

    for key, value in {**SECRETS, "PERPBOT_LEDGER_URL": pg_schema["url"]}.items():
        monkeypatch.setenv(key, value)
    s = load_settings(workdir / "perpbot.toml", output_dir=workdir / "api-out")
    assert s.api_key.get_secret_value() == SECRETS["PERPBOT_API_KEY"]
    token = SECRETS["PERPBOT_API_TOKEN"]
    auth = {"Authorization": f"Bearer {token}"}
    with serving(create_app(BotContext(s, BotControl(EventBus())), token)) as base, \
            httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
        config = client.get("/api/v1/config", headers=auth)
        assert config.status_code == 200
        assert config.json()["ledger_url"].startswith("postgresql+psycopg://postgres:***@127.0.0.1:5432/test")
        assert config.json()["oracle_venues"] == ["binanceusdm", "okx"] and "jwt_secret" not in config.json()
        for path in ("/api/v1/config", "/api/v1/status", "/api/v1/balance", "/api/v1/metrics", "/api/v1/trades"):
            r = client.get(path, headers=auth)
            assert leaks(r.text) == [], path
