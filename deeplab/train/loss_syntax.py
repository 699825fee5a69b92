"""The syntax of --loss and --loss_options, parsed without TensorFlow (for options checks).

--loss=NAME[:WEIGHT][,NAME[:WEIGHT]...]   e.g. softmax_cross_entropy:1,dice:0.5
--loss_options=NAME.FIELD=VALUE[,...]     e.g. dice.smooth=0.1,lovasz_softmax.per_image=true
"""

from __future__ import annotations


def parse_loss_weights(text: str) -> tuple[tuple[str, float], ...]:
    """'a:1,b:0.5' -> (('a', 1.0), ('b', 0.5)); a missing weight is 1. ValueError for an
    empty list, a weight that is not a non-negative number, or a name given twice."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError(f"--loss={text!r}: empty entry; expected NAME[:WEIGHT],...")
        name, _, weight = item.partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"--loss={text!r}: weight {weight!r} of {name!r} is not a "
                             "number") from None
        if value < 0:
            raise ValueError(f"--loss={text!r}: weight of {name!r} must be >= 0")
        if name in dict(pairs):
            raise ValueError(f"--loss={text!r}: {name!r} given twice")
        pairs.append((name.strip(), value))
    return tuple(pairs)


def parse_loss_options(items) -> dict[str, dict[str, str]]:
    """['dice.smooth=0.1', ...] -> {'dice': {'smooth': '0.1'}}; ValueError for an item that
    is not NAME.FIELD=VALUE."""
    options: dict[str, dict[str, str]] = {}
    for item in items or ():
        key, equals, value = item.partition("=")
        name, dot, field = key.strip().partition(".")
        if not (equals and dot and name and field):
            raise ValueError(f"--loss_options entry {item!r} is not NAME.FIELD=VALUE "
                             "(e.g. dice.smooth=0.1)")
        options.setdefault(name, {})[field.strip()] = value.strip()
    return options
