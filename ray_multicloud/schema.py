"""One schema layer for the sections of a cluster YAML: a section is described as data (key ->
``Field``: its check, whether it is required, whether null means "left out", a line of doc) and
``check_section(path, value, schema)`` checks a section against it.

Contract: ``check_section`` is pure (no file, no clock, no logging) and raises ``ConfigError`` on
the first problem, in this order:

1. a value that is not a mapping (naming ``path``, the example of the section and the type received);
2. a forbidden key (``Section.forbidden``: e.g. credentials, with the reason and the place to put them);
3. an unknown key, in the order written: the key is named as ``<path>.<key>``, with close matches
   (``difflib``) as ``did you mean 'subnet_ids'?`` and the keys the section reads;
4. a missing required key;
5. a value of the wrong type or out of range (each ``Field.check``, in the schema's order).

Every message shows the value received through ``shown(key, value)``: the value of a key whose name
says it holds a secret (password, token, secret, credential, access key, ...) is masked, and long
values are cut. Readers keep their own deeper checks (a region that exists, a price that is
consistent); this layer only guarantees that what reaches them is a mapping of known keys with
values of the expected shape.

The stdlib only: the drivers' own schemas (``clouds/schemas.py``) and every ``cluster_config``
section use it, so it sits below both.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ray_multicloud.errors import ConfigError

Check = Callable[[str, Any], None]
"""``check(key, value)``: returns None when ``value`` is acceptable for ``key``, else raises
``ConfigError(key, ...)``."""

_SECRET = re.compile(r"password|passwd|secret|token|credential|access_key|private_key$|api_key|sas$",
                     re.IGNORECASE)
_MAX_SHOWN = 80


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a section. ``check`` None: any value (the reader checks it itself)."""

    check: Check | None = None
    required: bool = False
    nullable: bool = False  # null (an empty YAML value) means the key is left out
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A section's keys; ``example`` completes "must be a mapping such as ..."; ``forbidden`` maps a
    key that must never be written here to why (and where it belongs instead)."""

    fields: Mapping[str, Field]
    example: str = ""
    forbidden: Mapping[str, str] = field(default_factory=dict)

    def keys(self) -> tuple[str, ...]:
        return tuple(self.fields)

    def with_fields(self, extra: Mapping[str, Field]) -> Section:
        """This section plus ``extra`` keys (a driver reusing another's reader)."""
        return Section({**self.fields, **extra}, self.example, self.forbidden)


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def is_secret_key(key: str) -> bool:
    """Whether the last part of ``key`` names a secret (its value is never shown)."""
    last = key.rsplit(".", 1)[-1]
    return bool(_SECRET.search(last))


def shown(key: str, value: object) -> str:
    """``value`` as an error message shows it: masked under a secret key, cut when long."""
    if is_secret_key(key) and value is not None:
        return "'***' (masked)"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def close_matches(word: str, choices: Sequence[str]) -> list[str]:
    """Up to three of ``choices`` close to ``word`` (case-insensitive when nothing matches as written)."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[c] for c in difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=0.6)]
    return close


def suggestion(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x' or 'y'?"`` for the close matches of ``word``, or ""."""
    close = close_matches(word, choices)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_mapping(path: str, value: object, example: str = "") -> Mapping[str, Any]:
    """``value`` when it is a mapping; ``ConfigError(path, ...)`` otherwise."""
    if not isinstance(value, Mapping):
        such = f" such as {example}" if example else ""
        raise ConfigError(path, f"must be a mapping{such}, got {type_name(value)} {shown(path, value)}")
    return value


def check_keys(path: str, section: Mapping[Any, Any], allowed: Sequence[str]) -> None:
    """``ConfigError(<path>.<key>, ...)`` for the first key of ``section`` not in ``allowed``."""
    for name in section:
        if isinstance(name, str) and name in allowed:
            continue
        key = f"{path}.{name}"
        hint = suggestion(str(name), allowed)
        raise ConfigError(key, f"unknown key{hint} (allowed: {', '.join(allowed)}); "
                               f"its value: {shown(key, section[name])}")


def check_section(
    path: str, value: object, schema: Section | Sequence[str], *, example: str = ""
) -> Mapping[str, Any]:
    """Check ``value`` (the section at YAML path ``path``) against ``schema`` (a ``Section``, or just
    the names of the keys it may hold) in the order of the module docstring; returns it as a mapping."""
    section = schema if isinstance(schema, Section) else Section({k: Field() for k in schema}, example)
    raw = check_mapping(path, value, example or section.example)
    for name, why in section.forbidden.items():
        if name in raw:
            raise ConfigError(f"{path}.{name}", why)
    check_keys(path, raw, section.keys())
    for name, spec in section.fields.items():
        key = f"{path}.{name}"
        if name not in raw or (raw[name] is None and spec.nullable):
            if spec.required:
                what = f" ({spec.doc})" if spec.doc else ""
                raise ConfigError(key, f"missing: this section needs {name}{what}")
            continue
        if spec.check is not None:
            spec.check(key, raw[name])
    return raw


# -- checks: each ``factory(...) -> Check`` ------------------------------------------------------


def _fail(key: str, expected: str, value: object) -> ConfigError:
    return ConfigError(key, f"must be {expected}, got {type_name(value)} {shown(key, value)}")


def text(what: str = "a non-empty string") -> Check:
    """A non-empty string (``what`` says which, e.g. "an AMI id like ami-0abc...")."""

    def check(key: str, value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            raise _fail(key, what, value)

    return check


def texts(what: str = "a list of non-empty strings") -> Check:
    """A list of non-empty strings (a bare string is refused: ``[a]`` is not ``a``)."""

    def check(key: str, value: Any) -> None:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise _fail(key, what, value)

    return check


def boolean() -> Check:
    def check(key: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise _fail(key, "true or false", value)

    return check


def number(*, minimum: float = 0.0, strict: bool = False, integer: bool = False, what: str = "") -> Check:
    """A finite number >= ``minimum`` (> when ``strict``); a whole number when ``integer``. Booleans
    are refused (``true`` is not 1)."""
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
    expected = what or f"{'a whole number' if integer else 'a finite number'} {bound}"

    def check(key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(key, expected, value)
        if integer and not isinstance(value, int):
            raise _fail(key, expected, value)
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise _fail(key, expected, value)

    return check


def choice(values: Collection[str]) -> Check:
    """One of ``values`` (a string), with close matches."""
    options = sorted(values)

    def check(key: str, value: Any) -> None:
        if not isinstance(value, str) or value not in values:
            hint = suggestion(value, options) if isinstance(value, str) else ""
            raise ConfigError(key, f"must be one of {', '.join(options)}, got {type_name(value)} "
                                   f"{shown(key, value)}{hint}")

    return check


def mapping_of(item: Check, what: str) -> Check:
    """A mapping of string keys whose values each pass ``item`` (named ``<key>.<name>``)."""

    def check(key: str, value: Any) -> None:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _fail(key, what, value)
        for name, inner in value.items():
            item(f"{key}.{name}", inner)

    return check


def either(what: str, *checks: Check) -> Check:
    """Passes when one of ``checks`` passes; otherwise the error says ``what`` was expected."""

    def check(key: str, value: Any) -> None:
        for one in checks:
            try:
                one(key, value)
            except ConfigError:
                continue
            return
        raise _fail(key, what, value)

    return check
