"""Measuring the program: coalition partner settlement."""
