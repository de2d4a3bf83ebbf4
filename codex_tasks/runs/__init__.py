"""Run folders: events log, error capture, state, summary, resume, cache index."""
