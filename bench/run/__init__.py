"""One run: the runner's phases, the training loop, checkpoints, distribution, memory, caches."""
