"""Reading JSON from outside: the one parser for request bodies, with errors a sender can act on.

`json.loads` raises `RecursionError` on deeply nested input (about 1,000 levels) and what is
parsed still has to be walked by pydantic, stored and dumped again, so depth is capped well below
that, and every failure (bad UTF-8, bad JSON, too deep) becomes a `BadRequestError` naming it.
A NUL character (U+0000), which PostgreSQL cannot store in text, is refused here too, naming the
field that carries it, rather than failing later in the store; so are NaN and Infinity, which
`json.loads` takes but JSON (RFC 8259) and PostgreSQL's JSON type do not.
"""

from __future__ import annotations

import json
from typing import Any

from bot.errors import BadRequestError

MAX_DEPTH = 64
NAN, INFINITY = "NaN", "Infinity"  # what json.loads reads as a number and JSON has not (-Infinity too)


class _NotANumber(ValueError):
    """A constant `json.loads` met that JSON has not."""


def _not_a_number(name: str) -> Any:
    raise _NotANumber(name)


def decoded(body: bytes, what: str = "body") -> str:
    """`body` decoded as UTF-8, or `BadRequestError` naming the first byte that is not."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"{what} is not valid UTF-8 (byte {exc.start})") from None


def loads(body: bytes | str, what: str = "body") -> Any:
    """Parse `body` as JSON, or raise `BadRequestError` saying what is wrong with it."""
    if isinstance(body, bytes):
        body = decoded(body, what)
    try:
        data = json.loads(body, parse_constant=_not_a_number)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"{what} is not valid JSON: {exc}") from None
    except _NotANumber as exc:
        raise BadRequestError(f"{what} is not valid JSON: {exc} is not a JSON number") from None
    except RecursionError:
        raise BadRequestError(f"{what} is JSON nested deeper than {MAX_DEPTH} levels") from None
    if _may_nest_too_deep(body) and depth(data) > MAX_DEPTH:
        raise BadRequestError(f"{what} is JSON nested deeper than {MAX_DEPTH} levels")
    if _may_hold_nul(body) and (where := nul_path(data)) is not None:
        raise BadRequestError(f"{what}: {where[:200] or 'the value'} contains a NUL character (U+0000)")
    return data


def plain(text: str) -> bool:
    """Whether `text` needs none of the checks `loads` makes beyond parsing it: at most MAX_DEPTH
    brackets, no NUL escape, no NaN or Infinity. Another JSON parser may then read it (and `loads`,
    for one that parser refuses, names the problem)."""
    return not (_may_nest_too_deep(text) or _may_hold_nul(text) or NAN in text or INFINITY in text)


def _may_nest_too_deep(text: str) -> bool:
    """Whether JSON `text` has more than MAX_DEPTH brackets. Each level opens with one, so a text with
    fewer needs no walk (a webhook's 4.8 KB has some 40: the walk was a tenth of its request's time)."""
    return text.count("{") + text.count("[") > MAX_DEPTH


def _may_hold_nul(text: str) -> bool:
    """Whether JSON `text` may hold a NUL: it can only be written as an escape (a raw one is a
    decoding error)."""
    return "\\u0000" in text


def nul_path(value: Any) -> str | None:
    """The dotted path of the first key or string in `value` that contains a NUL character, else None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, dict):
            for key, v in item.items():
                name = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return name.replace("\x00", "\\u0000")
                stack.append((v, name))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return None


def depth(value: Any) -> int:
    """How deeply lists and objects nest in `value`, found without recursion. Only containers are
    stacked (a webhook is mostly scalars: this walk is on every request's path)."""
    containers = (dict, list)
    deepest, stack = 0, [(value, 1)] if isinstance(value, containers) else []
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend(
            (v, level + 1)
            for v in (item.values() if isinstance(item, dict) else item)
            if isinstance(v, containers)
        )
    return deepest
