"""Training code for the s1s2 models (kept apart from the runtime packages)."""
