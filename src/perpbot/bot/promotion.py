"""Rolling a retrained model into a running node: ``perpbot models promote FILE``.

The command checks the model against the node's run (same symbol, timeframe, strategy and features
as the model it runs), copies it (with its ``.json`` metadata) under
``<output_dir>/promoted/`` and writes a request file ``promoted/run-<id>.json`` (write-then-rename).
The node (live, or paper on live prices) looks for that file at every candle
(:class:`ModelInbox`: one ``stat``) and, before that candle's decision, loads the model, checks it
again and swaps it into its signal engine (:func:`promote_now`). The request file is then renamed
``run-<id>.applied.json`` or ``run-<id>.refused.json`` (with the reason), so the command's user
can see what happened; the node logs it, publishes a ``model`` event (Telegram, dashboard) and
records a ``model_promoted`` row (value 0, detail JSON {from, to}) in the run's risk events.
Positions stay as they are: the new model decides from the next candle on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from perpbot.data.store import atomic_write
from perpbot.logs import get_logger
from perpbot.ml.metadata import ModelError

log = get_logger("perpbot.promotion")

PROMOTED_DIR = "promoted"


def request_path(output_dir, run_id: int) -> Path:
    """Where the promotion request of run ``run_id`` is written."""
    return Path(output_dir) / PROMOTED_DIR / f"run-{int(run_id)}.json"


def check_compatible(bundle, *, symbol: str, timeframe: str, strategy: str, features_hash: str | None) -> None:
    """Refuse (ModelError, one line) a model that cannot replace the running one: another symbol or
    timeframe (``bundle.market``, written by ``perpbot train``; a model saved without it is refused),
    another strategy, or other features than the running model's ``features_hash``."""
    market = getattr(bundle, "market", None) or {}
    if not market.get("symbol"):
        raise ModelError(f"model {bundle.version} does not record the symbol it was trained on (saved by an "
                         f"older perpbot): retrain it before promoting it")
    for what, have, want in (("symbol", market.get("symbol"), symbol), ("timeframe", market.get("timeframe"),
                                                                         timeframe),
                             ("strategy", getattr(bundle, "strategy", "ai"), strategy)):
        if have != want:
            raise ModelError(f"model {bundle.version} was trained for {what} {have}, the node runs {want}")
    if features_hash is not None and bundle.features_hash != features_hash:
        raise ModelError(f"model {bundle.version} was trained on other features (hash {bundle.features_hash[:12]}) "
                         f"than the running model (hash {features_hash[:12]}): the node computes only those")


def _atomic_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(data, indent=2).encode()))


def queue_promotion(output_dir, run_id: int, model_file, bundle) -> Path:
    """Copy ``model_file`` (and its ``.json``) to ``<output_dir>/promoted/`` and write the request for
    run ``run_id`` (replacing an earlier request not yet taken). Returns the request's path."""
    folder = Path(output_dir) / PROMOTED_DIR
    target = folder / f"run-{int(run_id)}-{bundle.version}{Path(model_file).suffix or '.joblib'}"
    for src, dst in ((Path(model_file), target), (Path(str(model_file) + ".json"), Path(str(target) + ".json"))):
        if src.is_file():
            with src.open("rb") as fin:
                atomic_write(dst, lambda fh, fin=fin: shutil.copyfileobj(fin, fh))
    req = request_path(output_dir, run_id)
    _atomic_json(req, {"run_id": int(run_id), "model_file": str(target.resolve()), "version": bundle.version,
                       "requested_at": pd.Timestamp.now(tz="UTC").isoformat()})
    return req


class ModelInbox:
    """The node's side: :meth:`poll` returns a checked model when a request for its run is waiting."""

    def __init__(self, output_dir, run_id: int, *, symbol: str, timeframe: str, strategy: str) -> None:
        self.path = request_path(output_dir, run_id)
        self.symbol, self.timeframe, self.strategy = symbol, timeframe, strategy

    def poll(self, features_hash: str | None):
        """The requested model (a :class:`~perpbot.ml.registry.ModelBundle`) when a request is waiting
        and the model passes :func:`check_compatible`; None otherwise (no request, or refused: the
        request is renamed ``.refused.json`` with the reason, and logged)."""
        if not self.path.is_file():
            return None
        from perpbot.ml.registry import load_bundle

        req: Any = {}
        try:
            req = json.loads(self.path.read_text())
            bundle = load_bundle(req["model_file"])
            check_compatible(bundle, symbol=self.symbol, timeframe=self.timeframe, strategy=self.strategy,
                             features_hash=features_hash)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # ModelError is a ValueError
            reason = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
            self._close(req, "refused", reason)
            log.error("model_promotion_refused", reason=reason)
            return None
        self._close(req, "applied", None)
        return bundle

    def _close(self, req: Any, outcome: str, reason: str | None) -> None:
        """The request (as read) with its outcome, to ``run-<id>.<outcome>.json``; the request removed."""
        data = dict(req) if isinstance(req, dict) else {}
        data.update(outcome=outcome, at=pd.Timestamp.now(tz="UTC").isoformat(), **({"reason": reason} if reason else {}))
        done = self.path.with_name(self.path.stem + f".{outcome}.json")
        _atomic_json(done, data)
        self.path.unlink(missing_ok=True)


def promote_now(bot, when: pd.Timestamp, bar: int) -> bool:
    """Swap the model of ``bot`` (a paper or live bot with ``inbox``, ``signals``, ``bundle``,
    ``control``, ``ledger``, ``run_id``) when its inbox holds a checked one; True when swapped."""
    inbox = getattr(bot, "inbox", None)
    if inbox is None or bot.bundle is None:
        return False
    new = inbox.poll(bot.bundle.features_hash)
    if new is None:
        return False
    old = bot.bundle.version
    try:
        bot.signals.set_bundle(new)
    except ValueError as exc:  # e.g. a decision rule the model has no tables for
        log.error("model_promotion_refused", reason=str(exc))
        return False
    bot.bundle = new
    log.warning("model_promoted", run_id=bot.run_id, previous=old, model=new.version, candle=str(when))
    bot.control.update_status(model_version=new.version)
    bot.control.events.publish("model", message=f"model {new.version} promoted (was {old}); it decides from "
                                                f"the candle of {when}")
    if bot.ledger is not None and bot.run_id is not None:
        try:
            bot.ledger.record_risk_events(bot.run_id, pd.DataFrame(
                {"time": [when], "bar": [bar], "event": ["model_promoted"], "value": [0.0],
                 "detail": [json.dumps({"from": old, "to": new.version})]}))
        except Exception as exc:  # noqa: BLE001 - the swap happened; the row is informative only
            log.error("model_promotion_not_recorded", error=f"{type(exc).__name__}: {exc}")
    return True
