"""The paper job: replayed candles through the paper bot, recorded to the ledger, resumable.

``paper_job`` runs a replay; ``check_resumable`` / ``resumable_paper_run`` find and check an
abandoned paper run to continue from its checkpoint.
"""

from __future__ import annotations

import pandas as pd

from perpbot.app.jobs import Progress, check_strategies
from perpbot.data.market import MarketData, check_enough_candles
from perpbot.logs import get_logger

log = get_logger("perpbot.jobs")


def paper_job(settings, market: MarketData, strategy: str, *, bundle=None, ledger=None,
              progress: Progress = None, flush_every: int = 100, control=None, resume_run: int | None = None):
    """Replay ``market.candles`` through the paper bot; returns (bot, run_id).

    ``control``: a :class:`perpbot.bot.control.BotControl` shared with operator interfaces
    (pause / resume / force-exit, status, events); a private one when None.
    Raises ValueError for an unknown strategy and DataError for fewer candles than
    ``warmup_bars + 10``, before the run is recorded.

    ``resume_run``: continue that abandoned paper run (its process died, or it was interrupted)
    from its checkpoint instead of starting a new run: same strategy, settings, model and
    candles (``ValueError`` otherwise, before anything is written); its metrics then cover the
    whole run, read back from the ledger.

    An interruption (Ctrl-C, :class:`perpbot.bot.paper.ReplayInterrupted`) leaves the run
    ``abandoned`` (resumable); any other error marks it ``failed``. Ledger write failures
    during the replay do not stop it (see :mod:`perpbot.bot.paper_ledger`).
    """
    from perpbot.bot.paper import PaperBot, ReplayInterrupted
    from perpbot.strategy.signals import is_model_strategy

    check_strategies([strategy])
    check_enough_candles(market, settings.warmup_bars)
    model = is_model_strategy(strategy)

    c = market.candles
    run_id = None
    if resume_run is not None:
        if ledger is None:
            raise ValueError("resuming a paper run needs its ledger")
        run_id = int(resume_run)
        check_resumable(ledger.get_run(run_id), settings, market, strategy, bundle)
    elif ledger is not None:
        ts = c["timestamp"]
        run_id = ledger.start_run("paper", strategy, settings.symbol, settings.timeframe,
                                  exchange=settings.exchange, config=settings.public_dict(),
                                  model_version=getattr(bundle, "version", None) if model else None,
                                  features_hash=getattr(bundle, "features_hash", None) if model else None,
                                  data_range=(ts.iloc[0], ts.iloc[-1]), note=f"replay of {market.source}")
    bot = PaperBot(settings, strategy, bundle=bundle, funding=market.funding, mark=market.mark,
                   ledger=ledger, run_id=run_id, flush_every=flush_every, control=control,
                   series=loop_series(settings, market, bundle if model else None))
    start = 0
    if resume_run is not None:
        start = bot.restore(ledger.get_run(run_id)["checkpoint"], c)  # checks it all before the claim
        ledger.resume_run(run_id)
        log.info("paper_resumed", run_id=run_id, from_candle=start, candle_time=str(c["timestamp"].iloc[start - 1]))
    cols = [c[k].to_numpy() for k in ("open", "high", "low", "close", "volume")]
    stamps = list(c["timestamp"])
    n = len(c)
    try:
        for i in range(start, n):
            bot.on_candle(stamps[i], float(cols[0][i]), float(cols[1][i]), float(cols[2][i]), float(cols[3][i]),
                          float(cols[4][i]))
            if progress is not None:
                progress(i + 1, n)
        bot.finish()
    except BaseException as exc:
        if ledger is not None:
            end_interrupted_run(ledger, bot, run_id, exc, interrupted=isinstance(exc, (KeyboardInterrupt,
                                                                                         ReplayInterrupted)))
        raise
    if ledger is not None and run_id is not None:
        record_paper_metrics(settings, ledger, bot, run_id, c, bundle if model else None)
    return bot, run_id


