"""midjourney-proxy's contract (novicezk's and trueai's, as new-api and one-api relay it):
:mod:`~imagine.edges.mj.routes` over the service, :mod:`~imagine.edges.mj.task` (a job as a task),
:mod:`~imagine.edges.mj.customid` (buttons as Midjourney's customIds) and
:mod:`~imagine.edges.mj.envelope` (the submit envelope and its codes)."""
