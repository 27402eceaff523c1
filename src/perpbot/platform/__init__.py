"""perpbot.platform: several users on one perpbot — accounts and roles, an encrypted store of
their exchange keys, risk profiles, a double-entry wallet, an oracle guard before entries,
trade validation by a Vyper contract, and a hash-chained journal.

Modules (each one job): db (base, exact money type, engine), models / ledger_models (tables),
access (passwords, JWTs, API keys, lockout, audit), keystore (Fernet-encrypted exchange keys,
master-key rotation), profiles (risk profiles, per-profile backtests, user stats), wallet
(double-entry movements), chain (journal hash chain, ``verify_journal``), oracle (price
cross-check), contract (the TradePolicy contract on an EVM), trading (lock -> validate -> send
-> settle, crash reconciliation), service (:class:`Platform`, everything wired together).

Install with the ``platform`` extra (``pip install perpbot[platform]``). The tables are created
by the ledger's Alembic migrations (``0003_platform``). This package never imports
``perpbot.bot`` or ``perpbot.cli``.
"""
