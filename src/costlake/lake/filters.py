"""Typed shorthands for PyIceberg row filters (its expression classes confuse type checkers).

PyIceberg's expressions are imported when a filter is built, not when this module is: a reading
command that needs no filter never pays for them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression


def is_in(column: str, values: Iterable[Any]) -> BooleanExpression:
    from pyiceberg.expressions import In

    return In(column, list(values))  # type: ignore[call-arg, arg-type]


def greater_than(column: str, value: Any) -> BooleanExpression:
    from pyiceberg.expressions import GreaterThan

    return GreaterThan(column, value)  # type: ignore[call-arg, arg-type]


def equal_to(column: str, value: Any) -> BooleanExpression:
    from pyiceberg.expressions import EqualTo

    return EqualTo(column, value)  # type: ignore[call-arg, arg-type]


def at_most(column: str, value: Any) -> BooleanExpression:
    from pyiceberg.expressions import LessThanOrEqual

    return LessThanOrEqual(column, value)  # type: ignore[call-arg, arg-type]
