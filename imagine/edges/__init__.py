"""The HTTP edges, one per contract, over the one :class:`~imagine.service.ImagineService`:
TheNextLeg's v2 (:mod:`imagine.edges.v2`) and midjourney-proxy's (:mod:`imagine.edges.mj`).
What they share (errors, tokens, CORS, bodies) is :mod:`imagine.edges.common`."""
