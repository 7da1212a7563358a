#!/usr/bin/env python
"""The walk-through demo (`--interactive` pauses between steps): a thin wrapper over `mlobs demo`."""

import sys

from mlobs.cli import app

if __name__ == "__main__":
    sys.exit(app(["demo", *sys.argv[1:]]))
