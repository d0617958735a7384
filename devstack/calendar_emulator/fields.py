"""Partial responses: Google's ``fields`` selector (``items(id,status),nextPageToken,a/b``).

See https://developers.google.com/workspace/calendar/api/guides/performance#partial-response.
"""

from __future__ import annotations

from typing import Any

from devstack.calendar_emulator.errors import bad_request

# A selector tree: name -> sub-selector (None selects the whole value).
Selector = dict[str, "Selector | None"]


def parse(spec: str) -> Selector:
    """Parse a ``fields`` expression; 400 ``invalidParameter`` when malformed."""
    tree, pos = _parse_list(spec.replace(" ", ""), 0)
    if pos != len(spec.replace(" ", "")):
        raise bad_request("Invalid field selection", reason="invalidParameter", location="fields")
    return tree


def _parse_list(spec: str, pos: int) -> tuple[Selector, int]:
    tree: Selector = {}
    while pos < len(spec):
        path: list[str] = []
        start = pos
        while pos < len(spec) and spec[pos] not in ",()/":
            pos += 1
        if pos == start:
            raise bad_request("Invalid field selection", reason="invalidParameter", location="fields")
        path.append(spec[start:pos])
        while pos < len(spec) and spec[pos] == "/":
            pos += 1
            start = pos
            while pos < len(spec) and spec[pos] not in ",()/":
                pos += 1
            path.append(spec[start:pos])
        sub: Selector | None = None
        if pos < len(spec) and spec[pos] == "(":
            sub, pos = _parse_list(spec, pos + 1)
            if pos >= len(spec) or spec[pos] != ")":
                raise bad_request("Invalid field selection", reason="invalidParameter", location="fields")
            pos += 1
        _insert(tree, path, sub)
        if pos < len(spec) and spec[pos] == ",":
            pos += 1
            continue
        break
    return tree, pos


def _insert(tree: Selector, path: list[str], sub: Selector | None) -> None:
    node = tree
    for name in path[:-1]:
        child = node.get(name, {})
        if child is None:
            return  # the whole parent is already selected
        node[name] = child
        node = child
    last = path[-1]
    if last in node and node[last] is None:
        return
    if sub is None or last not in node:
        node[last] = sub
    else:
        existing = node[last]
        assert existing is not None
        existing.update(sub)


def apply(value: Any, selector: Selector | None) -> Any:
    """The parts of ``value`` that ``selector`` names (lists are filtered element-wise)."""
    if selector is None or ("*" in selector and len(selector) == 1):
        return value
    if isinstance(value, list):
        return [apply(item, selector) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, sub in selector.items():
        if name == "*":
            out.update({k: v for k, v in value.items() if k not in out})
        elif name in value:
            out[name] = apply(value[name], sub)
    return out
