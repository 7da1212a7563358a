#!/usr/bin/env python
"""Train and save the three models: a thin wrapper over `mlobs train-models`."""

import sys

from mlobs.cli import app

if __name__ == "__main__":
    sys.exit(app(["train-models", *sys.argv[1:]]))
