"""Faster constructors for the frozen slotted records the core makes on every record.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which looks
the field's name up on the class each time: a 14-field ``WifiFrame`` cost the core's thread
about 2 microseconds, a few per cent of its whole work on each record. ``maker(cls)`` returns
a function of every field, in order, that sets them through the slots' own descriptors: the
same object (equal, same hash, same repr, still frozen), at a third of the cost. It is for
callers that give every field, so it has no defaults, and it refuses a class whose
``__init__`` does more than set fields (``__post_init__``, init-only or non-init fields).
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A function of every field of ``cls`` (a slotted dataclass), positionally, that makes
    the instance ``cls(*fields)`` makes, without ``__init__``'s per-field name lookups."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__: its __init__ does more")
    names = [f.name for f in dataclasses.fields(cls)]
    arguments = list(inspect.signature(cls.__init__).parameters)[1:]
    if arguments != names:
        raise TypeError(f"{cls.__name__}'s __init__ does not take exactly its fields")
    if any(keyword.iskeyword(n) or not n.isidentifier() for n in names):
        raise TypeError(f"{cls.__name__} has a field that cannot be an argument")
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    self = _new(_cls)"]
    for i, name in enumerate(names):
        scope[f"_set{i}"] = getattr(cls, name).__set__
        lines.append(f"    _set{i}(self, {name})")
    lines.append("    return self")
    exec("\n".join(lines), scope)  # noqa: S102 - the source is built above from field names
    made: Callable[..., T] = scope["make"]
    made.__qualname__ = made.__name__ = f"make_{cls.__name__}"
    return made
