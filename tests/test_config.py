"""Settings rules in-process: masking of URL passwords, one policy for unknown keys, list formats.

(The command-line side of every rule, exit codes and messages, is in test_bad_input.py and
test_secrets.py through real subprocesses.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perpbot.config import ConfigError, Settings, load_settings
from perpbot.config_sources import NON_SETTING_ENV, NON_SETTING_ENV_PREFIXES, env_settings_names
from perpbot.masking import mask_url, redact_text

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql+psycopg://bot:Hunter2-pw@db.example:5432/ledger"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No PERPBOT_* settings from the caller's environment and no perpbot.toml in the cwd."""
    import os

    for key in list(os.environ):
        if key.upper().startswith("PERPBOT_") and key.upper() not in NON_SETTING_ENV \
                and not key.upper().startswith(NON_SETTING_ENV_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_public_dict_masks_the_ledger_password(clean_env):
    s = load_settings(None, ledger_url=PG + "?sslmode=require")
    public = s.public_dict()
    assert public["ledger_url"] == "postgresql+psycopg://bot:***@db.example:5432/ledger?sslmode=require"
    assert s.ledger_display == public["ledger_url"]
    assert s.ledger == PG + "?sslmode=require"  # the ledger itself still connects with the password
    assert "Hunter2-pw" not in repr(public)


def test_password_in_a_query_parameter_is_masked_too():
    assert mask_url("postgresql+psycopg://bot@h/db?password=Hunter2-pw&sslmode=require") == \
        "postgresql+psycopg://bot@h/db?password=***&sslmode=require"
    assert mask_url("sqlite:///runs/perpbot.db") == "sqlite:///runs/perpbot.db"
    assert mask_url("not a url but user:pw@x") == "not a url but user:pw@x"
    assert mask_url("weird ://u:Hunter2-pw@h") == "weird ://u:***@h"


def test_redact_text_removes_secret_values_and_url_passwords():
    env = {"PERPBOT_API_KEY": "k-123456", "PERPBOT_API_TOKEN": "tok-abcdef", "PERPBOT_SMTP_PASSWORD": "ab"}
    text = "key k-123456 token tok-abcdef url postgresql://u:Hunter2-pw@h/db short ab"
    assert redact_text(text, env) == "key *** token *** url postgresql://u:***@h/db short ab"


def test_error_across_fields_never_echoes_the_input(clean_env):
    clean_env.setenv("PERPBOT_API_SECRET", "Sekr1t-value")
    clean_env.setenv("PERPBOT_LEDGER_URL", PG)
    with pytest.raises(ConfigError) as err:
        load_settings(None, min_notional=999_999.0)
    msg = str(err.value)
    assert msg == ("config error: min_notional = 999999 USDT is more than the largest position starting_capital x "
                   "leverage = 3000 USDT: no order could ever be placed")


def test_unparsable_ledger_url_is_not_repeated(clean_env):
    with pytest.raises(ConfigError) as err:
        load_settings(None, ledger_url="bot:Hunter2-pw@db.example/ledger")
    assert "Hunter2-pw" not in str(err.value) and "ledger_url = (not shown) is invalid: not a database URL" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_settings(None, ledger_url="mysqlx://bot:Hunter2-pw@db.example/ledger")
    assert "ledger_url = 'mysqlx://bot:***@db.example/ledger' is invalid: unknown database dialect" in str(err.value)


def test_chat_ids_from_the_environment_accept_comma_and_json_lists(clean_env):
    for raw, want in (("123,-1001234567890", [123, -1001234567890]), ("[7, 8]", [7, 8]), ("42", [42]), ("", [])):
        clean_env.setenv("PERPBOT_TELEGRAM_CHAT_IDS", raw)
        assert load_settings(None).telegram_chat_ids == want, raw
    clean_env.setenv("PERPBOT_EMAIL_TO", "a@x.org, b@y.org")
    assert load_settings(None).email_to == ["a@x.org", "b@y.org"]


def test_unknown_variable_policy_is_case_insensitive_and_lists_every_unknown():
    fields = Settings.model_fields
    assert env_settings_names(fields, {"perpbot_leverage": "3", "PERPBOT_REQUIRE_X": "1", "HOME": "/"}) == {"leverage"}
    with pytest.raises(ConfigError, match=r"perpbot_levrage \(did you mean PERPBOT_LEVERAGE\?\), PERPBOT_ZZZ:"):
        env_settings_names(fields, {"perpbot_levrage": "3", "PERPBOT_ZZZ": "1"})


def test_every_perpbot_variable_the_project_reads_is_a_setting_or_allowed():
    """A new ``PERPBOT_*`` variable read anywhere in the code, CI or benchmarks must be a setting
    or be added to NON_SETTING_ENV: otherwise users setting it would get an unknown-key error."""
    sources = [*ROOT.joinpath("src").rglob("*.py"), *ROOT.joinpath("benchmarks").rglob("*.py"),
               ROOT / "tests" / "conftest.py", *ROOT.joinpath(".ci").glob("*"), ROOT / "Makefile"]
    names = set()
    for path in sources:
        if path.is_file():
            names |= set(re.findall(r"PERPBOT_[A-Z][A-Z0-9_]*", path.read_text(errors="replace")))
    assert {"PERPBOT_CONFIG", "PERPBOT_CONFIRM_REAL_MONEY", "PERPBOT_DATA_DIR", "PERPBOT_API_TOKEN"} <= names
    unknown = sorted(n for n in names if n[len("PERPBOT_"):].lower() not in Settings.model_fields
                     and n not in NON_SETTING_ENV and not n.startswith(NON_SETTING_ENV_PREFIXES))
    assert unknown == []


def test_numbers_must_be_finite_and_never_booleans(clean_env):
    for bad in ({"lot_size": float("inf")}, {"tick_size": 1e-300}, {"leverage": True}, {"cooldown_bars": False},
                {"trailing_stop": float("nan")}, {"starting_capital": float("inf")}):
        with pytest.raises(ConfigError):
            load_settings(None, **bad)
    assert load_settings(None, leverage=5, funding=True).leverage == 5.0  # ints stay fine, bools for bool fields


def test_optional_files_accept_none_as_text(clean_env):
    s = load_settings(None, funding_file="none", mark_file="None", intrabar_file="", model_path="NONE")
    assert (s.funding_file, s.mark_file, s.intrabar_file, s.model_path) == (None, None, None, None)


#: one value of every platform setting, as environment variables (names users already set)
PLATFORM_ENV = {"PERPBOT_MASTER_KEY": "MasterKey-5ecret-0123456789abcdef0123456789abc=",
                "PERPBOT_JWT_SECRET": "JwtSecret-5ecret-0123456789abcdef",
                "PERPBOT_CHAIN_RPC_URL": "https://rpc.example/v2/RpcKey-5ecret-42",
                "PERPBOT_CHAIN_PRIVATE_KEY": "0xChainKey-5ecret-feedbeef",
                "PERPBOT_TOKEN_TTL_S": "1800", "PERPBOT_LOGIN_MAX_FAILURES": "7", "PERPBOT_LOGIN_LOCKOUT_S": "120",
                "PERPBOT_LOGIN_RATE_LIMIT": "40", "PERPBOT_ORACLE_MAX_DEVIATION_BPS": "25",
                "PERPBOT_ORACLE_MAX_AGE_S": "10.5", "PERPBOT_ORACLE_MIN_SOURCES": "2",
                "PERPBOT_ORACLE_VENUES": '["okx", "bybit"]', "PERPBOT_LOCK_TIMEOUT_S": "90", "PERPBOT_CURRENCY": "USDC",
                "PERPBOT_CHAIN_CONTRACT": "0x00000000000000000000000000000000000000aa"}
PLATFORM_SECRETS = ("PERPBOT_MASTER_KEY", "PERPBOT_JWT_SECRET", "PERPBOT_CHAIN_RPC_URL", "PERPBOT_CHAIN_PRIVATE_KEY")


def test_platform_settings_are_main_settings_read_from_their_environment_variables(clean_env):
    """Every platform variable is a setting of the main Settings under its old name; the secrets are
    SecretStr, left out of public_dict and masked in every message."""
    import json

    from perpbot.config import SECRET_FIELDS
    from perpbot.masking import SECRET_ENV

    for key, value in PLATFORM_ENV.items():
        clean_env.setenv(key, value)
    s = load_settings(None)
    assert (s.token_ttl_s, s.login_max_failures, s.login_lockout_s, s.login_rate_limit) == (1800, 7, 120, 40)
    assert (s.oracle_max_deviation_bps, s.oracle_max_age_s, s.oracle_min_sources) == (25.0, 10.5, 2)
    assert (s.oracle_venues, s.lock_timeout_s, s.currency) == (["okx", "bybit"], 90.0, "USDC")
    assert s.chain_contract == "0x00000000000000000000000000000000000000aa"
    for key in PLATFORM_SECRETS:
        name = key.removeprefix("PERPBOT_").lower()
        assert name in SECRET_FIELDS and getattr(s, name).get_secret_value() == PLATFORM_ENV[key]
        assert PLATFORM_ENV[key] not in repr(s) and PLATFORM_ENV[key] not in str(s)
    public = json.dumps(s.public_dict())
    assert not any(PLATFORM_ENV[key] in public for key in PLATFORM_SECRETS)
    assert not set(SECRET_FIELDS) & set(s.public_dict())
    assert set(SECRET_ENV) == {f"PERPBOT_{name.upper()}" for name in SECRET_FIELDS}  # redact_text knows each
    assert redact_text(f"x {PLATFORM_ENV['PERPBOT_JWT_SECRET']} y") == "x *** y"
    assert "PERPBOT_TOKEN_TTL_S" not in NON_SETTING_ENV  # a setting now, not an allowed stray variable


def test_platform_setting_from_the_config_file_and_the_environment_beats_it(clean_env, tmp_path):
    (tmp_path / "perpbot.toml").write_text('[perpbot]\ntoken_ttl_s = 1800\nlogin_max_failures = 7\n'
                                           'oracle_venues = ["okx", "bybit"]\ncurrency = "USDC"\n')
    s = load_settings(None)  # ./perpbot.toml
    assert (s.token_ttl_s, s.login_max_failures, s.oracle_venues, s.currency) == (1800, 7, ["okx", "bybit"], "USDC")
    clean_env.setenv("PERPBOT_TOKEN_TTL_S", "600")
    clean_env.setenv("PERPBOT_ORACLE_VENUES", '["binanceusdm"]')
    s = load_settings(tmp_path / "perpbot.toml")
    assert (s.token_ttl_s, s.login_max_failures, s.oracle_venues, s.currency) == (600, 7, ["binanceusdm"], "USDC")
    assert Settings().token_ttl_s == 600  # the environment alone (Settings never reads the file itself)


def test_platform_secret_in_the_config_file_is_refused_without_its_value(clean_env, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('jwt_secret = "JwtSecret-5ecret-0123456789abcdef"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == (f"config file {path} contains 'jwt_secret': secrets are read only from the environment "
                              "(PERPBOT_JWT_SECRET); remove it from the file")


@pytest.mark.parametrize("source", ["env", "file"])
def test_invalid_platform_value_is_one_clear_line(clean_env, tmp_path, source):
    if source == "env":
        clean_env.setenv("PERPBOT_TOKEN_TTL_S", "-5")
        shown = "'-5'"
    else:
        (tmp_path / "perpbot.toml").write_text("token_ttl_s = -5\n")
        shown = "-5"
    with pytest.raises(ConfigError) as err:
        load_settings(None)
    assert str(err.value) == (f"config error: token_ttl_s = {shown} is invalid: Input should be greater than or "
                              "equal to 60; allowed: >= 60 and <= 86400 and finite (PERPBOT_TOKEN_TTL_S or "
                              "'token_ttl_s' in the config file)")


def test_platform_currency_must_be_a_currency_code(clean_env):
    with pytest.raises(ConfigError) as err:
        load_settings(None, currency="usdt")
    assert str(err.value) == ("config error: currency = 'usdt' is invalid: String should match pattern "
                              "'^[A-Z0-9]{1,16}$' (PERPBOT_CURRENCY or 'currency' in the config file)")


def test_invalid_platform_secret_is_masked_in_the_error(clean_env):
    with pytest.raises(ConfigError) as err:
        load_settings(None, master_key=12345678)
    assert str(err.value) == ("config error: master_key = *** is invalid: Input should be a valid string "
                              "(PERPBOT_MASTER_KEY or 'master_key' in the config file)")


def test_misspelt_platform_variable_is_unknown_with_a_suggestion(clean_env):
    clean_env.setenv("PERPBOT_TOKEN_TTL", "600")
    with pytest.raises(ConfigError, match=r"unknown environment variable PERPBOT_TOKEN_TTL \(did you mean "
                                          r"PERPBOT_TOKEN_TTL_S\?\)"):
        load_settings(None)
