"""Optional dependencies: which pip extra provides which package, and the one-line error when
one is missing.

The core install (``pip install perpbot``) is what ``perpbot demo`` needs: train, backtest, paper
replay, report and ledger on SQLite. Everything else is an extra (``pyproject.toml``):

=============  ==============================================================================
extra          for
=============  ==============================================================================
``api``        ``perpbot serve``: REST/WebSocket API and dashboard (fastapi, uvicorn)
``telegram``   Telegram notifications, the operator bot and the signal bot
``postgres``   a PostgreSQL ledger (``ledger_url = "postgresql+psycopg://..."``)
``exchange``   anything that talks to a venue: ``download``, ``run --mode live``, ``status`` (ccxt)
``intel``      market intelligence: ``collect``, ``signal-bot``, ``pairs`` (exchange + httpx, feeds,
               sentiment)
``xgboost``    the ``xgboost`` and ``ensemble`` models (the CPU build ``xgboost-cpu``)
``deep``       the ``lstm`` model (PyTorch, CPU wheel)
``platform``   the multi-user platform (accounts, wallet, on-chain policy)
``all``        every extra above; ``test`` adds the test tools
=============  ==============================================================================

:func:`require` imports a module or raises :class:`MissingExtraError`; the command line also maps
any ``ModuleNotFoundError`` of a package listed in :data:`EXTRA_OF` to the same one line
(``perpbot.cli.common.handled``), exit code 1 (a runtime error, like the LSTM's missing ``deep``
extra in :mod:`perpbot.ml.lstm`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRA_OF", "MODEL_EXTRA", "MissingExtraError", "extra_for", "missing_extra_message", "require",
           "require_model"]

#: Top-level import name -> the extra that installs it.
EXTRA_OF = {
    "fastapi": "api", "uvicorn": "api", "starlette": "api", "websockets": "api", "multipart": "api",
    "telegram": "telegram", "regex": "telegram",
    "psycopg": "postgres", "psycopg_binary": "postgres",
    "ccxt": "exchange", "aiohttp": "exchange",
    "httpx": "intel", "cachetools": "intel", "feedparser": "intel", "vaderSentiment": "intel",
    "xgboost": "xgboost", "torch": "deep",
    "pwdlib": "platform", "jwt": "platform", "cryptography": "platform", "vyper": "platform", "web3": "platform",
    "eth_tester": "platform", "optuna": "optimize", "quantstats": "tearsheet",
    "ipywidgets": "notebook", "nbclient": "notebook",
}

#: Model name (:data:`perpbot.ml.models.MODEL_NAMES`) -> the module it needs beyond the core.
MODEL_EXTRA = {"xgboost": "xgboost", "ensemble": "xgboost", "lstm": "torch"}


class MissingExtraError(ImportError, ValueError):
    """An optional package is not installed; the message names the pip extra (exit code 1)."""


def extra_for(module: str | None) -> str | None:
    """The extra providing top-level module ``module`` (``"ccxt.pro"`` -> ``"exchange"``), or None."""
    return EXTRA_OF.get((module or "").split(".")[0])


def missing_extra_message(module: str, extra: str, what: str = "") -> str:
    """``ccxt is not installed (needed for ...): pip install "perpbot[exchange]"``."""
    need = f" (needed for {what})" if what else ""
    return f'{module.split(".")[0]} is not installed{need}: pip install "perpbot[{extra}]"'


def require(module: str, what: str = "") -> ModuleType:
    """Import ``module``; when it is missing raise MissingExtraError naming its extra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = (exc.name or module).split(".")[0]
        extra = extra_for(top)
        if extra is None:
            raise
        raise MissingExtraError(missing_extra_message(top, extra, what)) from None


def require_model(name: str) -> None:
    """Refuse a model whose package is not installed, before any work (MissingExtraError)."""
    if name in MODEL_EXTRA:
        require(MODEL_EXTRA[name], f"the {name} model")
