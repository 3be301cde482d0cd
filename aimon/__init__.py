"""aimon: batch monitoring for AI/ML systems in production, as Prefect 3 flows."""

__version__ = "0.1.0"
