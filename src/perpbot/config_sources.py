"""Where settings come from, and how a bad one is told: the TOML file, the environment, errors.

Used by :mod:`perpbot.config` (which re-exports :class:`ConfigError`); kept free of the
``Settings`` class itself so the rules read in one place:

* :func:`read_toml` — settings all at top level or all under ``[perpbot]`` (mixing both is an
  error naming the stray keys); UTF-8 with an optional byte-order mark; secrets and unknown
  keys refused.
* :func:`env_settings_names` — every ``PERPBOT_*`` variable must name a setting or be one of
  :data:`NON_SETTING_ENV` / :data:`NON_SETTING_ENV_PREFIXES`; an unknown one is an error with
  a "did you mean" suggestion (the same policy as an unknown TOML key). Values are never shown.
* :func:`format_validation_error` — one line: field, value (secrets ``***``, URL passwords
  masked), reason, allowed range, where to set it.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import ValidationError

from perpbot.masking import MASK, mask_url, redact_text

__all__ = ["NON_SETTING_ENV", "NON_SETTING_ENV_PREFIXES", "ConfigError", "env_settings_names",
           "format_validation_error", "is_numeric", "read_toml"]

#: ``PERPBOT_*`` environment variables perpbot reads that are not settings: the config file,
#: the real-money confirmation, and the data folder of the tests and benchmarks.
NON_SETTING_ENV = ("PERPBOT_CONFIG", "PERPBOT_CONFIRM_REAL_MONEY", "PERPBOT_DATA_DIR")
#: Prefixes of the test-suite switches (``PERPBOT_REQUIRE_DATA``, ``PERPBOT_TEST_POSTGRES_URL`` ...).
NON_SETTING_ENV_PREFIXES = ("PERPBOT_REQUIRE_", "PERPBOT_TEST_")


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line for the user (exit code 2)."""


def is_numeric(annotation: Any) -> bool:
    """int / float, or an Optional of one (bool, an int subclass, excluded)."""
    types = get_args(annotation) or (annotation,)
    return any(t in (int, float) for t in types) and bool not in types


