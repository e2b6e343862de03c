"""Contracts of `ray_multicloud.sim.serving`, hand-computed from its docstrings and messages (mutation testing, issue 12 item 5)."""
