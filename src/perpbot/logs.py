"""Structured logging (structlog): JSON lines to a file, readable lines on the console.

Every bot cycle logs its prediction, decision, orders and errors as events with fields;
the file ``<output_dir>/logs/perpbot.jsonl`` keeps them all, the console shows warnings
and errors only (progress bars own the terminal). Secrets never reach a log: settings are
logged through :meth:`perpbot.config.Settings.public_dict`, and any field whose name looks
like a secret is masked by :func:`_mask_secrets`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog

_SECRET_WORDS = ("api_key", "secret", "passphrase", "password", "token")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _mask_secrets(_logger, _method, event_dict):
    for key in list(event_dict):
        if any(w in key.lower() for w in _SECRET_WORDS):
            event_dict[key] = "***"
    return event_dict


class _LazyFileHandler(logging.FileHandler):
    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def configure_logging(log_dir: Path | None, level: str = "info", console_level: str = "warning") -> Path | None:
    """Route structlog to ``log_dir/perpbot.jsonl`` (JSON) and stderr (console renderer).

    Returns the log file path (None when ``log_dir`` is None: console only).
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.DEBUG)
    pre_chain = [structlog.stdlib.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                 _mask_secrets]
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(_LEVELS.get(console_level, logging.WARNING))
    console.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=structlog.dev.ConsoleRenderer(colors=False), foreign_pre_chain=pre_chain))
    root.addHandler(console)
    path = None
    if log_dir is not None:
        path = Path(log_dir) / "perpbot.jsonl"
        fh = _LazyFileHandler(path, encoding="utf-8", delay=True)  # no file (or folder) until a line is logged
        fh.setLevel(_LEVELS.get(level, logging.INFO))
        fh.setFormatter(structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(), foreign_pre_chain=pre_chain))
        root.addHandler(fh)
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *pre_chain,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # httpx logs request URLs at INFO, and Telegram Bot API URLs carry the token: keep them quiet
    for noisy in ("numba", "alembic", "sqlalchemy", "matplotlib", "httpx", "httpcore", "telegram", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def get_logger(name: str = "perpbot"):
    return structlog.get_logger(name)
