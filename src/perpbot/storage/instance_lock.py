"""One trading node per account and symbol: a lock held for the life of a live node.

Two ``perpbot run --mode live`` processes on the same exchange account and symbol would both
send orders for one position. :class:`InstanceLock` makes the second one stop before it sends
anything:

* **PostgreSQL ledger** — a session-level advisory lock (``pg_try_advisory_lock``, PostgreSQL
  manual, "Advisory Locks") on one connection kept open while the node runs, so nodes on
  different machines that share the ledger exclude each other. The server frees the lock when
  that connection ends, also when the process is killed.
* **SQLite ledger** — an exclusive ``flock(2)`` on a file in ``lock_dir`` (default: a per-user
  directory under the system temp dir), so nodes on one machine exclude each other whatever
  ledger file they use. The kernel frees it when the process dies (``kill -9`` included).

The key is the exchange id, the account digest of
:func:`perpbot.exchange.reconcile.account_identity` (never the API key itself) and the symbol.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa


class InstanceLockedError(RuntimeError):
    """Another node holds the lock of this account and symbol."""


def lock_key(exchange_id: str, identity: dict, symbol: str) -> str:
    """``"<exchange>|<trading mode>|<account digest>|<symbol>"``: what one node owns."""
    return f"{exchange_id}|{identity.get('trading_mode')}|{identity.get('account')}|{symbol}"


def _advisory_id(key: str) -> int:
    """A signed 64-bit integer from SHA-256 of ``key`` (the argument type of ``pg_try_advisory_lock``)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def default_lock_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"perpbot-locks-{uid}"


class InstanceLock:
    """Context manager holding the node lock of ``key`` on ``ledger_url``'s kind of database.

    Args:
        ledger_url: the ledger's SQLAlchemy URL; ``postgresql*`` uses an advisory lock on that
            server, anything else a file lock in ``lock_dir``.
        key: what is locked (:func:`lock_key`).
        lock_dir: directory of the lock files (SQLite); created when missing.

    Raises :class:`InstanceLockedError` from :meth:`acquire` (and ``__enter__``) when another
    process holds the lock; the message names the key (no secrets in it) and, for a file lock,
    the holder's PID.
    """

    def __init__(self, ledger_url: str, key: str, *, lock_dir: Path | None = None) -> None:
        self.url = ledger_url
        self.key = key
        self.lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        self._conn: Any = None
        self._engine: sa.Engine | None = None
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file (SQLite ledgers)."""
        return self.lock_dir / f"node-{hashlib.sha256(self.key.encode()).hexdigest()[:20]}.lock"

    def acquire(self) -> "InstanceLock":
        if sa.engine.make_url(self.url).get_backend_name() == "postgresql":
            self._acquire_advisory()
        else:
            self._acquire_file()
        return self

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _advisory_id(self.key)})
                self._conn.close()
            finally:
                self._conn = None
                if self._engine is not None:
                    self._engine.dispose()
                    self._engine = None
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "InstanceLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _busy(self, holder: str) -> InstanceLockedError:
        return InstanceLockedError(f"another perpbot node already trades {self.key} ({holder}); "
                                   "stop it first - two nodes on one account would send orders twice")

    def _acquire_advisory(self) -> None:
        self._engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        conn = self._engine.connect()
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _advisory_id(self.key)}).scalar()
        conn.commit()
        if not got:
            conn.close()
            self._engine.dispose()
            self._engine = None
            raise self._busy("PostgreSQL advisory lock held by another session")
        self._conn = conn

    def _acquire_file(self) -> None:
        import fcntl

        self.lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise self._busy(f"lock file {self.path}, PID {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
