"""``python -m perpbot`` = the ``perpbot`` command."""

from perpbot.cli.main import app

app(prog_name="perpbot")
