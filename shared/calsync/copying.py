"""Building one record from another that shares its field names (a cursor from a pass, an answer from a record).

``copy_into(Target, source, **given)`` replaces the ``name=source.name`` lists such conversions are
otherwise written as: every field of ``Target`` (a dataclass or a pydantic model) that ``source`` has
an attribute of the same name for is copied; ``given`` sets the others and overrides any copied one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


def field_names(target: Callable[..., Any]) -> list[str]:
    """The constructor fields of a dataclass or pydantic model class."""
    if isinstance(target, type) and issubclass(target, BaseModel):
        return list(target.model_fields)
    return [f.name for f in dataclasses.fields(target) if f.init]  # type: ignore[arg-type]


def copy_into(target: Callable[..., T], source: object, **given: Any) -> T:
    """``target`` built from ``source``'s same-named attributes, with ``given`` set or overriding."""
    copied = {
        name: getattr(source, name) for name in field_names(target) if name not in given and hasattr(source, name)
    }
    return target(**copied, **given)
