"""Typed shorthands for PyIceberg row filters (its expression classes confuse type checkers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyiceberg.expressions import BooleanExpression, EqualTo, GreaterThan, In, LessThanOrEqual


def is_in(column: str, values: Iterable[Any]) -> BooleanExpression:
    return In(column, list(values))  # type: ignore[call-arg, arg-type]


def greater_than(column: str, value: Any) -> BooleanExpression:
    return GreaterThan(column, value)  # type: ignore[call-arg, arg-type]


def equal_to(column: str, value: Any) -> BooleanExpression:
    return EqualTo(column, value)  # type: ignore[call-arg, arg-type]


def at_most(column: str, value: Any) -> BooleanExpression:
    return LessThanOrEqual(column, value)  # type: ignore[call-arg, arg-type]
