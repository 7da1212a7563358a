#!/usr/bin/env python
"""Generate the synthetic data sets: a thin wrapper over `mlobs generate-data`."""

import sys

from mlobs.cli import app

if __name__ == "__main__":
    sys.exit(app(["generate-data", *sys.argv[1:]]))
