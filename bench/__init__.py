"""OmniRoute benchmark (see bench/run.py)."""
