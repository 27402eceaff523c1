"""Operator commands of the multi-user platform (:mod:`perpbot.platform`), on the ledger database:

* ``perpbot journal verify`` — recompute the hash-chained journal of wallet entries, orders and
  fills (:func:`perpbot.platform.chain.verify_journal`); with a chain configured
  (``PERPBOT_CHAIN_RPC_URL`` …) also against the head anchored in the TradePolicy contract.
  Exit 0 when intact, 1 with one line per finding (kind, table, row id) otherwise.
* ``perpbot platform create-admin NAME`` — the first administrator (password from a hidden
  prompt, or one line on stdin with ``--password-stdin``).
* ``perpbot platform rotate-key`` — re-encrypt every stored exchange key from the current
  ``PERPBOT_MASTER_KEY`` to a new Fernet key read from a hidden prompt or stdin; one transaction,
  nothing changed on any error. Afterwards set ``PERPBOT_MASTER_KEY`` to the new key.

Secrets are never printed or logged; errors are one ``error:`` line (exit 2 usage/config, 1 runtime).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from perpbot.cli.common import ConfigOpt, UsageError, UserError, console, handled, settings_for

journal_app = typer.Typer(no_args_is_help=True, help="The platform's tamper-evident journal.")
platform_app = typer.Typer(no_args_is_help=True, help="Administer the multi-user platform.")


def _platform_engine(config: Optional[Path]):
    try:
        from perpbot.platform.db import open_engine
    except ImportError as exc:  # the platform extra is not installed
        raise UserError(f'the platform needs its extra: pip install "perpbot[platform]" ({exc.name} missing)') from None
    s = settings_for(config)
    return s, open_engine(s.ledger)


def _secret_input(prompt: str, from_stdin: bool, confirm: bool) -> str:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    if not value:
        raise UsageError(f"{prompt.lower()}: empty input")
    return value


@journal_app.command("verify")
def journal_verify(config: Optional[Path] = ConfigOpt,
                   as_json: bool = typer.Option(False, "--json", help="print the report as JSON")) -> None:
    """Check every journal link and covered row; exit 1 naming each altered, deleted or inserted row."""
    from perpbot.platform.chain import verify_journal

    with handled():
        s, engine = _platform_engine(config)
        try:
            anchor = None
            if s.chain_rpc_url:
                from perpbot.platform.contract import PolicyChain

                if not (s.chain_contract and s.chain_private_key):
                    raise UsageError("PERPBOT_CHAIN_RPC_URL needs PERPBOT_CHAIN_CONTRACT and PERPBOT_CHAIN_PRIVATE_KEY")
                anchor = PolicyChain.connect(s.chain_rpc_url.get_secret_value(), s.chain_contract,
                                             s.chain_private_key.get_secret_value()).head()
            report = verify_journal(engine, anchor=anchor)
        finally:
            engine.dispose()
        if as_json:
            console.print_json(json.dumps(report.as_dict()))
        elif report.ok:
            where = f", anchored link {report.anchored_seq} matches the chain" if report.anchored_seq else ""
            console.print(f"journal intact: {report.links} links, head {report.head_seq} "
                          f"{report.head_hash[:16]}…{where} ({s.ledger_display})", highlight=False)
        else:
            for p in report.problems:
                console.print(f"{p.kind}: {p.detail}", highlight=False, soft_wrap=True)
            console.print(f"journal NOT intact: {len(report.problems)} finding(s) in {report.links} links",
                          highlight=False)
        if not report.ok:
            raise typer.Exit(1)


@platform_app.command("create-admin")
def create_admin(username: str = typer.Argument(..., help="3-64 characters: letters, digits, '_', '.', '-'"),
                 config: Optional[Path] = ConfigOpt,
                 password_stdin: bool = typer.Option(False, "--password-stdin",
                                                     help="read the password (10-256 characters) from stdin")) -> None:
    """Create an administrator account (the first one, or another)."""
    with handled():
        _, engine = _platform_engine(config)
        try:
            import secrets

            from perpbot.platform.access import Access, AccessInputError

            password = _secret_input("Password", password_stdin, confirm=True)
            signer = secrets.token_urlsafe(32)  # creating a user signs no token: a throwaway JWT key
            try:
                user = Access(engine, signer).create_user(username, password, role="admin", client="cli")
            except AccessInputError as exc:
                raise UsageError(str(exc)) from None
        finally:
            engine.dispose()
        console.print(f"admin {user.username!r} created (user id {user.id})", highlight=False)


@platform_app.command("rotate-key")
def rotate_key(config: Optional[Path] = ConfigOpt,
               new_key_stdin: bool = typer.Option(False, "--new-key-stdin",
                                                  help="read the new Fernet key from stdin")) -> None:
    """Re-encrypt every stored exchange key from PERPBOT_MASTER_KEY to a new master key."""
    from perpbot.platform.keystore import ENV_VAR, KeyStoreError, rotate_master_key

    with handled():
        s, engine = _platform_engine(config)
        try:
            old = s.master_key.get_secret_value() if s.master_key is not None else ""
            if not old:
                raise UsageError(f"set {ENV_VAR} to the current master key (the one the stored keys are encrypted "
                                 "with)")
            new = _secret_input("New master key", new_key_stdin, confirm=False)
            try:
                n = rotate_master_key(engine, old, new)
            except KeyStoreError as exc:
                raise UserError(str(exc)) from None
        finally:
            engine.dispose()
        console.print(f"{n} exchange key(s) re-encrypted; now set {ENV_VAR} to the new key "
                      "(keep the old one until every node restarted)", highlight=False)
