"""The Discord bot: a client of the Imagine service through one ImagineClient (``python -m bot``)."""
