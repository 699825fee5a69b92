"""`--model_zoo=NAME` (or a zoo name in place of a checkpoint path) for the entry points.

Each entry point defines the flag with `define_model_zoo_flag(FLAGS)` and calls
`resolve_checkpoint_flag(FLAGS, "<its checkpoint flag>")` at the start of `main`. The name's
tarball is fetched and verified on first use; the checkpoint flag then points at the cached
folder, whose options.json holds the registry's model options (so eval, vis, export and
predict take them as a training run's saved options, hand-given model flags overriding with a
warning). train.py passes `model_flags=True`: the registry's options become the defaults of
the model flags that were not given.
"""

from __future__ import annotations

import logging
import sys

from absl import flags

from deeplab.zoo.registry import ZooEntry, get_entry, is_zoo_name

FLAG = "model_zoo"


def define_model_zoo_flag(fv: flags.FlagValues = flags.FLAGS) -> None:
    flags.DEFINE_string(FLAG, None, "A published checkpoint by name (python -m deeplab.zoo "
                        "list), downloaded and verified on first use; supplies the model flags.",
                        flag_values=fv)


def _comparable(value):
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(str(v))
    return tuple(out)


def _flag_value(flag, value):
    """`value` (registry JSON) in the type the flag holds."""
    if "list" in flag.flag_type():
        return [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if flag.flag_type().startswith("multi"):
        return list(value) if isinstance(value, (list, tuple)) else [value]
    return value


def apply_model_flags(fv: flags.FlagValues, entry: ZooEntry) -> None:
    """Sets the model flags not given on the command line to the registry's values; warns
    about given ones that differ."""
    values = dict(entry.model)
    if entry.dense_prediction_cell_json:
        values["dense_prediction_cell_json"] = entry.dense_prediction_cell_json
    for name, value in values.items():
        if name not in fv:
            continue
        flag = fv[name]
        if flag.present:
            if _comparable(flag.value) != _comparable(value):
                logging.warning("--%s=%s overrides %s's %s", name, flag.value, entry.name, value)
        else:
            flag.value = _flag_value(flag, value)


def rescale_atrous_rates(fv: flags.FlagValues, entry: ZooEntry) -> None:
    """--output_stride given without --atrous_rates: the registry's rates at that stride (as
    given flags, so they override the saved options)."""
    if "output_stride" not in fv or not fv["output_stride"].present \
            or fv["atrous_rates"].present or not entry.model.get("atrous_rates"):
        return
    rates = entry.model_fields(fv.output_stride)["atrous_rates"]
    fv["atrous_rates"].value = rates
    fv["atrous_rates"].present = 1
    logging.warning("--output_stride=%d: %s's atrous rates %s become %s", fv.output_stride,
                    entry.name, entry.model["atrous_rates"], rates)


def resolve_checkpoint_flag(fv: flags.FlagValues, path_flag: str,
                            model_flags: bool = False, set_dataset: bool = True) -> str | None:
    """If --model_zoo or --<path_flag> names a zoo checkpoint: fetch it, point --<path_flag>
    at its folder and return the name (else None). set_dataset: --dataset defaults to the
    checkpoint's dataset."""
    from deeplab.zoo.cache import ensure

    name = fv[FLAG].value if FLAG in fv else None
    path = fv[path_flag].value
    if name and path:
        raise flags.ValidationError(f"give --{FLAG} or --{path_flag}, not both")
    if not name and is_zoo_name(path):
        name = path
    if not name:
        return None
    entry = get_entry(name)
    fv[path_flag].value = ensure(entry, log=lambda text: print(text, file=sys.stderr))
    if model_flags:
        apply_model_flags(fv, entry)
    rescale_atrous_rates(fv, entry)
    if set_dataset and entry.dataset and "dataset" in fv and not fv["dataset"].present:
        fv["dataset"].value = entry.dataset
    return name
