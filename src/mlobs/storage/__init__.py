"""Persistence through SQLAlchemy: the prediction log, drift history and alerts."""
