"""Monitoring: drift, data quality, alerts and the Prometheus metrics."""
