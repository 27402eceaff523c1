"""``perpbot new-config`` and ``perpbot show-config``: the settings file a user starts from, and
what the bot will actually use.

* :func:`default_config_text` writes every setting of :class:`perpbot.config.Settings` with its
  default, description and allowed range, grouped by the ``# --- section ---`` comments of the
  class's source, so the example never drifts from the model (a test loads it back and gets the
  defaults). Secrets are left out (environment only); a setting whose default is "not set" is a
  commented line.
* :func:`effective_settings` lists each setting's effective value and where it came from:
  ``default``, ``file`` or ``env`` (``PERPBOT_<NAME>``). Secrets show ``***`` when set; the
  ledger URL's password is masked (:func:`perpbot.masking.mask_url`).
"""

from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from perpbot.cli.common import ConfigOpt, UsageError, check_output_file, console, handled

_SECTION = re.compile(r"^\s+# --- (.+?) -+\s*$")
_FIELD = re.compile(r"^    (\w+)\s*:")


def _sections() -> dict[str, str]:
    """Field name -> the ``# --- section ---`` comment above it in the source, for every setting, in the
    order they are shown: the Settings class's own fields, then those of its field groups
    (:class:`perpbot.config_values.ExecutionSettings`, ``PlatformSettings``) in the order of its bases."""
    from pydantic import BaseModel

    from perpbot.config import Settings

    out: dict[str, str] = {}
    for cls in Settings.__mro__:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__.startswith("perpbot.")):
            continue
        current = "settings"
        for line in inspect.getsource(cls).splitlines():
            m = _SECTION.match(line)
            if m:
                current = m.group(1).strip()
                continue
            m = _FIELD.match(line)
            if m and m.group(1) in Settings.model_fields:
                out.setdefault(m.group(1), current)
    return out | {name: "settings" for name in Settings.model_fields if name not in out}


def toml_value(value: Any) -> str:
    """A JSON-mode settings value as TOML (strings JSON-escaped, which TOML basic strings accept)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def default_config_text() -> str:
    """The commented ``perpbot.toml`` of every non-secret setting at its default (see module doc)."""
    from perpbot import __version__
    from perpbot.config import OPTIONAL_FILES, SECRET_FIELDS, Settings
    from perpbot.config_sources import _field_range

    defaults = Settings.model_construct().model_dump(mode="json")
    sections = _sections()
    lines = [f"# perpbot.toml: every setting with its default (perpbot {__version__}, from `perpbot new-config`).",
             "# Precedence: command-line flags > PERPBOT_<NAME> environment variables > this file > defaults.",
             "# Secrets (" + ", ".join(f"PERPBOT_{k.upper()}" for k in SECRET_FIELDS) + ")",
             "# are read only from the environment and are refused in this file.", "", "[perpbot]"]
    last = None
    for name, section in sections.items():
        field = Settings.model_fields[name]
        if name in SECRET_FIELDS:
            continue
        if section != last:
            last = section
            lines += ["", f"# --- {last} " + "-" * max(3, 70 - len(last or ""))]
        note = field.description or ""
        allowed = _field_range(field)
        if allowed:
            note += ("; " if note else "") + f"allowed: {allowed}"
        if note:
            lines.append(f"# {note}")
        value = defaults[name]
        if value is None and name in OPTIONAL_FILES:
            lines.append(f'{name} = "none"')
        elif value is None:
            lines.append(f"# {name} =   (not set)")
        else:
            lines.append(f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def effective_settings(config: Optional[Path]) -> tuple[list[tuple[str, str, str]], str | None]:
    """``[(name, shown value, source)]`` for every setting, and the config file read (or None).

    Raises ConfigError exactly as the other commands do (a bad file or value: exit 2).
    """
    from perpbot.config import DEFAULT_CONFIG_FILE, SECRET_FIELDS, Settings, load_settings
    from perpbot.config_sources import env_settings_names, read_toml
    from perpbot.masking import MASK

    s = load_settings(config)
    path = config or os.environ.get("PERPBOT_CONFIG") or (DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).exists()
                                                          else None)
    in_file = set(read_toml(Path(path), Settings.model_fields, SECRET_FIELDS)) if path else set()
    in_env = env_settings_names(Settings.model_fields)
    public = s.public_dict()
    rows = []
    for name in _sections():  # every setting, grouped as in the Settings source
        source = "env" if name in in_env else "file" if name in in_file else "default"
        if name in SECRET_FIELDS:
            shown = MASK if getattr(s, name) is not None else "(not set)"
        else:
            value = public[name]
            shown = "(not set)" if value is None else toml_value(value)
        rows.append((name, shown, source))
    return rows, (str(path) if path else None)


def new_config(output: Path = typer.Option(Path("perpbot.toml"), "--output", "-o", help="file to write"),
               force: bool = typer.Option(False, "--force", help="overwrite an existing file")) -> None:
    """Write a commented perpbot.toml with every setting and its default."""
    with handled():
        check_output_file(output, "--output")
        if output.exists() and not force:
            raise UsageError(f"--output {output} exists; use --force to overwrite it")
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(default_config_text(), encoding="utf-8")
        console.print(f"wrote {output} (every setting at its default; edit what you need)")


def show_config(config: Optional[Path] = ConfigOpt,
                changed: bool = typer.Option(False, "--changed", help="only settings not at their default")) -> None:
    """Effective settings and where each came from (default, file, env); secrets masked."""
    with handled():
        rows, path = effective_settings(config)
        shown = [r for r in rows if r[2] != "default"] if changed else rows
        t = Table(title=f"settings (file: {path or 'none'})", box=box.SIMPLE_HEAD)
        t.add_column("setting", no_wrap=True)
        t.add_column("value", overflow="fold")
        t.add_column("source", no_wrap=True)
        for name, value, source in shown:
            t.add_row(name, value, source)
        console.print(t)
