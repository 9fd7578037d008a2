"""Conversion jobs: a queue in the database, claimed by worker processes, run in a child process
with time and memory limits, published atomically."""
