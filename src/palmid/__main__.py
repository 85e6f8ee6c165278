"""``python -m palmid`` is the ``palmid`` command."""

from palmid.cli.main import app

app()