def record_paper_metrics(settings, ledger, bot, run_id: int, candles: pd.DataFrame, bundle=None) -> None:
    """End a paper run in the ledger: the realised labels of the model's calls whose horizon passed
    (``bundle`` given), then status ``finished`` with the run's trading metrics (the whole run as
    recorded when it was resumed)."""
    from perpbot.ml.trading_metrics import trading_metrics

    if bundle is not None:
        from perpbot.ml.outcomes import settle_predictions

        settle_predictions(ledger, run_id, candles, bundle.label_settings, settings.atr_period)
    if bot.resumed_at is None:
        res = bot.exchange.result()
        equity, trades, position = res.equity, res.trades, res.position
    else:  # the whole run, as recorded (the exchange only holds the candles since the resume)
        eq = ledger.equity(run_id, full=True)
        equity, trades, position = eq["equity"], ledger.trades(run_id), eq["position_qty"].to_numpy()
    ledger.finish_run(run_id, status="finished",
                      metrics=trading_metrics(equity, trades, settings.starting_capital, position=position))


def loop_series(settings, market: MarketData, bundle) -> dict:
    """Other assets' candles a model's feature groups need in a paper replay (from the files)."""
    from perpbot.features.groups import load_inputs

    groups = getattr(bundle, "feature_groups", None) or ["candles"]
    return load_inputs(settings, market, groups).series if bundle is not None else {}


def end_interrupted_run(ledger, bot, run_id: int | None, exc: BaseException, *, interrupted: bool) -> None:
    """Write what the bot still holds, then mark the run abandoned (interrupted: resumable) or
    failed. A ledger that refuses even that leaves the run ``running`` (abandoned at the next
    start once this process is gone); the original error is what propagates."""
    try:
        bot.flush()
        if interrupted:
            ledger.abandon_run(run_id, f"interrupted: {type(exc).__name__}: {exc}".rstrip(": "))
        else:
            ledger.finish_run(run_id, status="failed")
    except Exception as err:  # noqa: BLE001 - never mask the original error
        log.error("paper_run_not_closed", run_id=run_id, error=f"{type(err).__name__}: {err}")


def check_resumable(run: dict, settings, market: MarketData, strategy: str, bundle=None) -> None:
    """Raise ValueError unless ``run`` is a paper run of this strategy, symbol, timeframe,
    model, settings and replayed candles, with a checkpoint to continue from (a trial restore
    of the checkpoint on a bot that records nothing). Writes nothing."""
    from perpbot.bot.paper import PaperBot

    rid = run["id"]
    if run["kind"] != "paper":
        raise ValueError(f"run {rid} is a {run['kind']} run: only paper runs can be resumed this way")
    if run["status"] not in ("running", "abandoned"):
        raise ValueError(f"run {rid} is {run['status']}: only an abandoned paper run can be resumed")
    for what, have, want in (("strategy", run["strategy"], strategy), ("symbol", run["symbol"], settings.symbol),
                             ("timeframe", run["timeframe"], settings.timeframe)):
        if have != want:
            raise ValueError(f"run {rid} replayed {what} {have}, not {want}")
    if strategy == "ai" and run["model_version"] != getattr(bundle, "version", None):
        raise ValueError(f"run {rid} used model {run['model_version']}, the loaded model is "
                         f"{getattr(bundle, 'version', None)}")
    ts = market.candles["timestamp"]
    if (pd.Timestamp(run["data_range_start"]), pd.Timestamp(run["data_range_end"])) != (ts.iloc[0], ts.iloc[-1]):
        raise ValueError(f"run {rid} replayed the candles {run['data_range_start']} .. {run['data_range_end']}, "
                         f"these are {ts.iloc[0]} .. {ts.iloc[-1]} (same file and --last needed)")
    if not run.get("checkpoint"):
        raise ValueError(f"run {rid} has no checkpoint to continue from (nothing recorded yet, or written by an "
                         f"older version): start a new run")
    trial = PaperBot(settings, strategy, bundle=bundle, funding=market.funding, mark=market.mark,
                     series=loop_series(settings, market, bundle))
    try:
        trial.restore(run["checkpoint"], market.candles)
    except ValueError as exc:
        raise ValueError(f"run {rid} cannot be resumed: {exc}") from None


def resumable_paper_run(ledger, settings, strategy: str) -> int | None:
    """The latest abandoned paper run of ``strategy`` on the settings' symbol and timeframe
    (runs of dead processes are marked abandoned first), or None."""
    ledger.mark_abandoned()
    runs = ledger.runs()
    if not len(runs):
        return None
    mine = runs[(runs["kind"] == "paper") & (runs["status"] == "abandoned") & (runs["strategy"] == strategy)
                & (runs["symbol"] == settings.symbol) & (runs["timeframe"] == settings.timeframe)]
    return int(mine["id"].iloc[-1]) if len(mine) else None
