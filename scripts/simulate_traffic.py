#!/usr/bin/env python
"""Send generated traffic to a running API: a thin wrapper over `mlobs simulate`."""

import sys

from mlobs.cli import app

if __name__ == "__main__":
    sys.exit(app(["simulate", *sys.argv[1:]]))
