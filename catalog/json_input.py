"""Parsing JSON that shops send, strictly and without ever raising past the caller.

Two things the standard parser would smooth over are kept visible instead, so the
validators can reject just the one record that has them and keep the rest:
- an object with a repeated key parses to a ``JsonObject`` whose ``duplicate_keys``
  names the repeated keys (the standard parser silently keeps the last value);
- ``NaN``, ``Infinity`` and ``-Infinity`` parse to ``NonFinite`` markers instead of floats.
"""

import json
from typing import Any


class JsonObject(dict[str, Any]):
    duplicate_keys: tuple[str, ...] = ()


class NonFinite:
    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __repr__(self) -> str:
        return self.literal


class JsonInputError(ValueError):
    """The bytes are not a JSON document. ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = JsonObject(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicate_keys = tuple(sorted({k for k, _ in pairs if k in seen or seen.add(k)}))  # type: ignore[func-returns-value]
    return obj


_decoder = json.JSONDecoder(object_pairs_hook=_object_pairs, parse_constant=NonFinite)


def parse_json(data: bytes | str) -> Any:
    """The parsed document. Raises only JsonInputError."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonInputError("invalid_utf8", f"Body is not valid UTF-8 (byte {error.start}).") from None
    else:
        text = data
    if not text.strip():
        raise JsonInputError("empty_body", "Body is empty; send a JSON document.")
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as error:
        raise JsonInputError(
            "malformed_json", f"Body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}."
        ) from None
    except ValueError:  # the only other ValueError: an integer beyond Python's 4,300-digit limit
        raise JsonInputError("malformed_json", "Body is not valid JSON: a number has too many digits.") from None
    except RecursionError:
        raise JsonInputError("too_deeply_nested", "JSON is nested too deeply.") from None
