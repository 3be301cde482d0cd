"""A simulated year of LLM traffic with injected incidents, run through the alert rules
window by window (bench/calibrate_alerts.py, `make calibrate-alerts`)."""
