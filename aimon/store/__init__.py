"""Every table aimon owns (schema.py) and the classes that read and write them:
metrics and runs (metrics.py), run claims (runs.py), alert state, events, silences and
the outbox (alerts.py), drift's reference statistics (reference.py), the A/B statistics
(abstats.py), and the OpenMetrics export of stored figures (openmetrics.py)."""
