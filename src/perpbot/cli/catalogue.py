"""Registers the catalogue commands on the ``perpbot`` app: ``runs``, ``new-config``,
``show-config``, ``list-strategies``, ``list-models``, ``list-data`` (one place, so
:mod:`perpbot.cli.main` only calls :func:`register`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from perpbot.cli.config_commands import new_config, show_config
    from perpbot.cli.listing import list_data, list_models, list_strategies
    from perpbot.cli.runs import runs_app

    app.add_typer(runs_app, name="runs")
    app.command("new-config")(new_config)
    app.command("show-config")(show_config)
    app.command("list-strategies")(list_strategies)
    app.command("list-models")(list_models)
    app.command("list-data")(list_data)