def suggest(name: str, known: Collection[str], spell=repr) -> str:
    """`` (did you mean 'x'?)`` for the closest known name (difflib), or ""."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {spell(close[0])}?)" if close else ""


# ------------------------------------------------------------------------------------ sources
def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}
    return names.get(type(value), f"a {type(value).__name__}")


def read_toml(path: Path, fields: Collection[str], secret_fields: Collection[str]) -> dict[str, Any]:
    """The settings of a TOML file as a dict (keys checked against ``fields``).

    Raises ConfigError naming the file for: missing, a folder, unreadable, not UTF-8 (a
    byte-order mark is accepted), not TOML, ``perpbot`` not a table, settings both at top
    level and under ``[perpbot]``, a secret in the file, an unknown key.
    """
    try:
        raw_bytes = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw_bytes[: exc.start].count(b"\n") + 1
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{raw_bytes[exc.start]:02x} on line {line}); "
                          "save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if "perpbot" in raw:
        if not isinstance(raw["perpbot"], dict):
            raise ConfigError(f"config file {path}: 'perpbot' must be a table ([perpbot] followed by the settings), "
                              f"not {_toml_type(raw['perpbot'])}")
        stray = [k for k in raw if k != "perpbot"]
        if stray:
            raise ConfigError(f"config file {path} has settings both under [perpbot] and at top level "
                              f"({', '.join(stray)}): put every setting under [perpbot] (the two are never merged)")
        data = dict(raw["perpbot"])
    else:
        data = dict(raw)
    for key in secret_fields:
        if key in data:
            raise ConfigError(
                f"config file {path} contains '{key}': secrets are read only from the environment "
                f"(PERPBOT_{key.upper()}); remove it from the file")
    unknown = [k for k in data if k not in fields]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}{suggest(unknown[0], fields)}{more}")
    return data


def env_settings_names(fields: Collection[str], environ: Mapping[str, str] | None = None) -> set[str]:
    """Names of the settings the environment sets (``PERPBOT_LEVERAGE`` -> ``leverage``),
    case-insensitively as pydantic-settings reads them.

    Raises ConfigError listing every ``PERPBOT_*`` variable that is neither a setting nor in
    :data:`NON_SETTING_ENV` / :data:`NON_SETTING_ENV_PREFIXES` (never its value).
    """
    environ = os.environ if environ is None else environ
    names, unknown = set(), []
    for key in environ:
        upper = key.upper()
        if not upper.startswith("PERPBOT_"):
            continue
        name = upper[len("PERPBOT_"):].lower()
        if name in fields:
            names.add(name)
        elif upper not in NON_SETTING_ENV and not upper.startswith(NON_SETTING_ENV_PREFIXES):
            unknown.append((key, name))
    if unknown:
        shown = ", ".join(f"{key}{suggest(name, fields, lambda n: 'PERPBOT_' + n.upper())}"
                          for key, name in sorted(unknown, key=lambda kn: kn[0].upper()))
        raise ConfigError(f"config error: unknown environment variable {shown}: it is not a perpbot setting "
                          "(unset or rename it)")
    return names


# ------------------------------------------------------------------------------------ errors
def _field_range(field) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            val = getattr(meta, attr, None)
            if val is not None:
                parts.append(f"{sym} {val:g}" if isinstance(val, float) else f"{sym} {val}")
    ann = field.annotation
    args = getattr(ann, "__args__", None)
    if getattr(ann, "__origin__", None) is Literal or (args and all(isinstance(a, str) for a in args)):
        parts.append("one of " + ", ".join(repr(a) for a in args))
    if parts and is_numeric(ann):
        parts.append("finite")
    return " and ".join(parts)


def _shown_value(name: str, value: Any, secret_fields: Collection[str]) -> str:
    """The offending value as a message shows it: secrets ***, URLs masked, long values cut."""
    if name in secret_fields:
        return MASK
    if name == "ledger_url" and isinstance(value, str):
        from sqlalchemy.engine import make_url

        try:
            make_url(value)
        except Exception:  # unparsable: a password in it could not be found and masked
            return "(not shown)"
    if name == "ledger_url" or (isinstance(value, str) and "://" in value):
        return repr(mask_url(str(value)))
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def format_validation_error(exc: ValidationError, model_fields: Mapping[str, Any],
                            secret_fields: Collection[str]) -> str:
    """First error of a pydantic ValidationError as one line: field, value, reason, allowed range.

    A whole-settings (model-level) error never echoes its input (the input is every value,
    secrets included); secret fields show ``***``; URL passwords are masked; the line is
    passed through :func:`perpbot.masking.redact_text` last.
    """
    err = exc.errors()[0]
    loc_t = tuple(err.get("loc", ()))
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if not loc_t:
        return redact_text(f"config error: {msg}")
    loc = ".".join(str(p) for p in loc_t)
    name = str(loc_t[0])
    if err.get("type") == "extra_forbidden":
        return redact_text(f"config error: unknown setting {loc!r}{suggest(name, model_fields)}")
    text = f"config error: {loc} = {_shown_value(name, err.get('input'), secret_fields)} is invalid: {msg}"
    field = model_fields.get(name)
    allowed = _field_range(field) if field is not None else ""
    if allowed and err.get("type") != "value_error":
        text += f"; allowed: {allowed}"
    if field is not None:
        text += f" (PERPBOT_{name.upper()} or '{name}' in the config file)"
    return redact_text(text)


def parse_chat_ids(value: Any) -> list[int]:
    """A list of integers; from the environment "123,-456", "[123, -456]" or "123"."""
    if isinstance(value, str):
        text = value.strip().removeprefix("[").removesuffix("]")
        value = [p.strip() for p in text.split(",") if p.strip()]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list of integer chat ids like [123456789, -1001234567890]")
    out = []
    for item in value:
        if isinstance(item, str) and item.strip().lstrip("+-").isdigit():
            item = int(item)
        if not isinstance(item, int) or isinstance(item, bool):
            raise ValueError(f"chat id {str(item)[:40]!r} is not an integer (Telegram chat ids look like "
                             "123456789, groups -1001234567890)")
        out.append(item)
    return out
