"""Datasets: the built-in ones, their readers and renderers, and lookup by name."""
