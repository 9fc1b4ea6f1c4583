"""The HTTP API and the guard's tablet page."""

import sys

# FastAPI imports ``pydantic.v1`` (pydantic's copy of its first major version: 25 modules,
# 1.7 MB of the API's RSS) for one check as it makes each route: that the route's models are
# not v1 models, which it refuses. This API has none, so the copy is marked missing before any
# route is made, and FastAPI's check reads a missing ``pydantic.v1`` as "no v1 models". Where
# it is loaded already (another part of the process wanted it), hiding it saves nothing and
# would break that part, so it is left alone.
if "pydantic.v1" not in sys.modules:
    sys.modules["pydantic.v1"] = None  # type: ignore[assignment]
