"""Structured logging (structlog): rotating JSON-line files, readable lines on the console.

Every bot cycle logs its prediction, decision, orders and errors as events with fields;
the file ``<output_dir>/logs/perpbot.jsonl`` keeps them (rotated by size:
``perpbot.jsonl.1`` ... ``.N``, see :func:`configure_logging`), the console shows warnings
and errors only (progress bars own the terminal).

Secrets never reach a log:

- settings are logged through :meth:`perpbot.config.Settings.public_dict`, and any field
  whose name looks like a secret (``token``, ``secret``, ``password`` ...) is masked, in
  nested dicts too (:func:`mask_secrets`);
- every formatted line of every logger, traceback included, goes through
  :func:`redact`: registered secret values (:func:`register_secret`, e.g. the API token) and
  the value of any URL query parameter whose *decoded* name looks like a secret
  (``?token=``, ``?%74oken=``) become ``***``;
- tracebacks are plain Python tracebacks: never with local variables (rich's and structlog's
  "pretty" tracebacks print every frame's locals, request headers included).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import threading
import traceback
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote_plus

import structlog

SECRET_WORDS = ("api_key", "apikey", "secret", "passphrase", "password", "token", "passwd")
MASK = "***"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
#: Rotation defaults (settings ``log_max_bytes`` / ``log_backup_count``): at most 6 x 10 MB on disk.
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_BACKUP_COUNT = 5
#: Registered secret values shorter than this are not replaced in free text (they would mangle
#: unrelated words and numbers).
MIN_SECRET_LENGTH = 6


def is_secret_name(name: str) -> bool:
    """True when a field / parameter name looks like it holds a secret (case-insensitive)."""
    low = name.lower()
    return any(w in low for w in SECRET_WORDS)


# ------------------------------------------------------------------------------------ redaction
_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
# name=value pairs of a URL query (or a key=value log field): the separator before the name, the
# name, then the value up to the next separator (never a backslash: a JSON line stays valid JSON).
# Names are checked after percent-decoding.
_PARAM = re.compile(r"""(?P<lead>^|[?&;\s"'(\[{,])(?P<name>[^=&?;\s"'#<>]{1,200})=(?P<value>['"]?[^&;\s"'#<>?=\\]*)""")


def register_secret(value: str | None) -> None:
    """Redact ``value`` (and its percent-encoded forms) from every log line from now on."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    global _secrets
    forms = {value, quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1]}  # + as in JSON
    with _lock:
        # longest first: a secret that contains another is replaced whole
        _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))


def register_settings_secrets(settings) -> None:
    """Register every secret of ``settings`` (its ``SecretStr`` fields and the password inside
    ``ledger_url``) with :func:`register_secret`."""
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if hasattr(value, "get_secret_value"):
            register_secret(value.get_secret_value())
    url = getattr(settings, "ledger_url", None)
    if url:
        try:
            from sqlalchemy.engine import make_url

            register_secret(make_url(url).password)
        except Exception:  # not a URL SQLAlchemy can parse: the ledger reports that itself
            pass


def _decoded(name: str) -> str:
    for _ in range(3):  # %2574oken -> %74oken -> token
        plain = unquote_plus(name)
        if plain == name:
            break
        name = plain
    return name


def _param(match: re.Match) -> str:
    if not match.group("value") or not is_secret_name(_decoded(match.group("name"))):
        return match.group(0)
    return f"{match.group('lead')}{match.group('name')}={MASK}"


def redact(text: str) -> str:
    """``text`` without registered secrets and without values of secret-named ``name=value`` pairs."""
    for s in _secrets:
        if s in text:
            text = text.replace(s, MASK)
    if "=" in text:
        text = _PARAM.sub(_param, text)
    return text


def _mask(value):
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and is_secret_name(k) and v is not None else _mask(v))
                for k, v in value.items()}
    if type(value) in (list, tuple):  # not namedtuples (exc_info, ...)
        return type(value)(_mask(v) for v in value)
    return value


def mask_secrets(_logger, _method, event_dict):
    """structlog processor: a field whose name looks like a secret is ``***`` (nested dicts too)."""
    for key in list(event_dict):
        if key.startswith("_"):
            continue
        if is_secret_name(key):
            event_dict[key] = MASK
        elif isinstance(event_dict[key], (dict, list, tuple)):
            event_dict[key] = _mask(event_dict[key])
    return event_dict


_mask_secrets = mask_secrets  # the former private name


def _redact_value(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if type(value) in (list, tuple):  # not namedtuples (exc_info, ...)
        return type(value)(_redact_value(v) for v in value)
    return value


def redact_event(_logger, _method, event_dict):
    """structlog processor: :func:`redact` on every string field (nested too), so handlers other than
    ours (a test's, an error tracker's) get redacted event dicts; ours also redact the finished line."""
    for key, value in event_dict.items():
        if not key.startswith("_"):
            event_dict[key] = _redact_value(value)
    return event_dict


def safe_traceback(exc_info) -> str:
    """A plain traceback (file, line, source line, exception): never local variables."""
    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


class RedactFilter(logging.Filter):
    """Redacts a record's message (and pre-renders its traceback, redacted and without locals), so
    every handler of a logger it is attached to sees the redacted record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler
            return True
        if isinstance(record.msg, dict):  # a structlog event dict: the formatter redacts it
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(safe_traceback(record.exc_info))
        return True


REDACT_FILTER = RedactFilter("perpbot.redact")


def redact_logger(name: str) -> None:
    """Attach :data:`REDACT_FILTER` to the logger ``name`` (idempotent)."""
    logger = logging.getLogger(name)
    if REDACT_FILTER not in logger.filters:
        logger.addFilter(REDACT_FILTER)


class _QuietErrors:
    """Handler mixin: a line that cannot be written is reported in one line, without the record (the
    stdlib default prints the record's message and arguments, unredacted, with a traceback)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (the stdlib name)
        try:
            exc = sys.exc_info()[1]
            sys.__stderr__.write(f"perpbot: a log line could not be written ({type(exc).__name__})\n")
        except Exception:
            pass


#: An event logged with ``file_only=True`` goes to the log file, not the console (e.g. the traceback of an
#: internal error, whose one line the command prints itself).
FILE_ONLY = "file_only"


def _not_file_only(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, dict) and record.msg.get(FILE_ONLY))


class _Console(_QuietErrors, logging.StreamHandler):
    pass


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """The structlog formatter, with :func:`redact` applied to the finished line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _RotatingFile(_QuietErrors, logging.handlers.RotatingFileHandler):
    """Size-rotated file that creates its folder only when the first line is written."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


# ------------------------------------------------------------------------------------ setup
def configure_logging(log_dir: Path | None, level: str = "info", console_level: str = "warning", *,
                      max_bytes: int = DEFAULT_MAX_BYTES, backup_count: int = DEFAULT_BACKUP_COUNT) -> Path | None:
    """Route structlog and stdlib logging to ``log_dir/perpbot.jsonl`` (JSON) and stderr (console).

    Args:
        log_dir: folder of the log file (created when the first line is written); None = console only.
        level, console_level: ``debug`` | ``info`` | ``warning`` | ``error`` for the file / the console.
        max_bytes: the file is rotated before a line would make it exceed this size (bytes, > 0):
            ``perpbot.jsonl`` -> ``perpbot.jsonl.1`` -> ... -> ``perpbot.jsonl.<backup_count>``
            (the oldest is deleted), so at most ``(backup_count + 1) * max_bytes`` bytes stay on disk.
        backup_count: rotated files kept (>= 1).

    Returns the log file path (None when ``log_dir`` is None).

    Raises:
        ValueError: ``max_bytes`` < 1 or ``backup_count`` < 1 (the handler would then never rotate).
    """
    if int(max_bytes) < 1 or int(backup_count) < 1:
        raise ValueError(f"log rotation needs max_bytes >= 1 and backup_count >= 1, got {max_bytes}, {backup_count}")
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        if getattr(h, "_perpbot", False):  # ours: release the file; others' handlers are theirs to close
            h.close()
    root.setLevel(logging.DEBUG)
    pre_chain = [structlog.stdlib.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                 mask_secrets, redact_event]
    console = _Console(sys.stderr)
    console.setLevel(_LEVELS.get(console_level, logging.WARNING))
    console.addFilter(_not_file_only)
    console.setFormatter(_RedactingFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)],
        foreign_pre_chain=pre_chain))
    console._perpbot = True
    root.addHandler(console)
    path = None
    if log_dir is not None:
        path = Path(log_dir) / "perpbot.jsonl"
        fh = _RotatingFile(path, maxBytes=int(max_bytes), backupCount=int(backup_count), encoding="utf-8",
                           delay=True)  # no file (or folder) until a line is logged
        fh.setLevel(_LEVELS.get(level, logging.INFO))
        fh.setFormatter(_RedactingFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,  # plain traceback text, no locals
                        structlog.processors.JSONRenderer()],
            foreign_pre_chain=pre_chain))
        fh._perpbot = True
        root.addHandler(fh)
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *pre_chain,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # a server that configured its own handlers and levels (uvicorn's default log config) goes through ours
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        server_logger = logging.getLogger(name)
        for h in list(server_logger.handlers):
            server_logger.removeHandler(h)
        server_logger.propagate = True
        server_logger.setLevel(logging.NOTSET)
    # httpx logs request URLs at INFO, and Telegram Bot API URLs carry the token: keep them quiet
    for noisy in ("numba", "alembic", "sqlalchemy", "matplotlib", "httpx", "httpcore", "telegram", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def get_logger(name: str = "perpbot"):
    return structlog.get_logger(name)


if not structlog.is_configured():
    # Before configure_logging (perpbot used as a library): structlog's own default renders exceptions
    # with rich, locals included. Keep its printing to stdout, with plain tracebacks and redaction.
    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
        structlog.processors.StackInfoRenderer(), structlog.dev.set_exc_info,
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False), mask_secrets, redact_event,
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)])
