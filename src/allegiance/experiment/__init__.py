"""Experiments with holdouts: assignment, benefit restriction, results."""
