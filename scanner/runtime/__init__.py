"""How components become processes: transports, the supervisor, and each command's main loop.

``checkpoint run`` and ``checkpoint demo`` hold sources, core and API in one process joined by a
bounded queue; the systemd daemons (``checkpoint capture|core|api``) hold one each and join over
a Unix socket. Only the transport differs.

Where things are:

* ``build.py``: typed builders from the config (sources, the core over its store, the API);
  everything that can reject a config runs here, before anything starts.
* ``plans.py``: what each command's process holds (``plan_run``, ``plan_capture``,
  ``plan_core``, ``plan_api``); ``demo_plan.py`` the demo's.
* ``components/``: the running things the supervisor starts, watches and restarts (a source,
  the core loop, the API server, the socket ends; ``replay.py`` a scenario as a source,
  ``retention.py`` the store's retention timer).
* ``core_runner.py``: the one way to run a core: records in, events to the sinks.
* ``supervisor.py``: restarts what died; ``serve.py``: the main loop and the command tail.
* ``transport/``: the in-process queue and the Unix socket between capture daemons and the core
  (``codec.py``: the line format on the socket).
"""
