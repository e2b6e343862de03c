"""ray_multicloud: one Ray cluster over many clouds, kept on the cheapest capacity its policy allows.

Importing the package loads nothing heavy: no catalog, no cloud SDK, no Ray.
"""

__version__ = "0.1.0"
