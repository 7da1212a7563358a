"""Operator tools built on the service: traffic simulator, demo, drift reports."""
