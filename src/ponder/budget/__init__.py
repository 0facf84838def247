"""Adaptive budgets: difficulty estimates, a global token budget split by an integer
program, a rolling online budget, and per-difficulty strategy choice (compute-optimal)."""
