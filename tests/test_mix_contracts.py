"""Contracts of `ray_multicloud.sim.mix`, hand-computed from its docstrings and messages (mutation testing, issue 12 item 5)."""
