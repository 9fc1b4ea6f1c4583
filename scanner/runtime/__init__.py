"""How components become processes: transports, the supervisor, and each command's main loop.

``checkpoint run`` and ``checkpoint demo`` hold sources, core and API in one process joined by a
bounded queue; the systemd daemons (``checkpoint capture|core|api``) hold one each and join over
a Unix socket. Only the transport differs.
"""
