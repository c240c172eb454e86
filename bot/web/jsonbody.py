"""Reading JSON from outside: the one parser for request bodies, with errors a sender can act on.

`json.loads` raises `RecursionError` on deeply nested input (about 1,000 levels) and what is
parsed still has to be walked by pydantic, stored and dumped again, so depth is capped well below
that, and every failure (bad UTF-8, bad JSON, too deep) becomes a `BadRequestError` naming it.
A NUL character (U+0000), which PostgreSQL cannot store in text, is refused here too, naming the
field that carries it, rather than failing later in the store.
"""

from __future__ import annotations

import json
from typing import Any

from bot.errors import BadRequestError

MAX_DEPTH = 64


def loads(body: bytes | str, what: str = "body") -> Any:
    """Parse `body` as JSON, or raise `BadRequestError` saying what is wrong with it."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestError(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequestError(f"{what} is JSON nested deeper than {MAX_DEPTH} levels") from None
    # Each level opens with a bracket, so a text with few brackets needs no walk (a webhook's 4.8 KB
    # has some 40: the walk was a tenth of its request's time).
    if body.count("{") + body.count("[") > MAX_DEPTH and depth(data) > MAX_DEPTH:
        raise BadRequestError(f"{what} is JSON nested deeper than {MAX_DEPTH} levels")
    # In JSON a NUL can only be written as an escape (a raw one is already a decoding error above).
    if "\\u0000" in body and (where := nul_path(data)) is not None:
        raise BadRequestError(f"{what}: {where[:200] or 'the value'} contains a NUL character (U+0000)")
    return data


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
