"""Inputs of a run: tasks and their data, tokenization and batching, base models, metrics."""
