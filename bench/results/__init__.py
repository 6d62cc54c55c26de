"""Where results go: the run folder, the results index, the runs CSV, sinks, the sweep callback."""
