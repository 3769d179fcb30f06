"""The Imagine service: TheNextLeg v2's Imagine API contract over self-hosted image engines.

This package knows nothing of Discord: it never imports ``discord``, ``bot`` or ``cogs``.
"""

__version__ = "0.1.0"
