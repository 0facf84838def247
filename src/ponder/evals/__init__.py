"""Evaluation: datasets and generators (runner, metrics and reports to come)."""
