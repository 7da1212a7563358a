"""`mlobs` and `python -m mlobs` run the CLI (the `server` extra); a base install holds only the
client, and says so instead of a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from mlobs.cli import app
    except ModuleNotFoundError as exc:
        sys.stderr.write(
            f"mlobs: the service is not installed here ({exc.name} is missing); this install "
            "has the client only (mlobs.client). Install the service with: "
            "pip install 'mlobs[server]'\n"
        )
        raise SystemExit(2) from None
    app()


if __name__ == "__main__":
    main()
