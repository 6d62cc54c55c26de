"""User tools: reload a finished run, scaffold a new variant."""
