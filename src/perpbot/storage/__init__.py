"""perpbot.storage: the run ledger (SQLAlchemy 2 models, Alembic migrations, reader/writer API).

``Ledger(url)`` is the entry point; see :mod:`perpbot.storage.ledger`. Modules: models (tables),
ledger (the API; its writers), readers, lifecycle (start / finish / abandoned / resumed runs),
owner (which process owns a run, is it alive), convert (frames <-> rows, JSON, redaction,
trades -> orders/fills), db (engines, SQLite locking and retries, migrations, bulk inserts),
migrations/ (Alembic scripts, no alembic.ini needed).
"""

from __future__ import annotations

from perpbot.storage.convert import LedgerError, LedgerInputError, UnknownRunError, redact, to_jsonable
from perpbot.storage.db import alembic_config
from perpbot.storage.ledger import Ledger, LedgerConflictError, split_fees

__all__ = ["Ledger", "LedgerError", "LedgerConflictError", "LedgerInputError", "UnknownRunError",
           "alembic_config", "redact", "to_jsonable", "split_fees"]
