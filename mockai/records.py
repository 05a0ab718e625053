"""`record`: the immutable per-request records of the pipeline, without frozen's runtime cost.

A frozen dataclass assigns each field through `object.__setattr__` (~80 ns a field), and the hot
path builds several records per request (an `Exchange` alone has ~35 fields): ~5% of a chat
request went to those assignments. Records decorated with `record` are plain slotted dataclasses
at run time and frozen to the type checker (mypy reports any assignment to a field), so they stay
immutable by construction: every change is a `dataclasses.replace`. (Unlike frozen dataclasses
they are not hashable; none of them is used as a key.)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")

if TYPE_CHECKING:
    from typing import dataclass_transform

    @dataclass_transform(frozen_default=True)
    def record(cls: type[T]) -> type[T]:
        """A dataclass with slots, frozen to the type checker (see the module docstring)."""
        ...

else:

    def record(cls: type[Any]) -> type[Any]:
        return dataclass(slots=True)(cls)


def rebuilt(instance: Any) -> tuple[type[Any], tuple[Any, ...]]:
    """`__reduce__` for a frozen dataclass: pickled as its constructor's arguments.

    Pickle restores an instance by assigning its fields one by one, which a frozen dataclass
    refuses once mypyc has compiled it (the compiled build, `setup.py`): the constructor is the
    one way in that both builds take. (Every field of such a class is an `__init__` argument.)
    """
    return type(instance), tuple(getattr(instance, member.name) for member in fields(instance))
