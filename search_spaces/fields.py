"""Strict readers for architecture JSON fields; every error names the field path.

>>> read_int({"kernel": 3}, "kernel", "blocks[0].layers[0]")
3
>>> read_int({"kernel": "3"}, "kernel", "blocks[0].layers[0]")
Traceback (most recent call last):
...
unas.errors.ArchitectureError: blocks[0].layers[0].kernel: expected an integer, got '3'
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from unas.errors import ArchitectureError


def field_path(prefix: str, key: str | int) -> str:
    """``prefix.key`` (``prefix[key]`` for list positions); ``key`` alone without a prefix."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def fail(path: str, expected: str, got: Any) -> ArchitectureError:
    """The one-line error for field ``path``: what was expected and what was found."""
    return ArchitectureError(f"{path}: expected {expected}, got {got!r}")


def require_keys(data: Any, keys: Iterable[str], prefix: str, *,
                 optional: Iterable[str] = ()) -> None:
    """``data`` must be a dict with exactly ``keys`` (plus any of ``optional``)."""
    if not isinstance(data, dict):
        raise fail(prefix or "architecture", "an object", data)
    keys, optional = set(keys), set(optional)
    for key in sorted(keys - set(data)):
        raise ArchitectureError(f"{field_path(prefix, key)}: missing")
    for key in sorted(set(data) - keys - optional):
        raise ArchitectureError(
            f"{field_path(prefix, key)}: unknown field; expected one of {sorted(keys | optional)}")


def read_int(data: dict[str, Any], key: str, prefix: str) -> int:
    """``data[key]`` as an int (bools are refused)."""
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(field_path(prefix, key), "an integer", value)
    return value


def read_optional_int(data: dict[str, Any], key: str, prefix: str) -> int | None:
    """``data[key]`` as an int or None."""
    return None if data[key] is None else read_int(data, key, prefix)


def read_bool(data: dict[str, Any], key: str, prefix: str) -> bool:
    """``data[key]`` as a bool (true/false only)."""
    value = data[key]
    if not isinstance(value, bool):
        raise fail(field_path(prefix, key), "true or false", value)
    return value


def read_choice(data: dict[str, Any], key: str, prefix: str, choices: Iterable[str]) -> str:
    """``data[key]``, one of the strings ``choices``."""
    value, choices = data[key], tuple(choices)
    if value not in choices:
        raise fail(field_path(prefix, key), f"one of {list(choices)}", value)
    return value


def read_list(data: dict[str, Any], key: str, prefix: str) -> list[Any]:
    """``data[key]`` as a list (JSON array)."""
    value = data[key]
    if not isinstance(value, (list, tuple)):
        raise fail(field_path(prefix, key), "a list", value)
    return list(value)


def check_range(value: int, path: str, low: int, high: int | None = None) -> None:
    """Raise unless ``low <= value`` (and ``value <= high`` when given)."""
    if value < low or (high is not None and value > high):
        expected = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise fail(path, expected, value)
