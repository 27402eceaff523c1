"""Backtest jobs of the API: a queue worked by one background thread, one job at a time.

``POST /api/v1/backtests`` queues a job; the worker loads the market from the settings
(:func:`perpbot.data.market.load_market_for`), keeps the last ``last_bars`` candles when
given, runs :func:`perpbot.app.jobs.backtest_job` (recording to the ledger) and writes the
HTML report to ``<output_dir>/reports/<job_id>.html``. A failure (missing data, no saved
model for ``ai``: the :class:`perpbot.ml.registry.ModelError` message, a ledger that stayed
locked past its retries ...) marks the job ``failed`` with a one-line message in ``error``;
nothing half-written stays in the ledger (a run whose rows could not be written is marked
``failed``), and the worker goes on with the next job: no job can stop it or the bot beside it.
"""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from perpbot.api.models import clean
from perpbot.logs import get_logger

log = get_logger("perpbot.api")

#: Jobs waiting at most (a POST beyond this gets 429).
MAX_QUEUED = 20
#: Jobs remembered (the oldest finished ones are forgotten beyond this; reports stay on disk).
MAX_KEPT = 500


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (a database error's driver message, without the
    SQL statement and parameters SQLAlchemy appends)."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return lines[0] if lines else ""


class QueueFull(RuntimeError):
    """Too many backtests are waiting."""


@dataclass
class Job:
    """One backtest job; times UTC."""

    job_id: str
    strategy: str
    last_bars: int | None
    status: str = "queued"
    run_ids: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    report: Path | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "status": self.status, "strategy": self.strategy, "last_bars": self.last_bars,
                "run_ids": dict(self.run_ids), "metrics": clean(self.metrics), "error": self.error,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "report_url": f"/api/v1/backtests/{self.job_id}/report" if self.status == "finished" else None}


class BacktestJobs:
    """Queue of backtest jobs over ``ctx`` (a :class:`perpbot.bot.context.BotContext`).

    The worker thread starts with the first job and is a daemon; :meth:`close` stops it after
    the running job (a backtest cannot be interrupted midway).
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False

    def report_path(self, job_id: str) -> Path:
        return Path(self.ctx.settings.output_dir) / "reports" / f"{job_id}.html"

    def submit(self, strategy: str, last_bars: int | None = None) -> Job:
        """Queue a job; raises :class:`QueueFull` when ``MAX_QUEUED`` jobs already wait."""
        job = Job(job_id=uuid.uuid4().hex, strategy=strategy, last_bars=last_bars)
        with self._lock:
            if self._closed:
                raise QueueFull("the API is shutting down: no new backtests")
            waiting = sum(1 for j in self._jobs.values() if j.status == "queued")
            if waiting >= MAX_QUEUED:
                raise QueueFull(f"{waiting} backtests are already queued (at most {MAX_QUEUED}); try again later")
            self._forget_old()
            self._jobs[job.job_id] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="perpbot-api-backtests", daemon=True)
                self._thread.start()
        self._queue.put(job)
        log.info("backtest_queued", job_id=job.job_id, strategy=strategy, last_bars=last_bars)
        return job

    def get(self, job_id: str) -> dict[str, Any] | None:
        """A snapshot of the job (see :meth:`Job.to_dict`), or None when unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.to_dict()

    def report(self, job_id: str) -> tuple[str | None, Path | None]:
        """(status or None when unknown, report path once finished)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None, None
            return job.status, job.report if job.status == "finished" else None

    def close(self, timeout: float = 0.0) -> None:
        """Stop taking jobs and cancel the queued ones; the worker ends after its current job
        (waited for up to ``timeout`` s)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._queue.put(None)
        if thread is not None and timeout > 0:
            thread.join(timeout)

    # ------------------------------------------------------------------ worker
    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.status in ("finished", "failed")]
        for j in done[: max(0, len(self._jobs) - MAX_KEPT + 1)]:
            del self._jobs[j.job_id]

    def _set(self, job: Job, **fields: Any) -> None:
        with self._lock:
            for k, v in fields.items():
                setattr(job, k, v)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._closed:  # the API shut down: queued jobs are not started
                self._set(job, status="failed", error="cancelled: the API shut down before it started",
                          finished_at=datetime.now(timezone.utc))
                continue
            self._set(job, status="running", started_at=datetime.now(timezone.utc))
            try:
                run_ids, metrics, report = self._run(job)
            except BaseException as exc:  # every failure is reported on the job, none kills the worker
                known = type(exc).__name__ in ("DataError", "ModelError", "ModelMismatchError", "ConfigError") \
                    or isinstance(exc, (ValueError, FileNotFoundError))
                message = str(exc) if known else f"{type(exc).__name__}: {one_line(exc)}"
                self._set(job, status="failed", error=message, finished_at=datetime.now(timezone.utc))
                log.warning("backtest_failed", job_id=job.job_id, strategy=job.strategy, error=message,
                            exc_info=not known)
                continue
            self._set(job, status="finished", run_ids=run_ids, metrics=metrics, report=report,
                      finished_at=datetime.now(timezone.utc))
            log.info("backtest_finished", job_id=job.job_id, strategy=job.strategy, run_ids=run_ids)

    def _run(self, job: Job) -> tuple[dict[str, int], dict[str, dict], Path]:
        from perpbot.app.jobs import backtest_job
        from perpbot.data.market import load_market_for

        settings = self.ctx.settings
        market = load_market_for(settings)
        n = len(market.candles)
        if job.last_bars is not None and job.last_bars < n:
            market = market.slice(n - job.last_bars)
        out = backtest_job(settings, [job.strategy], market=market, ledger=lambda: self.ctx.ledger,
                           report=self.report_path(job.job_id))
        metrics = {name: clean(run.metrics) for name, run in out.runs.items()}
        return dict(out.run_ids), metrics, Path(out.report)
