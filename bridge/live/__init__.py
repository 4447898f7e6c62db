"""Live performance: the session on a pyo server, the pyo voices, the sinks it feeds and the live visualizer."""
