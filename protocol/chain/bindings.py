"""Typed decoding of contract return values: structs are read by the field names of the ABI, never by position.

`struct_fields(contract, fn)` gives the component names of a view function's tuple output; `decode(cls, contract,
fn, value)` builds the dataclass ``cls`` whose fields are the snake_case forms of those names. The products'
bindings (`protocol.inference.types`, `protocol.campaign.binding`) declare their dataclasses and call this.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    """``challengerWon`` -> ``challenger_won``."""
    return _CAMEL.sub("_", name).lower()


def struct_fields(contract, fn: str) -> tuple[tuple[str, str], ...]:
    """((name, solidity type), ...) of the single tuple output of view function ``fn`` of ``contract``'s ABI.
    Raises KeyError if ``fn`` is not a function returning one struct."""
    for item in contract.abi:
        if item.get("type") == "function" and item.get("name") == fn:
            outs = item["outputs"]
            if len(outs) == 1 and outs[0]["type"] == "tuple":
                return tuple((c["name"], c["type"]) for c in outs[0]["components"])
    raise KeyError(f"{fn} does not return a struct")


def decode(cls, contract, fn: str, value: Any):
    """The dataclass ``cls`` from the tuple ``value`` returned by ``contract.functions.<fn>(...)``: each ABI field
    ``fooBar`` goes to ``cls.foo_bar`` (bytesN as bytes; through ``cls.CONVERTERS[name]`` when given, e.g. an
    IntEnum). Raises TypeError if the ABI and ``cls`` disagree on the field names."""
    names = [snake(n) for n, _ in struct_fields(contract, fn)]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if set(names) != {n for n, f in fields.items() if f.init}:
        raise TypeError(f"{cls.__name__} fields {sorted(fields)} do not match {fn}() of the ABI: {names}")
    kw = {}
    for n, v in zip(names, value):
        conv = cls.CONVERTERS.get(n) if hasattr(cls, "CONVERTERS") else None
        kw[n] = conv(v) if conv else (bytes(v) if isinstance(v, (bytes, bytearray)) else v)
    return cls(**kw)
