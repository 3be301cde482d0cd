"""One module per concern: plain functions that do the work, thin @task wrappers."""
