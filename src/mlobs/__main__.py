"""`python -m mlobs` runs the CLI."""

from mlobs.cli import app

app()
