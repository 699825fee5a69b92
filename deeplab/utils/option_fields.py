"""One declaration per option: a dataclass field that also describes its command-line flag.

`option(default, kind, help, ...)` is a `dataclasses.field` whose metadata carries the flag's
name (the original's flat name; the field's own name unless `flag` is given), its kind
(absl's syntax: "integer", "float", "boolean", "string", "enum", "list" for comma lists,
"multi_integer" for repeated flags), its help and, where the flag's text is not the field's
value, the conversions both ways. `deeplab.flags.define_option_flags` defines the flags of
an options class from these fields and `option_flag_values` reads them back, so an option
is written once: its field. Library code never sees flags, only the dataclass.

Adding an option: one field, e.g.
    my_option: int = option(3, "integer", "What it changes, with units.")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

KINDS = ("integer", "float", "boolean", "string", "enum", "list", "multi_integer",
         "multi_float", "multi_string")


def option(default, kind: str, help: str, *, flag: str | None = None,
           choices: Callable[[], tuple[str, ...]] | tuple[str, ...] | None = None,
           from_flag: Callable | None = None, flag_default=dataclasses.MISSING,
           group: str = "model"):
    """A dataclass field with a flag description (see the module docstring).

    from_flag: the parsed flag value -> the field's value (default: ints for list kinds,
      None for an empty list; unchanged otherwise). ValueError from it names a bad flag.
    flag_default: the flag's default when it is not the field's (e.g. "" for a JSON path
      whose parsed content is the field).
    group: which options the flag belongs to (shown in the README's flag table).
    default: dataclasses.MISSING for a required field (then give flag_default).
    """
    if kind not in KINDS:
        raise ValueError(f"option kind {kind!r} is not one of {', '.join(KINDS)}")
    metadata = {"kind": kind, "help": help, "flag": flag, "choices": choices,
                "from_flag": from_flag, "flag_default": flag_default, "group": group}
    if default is dataclasses.MISSING:  # a required field (its flag's default: flag_default)
        return dataclasses.field(metadata={"option": metadata})
    return dataclasses.field(default=default, metadata={"option": metadata})


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """The flag of one option field, resolved: name, kind, default in flag syntax, help."""

    field: str
    name: str
    kind: str
    default: object
    help: str
    choices: tuple[str, ...] | None
    from_flag: Callable
    group: str


def _ints_or_none(values):
    return None if values is None else tuple(int(v) for v in values)


def _flag_default(kind: str, value):
    if kind == "list" and value is not None:
        return ",".join(str(v) for v in value)
    return value


def flag_specs(cls, groups=None) -> list[FlagSpec]:
    """The FlagSpec of every field of dataclass `cls` declared with `option` (in `groups`
    when given), in field order."""
    specs = []
    for field in dataclasses.fields(cls):
        meta = field.metadata.get("option")
        if meta is None or (groups is not None and meta["group"] not in groups):
            continue
        kind = meta["kind"]
        default = meta["flag_default"]
        if default is dataclasses.MISSING:
            default = _flag_default(kind, field.default)
        choices = meta["choices"]
        if callable(choices):
            choices = choices()
        convert = meta["from_flag"] or (_ints_or_none if kind in ("list", "multi_integer")
                                        else (lambda value: value))
        specs.append(FlagSpec(field.name, meta["flag"] or field.name, kind, default,
                              meta["help"], tuple(choices) if choices else None, convert,
                              meta["group"]))
    return specs
