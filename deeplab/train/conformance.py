"""Training conformance: does one training step compute what the original train.py did?

    python -m deeplab.train.conformance CASE_DIR [CASE_DIR ...] [--json=OUT.json]

A case folder (the format of `../shared/fixtures/training/`, see its README) holds the
original's train.py flags, the recipe of its initial checkpoint and fixed batch, the dropout
masks it drew, and what it computed: per step the learning rate, loss terms and gradient
norms, the step-0 gradients, the BatchNorm statistics after the first update, an optimizer
replay, and `expected.json` with every check and its tolerance (set from the original's own
oneDNN on/off spread).

The trainer is built as train.py builds it: the case's flags parsed by train.py's own flag
definitions (`deeplab.train.flags`), the checkpoint restored through --tf_initial_checkpoint,
and the same step function. Two things come from the case instead of from chance, as they
did for the original: the batch (every step) and the dropout masks (`Dropout.replay`).
Every check of expected.json is evaluated and printed with its figure, its tolerance and
the worst variables by name; the exit status is 0 only when all hold (1 otherwise, 2 for a
folder that is not a case). A check this runner does not know fails.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import tempfile

import numpy as np

RESULT_WIDTH = 100


class CaseError(ValueError):
    """A folder that is not a readable conformance case."""


@dataclasses.dataclass
class Check:
    """One evaluated check: its name, pass/fail, a one-line figure, and the worst items."""

    name: str
    passed: bool
    figure: str
    worst: list[str] = dataclasses.field(default_factory=list)


# --- reading a case -------------------------------------------------------------------------


def _load_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise CaseError(f"{path}: cannot read it ({exc})") from None


def _module(path: str, name: str):
    if not os.path.isfile(path):
        raise CaseError(f"{path}: missing (the case's recipe needs it)")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass
class Case:
    """A case folder, read: case.json, expected.json and the folder's arrays."""

    folder: str
    spec: dict
    expected: dict

    @classmethod
    def read(cls, folder: str) -> Case:
        folder = os.path.abspath(folder)
        if not os.path.isfile(os.path.join(folder, "case.json")):
            raise CaseError(f"{folder}: not a training conformance case (no case.json)")
        return cls(folder, _load_json(os.path.join(folder, "case.json")),
                   _load_json(os.path.join(folder, "expected.json")))

    @property
    def root(self) -> str:
        """The folder holding the case folders (make_batch.py, ../reference)."""
        return os.path.dirname(self.folder)

    def arrays(self, name: str) -> dict:
        path = os.path.join(self.folder, name)
        if not os.path.isfile(path):
            raise CaseError(f"{path}: missing")
        with np.load(path) as data:
            return {key: data[key] for key in data.files}

    def batch(self):
        """(images float32 [B, H, W, 3], labels int32 [B, H, W, 1]), hash-checked."""
        make_batch = _module(os.path.join(self.root, "make_batch.py"), "make_batch")
        try:
            return make_batch.batch_of_case(self.folder)
        except ValueError as exc:
            raise CaseError(str(exc)) from None

    def write_checkpoint(self, out_dir: str) -> str:
        """The initial checkpoint, as the case's command makes it; checks its digest."""
        recipe = self.spec["initial_checkpoint"]
        words = recipe["command"].split()
        script = os.path.normpath(os.path.join(self.root, words[1]))
        maker = _module(script, "make_checkpoint")
        values = maker.variable_values(os.path.join(os.path.dirname(script), words[2]))
        if maker.digest(values) != recipe["digest_sha256"]:
            raise CaseError(f"{script}: the regenerated checkpoint's digest "
                            f"{maker.digest(values)} is not the case's "
                            f"{recipe['digest_sha256']}")
        return maker.write_checkpoint(values, out_dir)

    def dropout_multipliers(self) -> list[np.ndarray]:
        """Per step, the float32 multiplier the original applied: 1/keep_prob or 0."""
        spec = self.spec["dropout"]
        shape, keep_prob = tuple(spec["shape"]), spec["keep_prob"]
        packed = self.arrays(spec["file"])
        scale = np.float32(1.0) / np.float32(keep_prob)
        result = []
        for key in spec["keys"]:
            keep = np.unpackbits(packed[key])[:int(np.prod(shape))].reshape(shape).astype(bool)
            result.append(np.where(keep, scale, np.float32(0.0)).astype(np.float32))
        return result


# --- running the trainer --------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What our trainer did on a case."""

    per_step: list[dict]
    step0_gradients: dict[str, np.ndarray]
    bn_after_first: dict[str, np.ndarray]
    bn_initial: dict[str, np.ndarray]
    bn_final: dict[str, np.ndarray]
    trainable: list[str]
    weight_decayed: list[str]
    not_restored_initial: dict[str, np.ndarray]
    replay: list[Check]


def _parse_train_flags(argv: list[str]):
    from absl import flags

    from deeplab.train.flags import define_train_flags

    fv = flags.FlagValues()
    define_train_flags(fv)
    fv(["train.py", *argv])
    return fv


def _trainer(case: Case, workdir: str):
    """A Trainer built from the case's flags as train.py builds it, restored."""
    import tensorflow as tf

    from deeplab.data.class_weights import resolve_label_weights
    from deeplab.data.descriptors import DatasetDescriptor
    from deeplab.data.pipeline import InputOptions
    from deeplab.flags import model_options_from_flags, pair_flag
    from deeplab.train.flags import check_cluster_flags, train_options_from_flags
    from deeplab.train.trainer import DataOptions, Trainer

    prefix = case.write_checkpoint(os.path.join(workdir, "initial"))
    logdir = os.path.join(workdir, "train")
    fv = _parse_train_flags([*case.spec["train_py_flags"], f"--train_logdir={logdir}",
                             f"--tf_initial_checkpoint={prefix}",
                             f"--dataset_dir={workdir}"])
    check_cluster_flags(fv)
    num_classes, ignore = case.spec["num_classes"], case.spec["ignore_label"]
    descriptor = DatasetDescriptor("conformance", num_classes, ignore, {})
    options = dataclasses.replace(
        train_options_from_flags(fv), seed=None,
        label_weights=resolve_label_weights(fv.label_weights, descriptor, fv.train_split))
    model_options = model_options_from_flags(fv, num_classes)
    data = DataOptions("conformance", workdir, fv.train_split, num_classes, ignore,
                       InputOptions(crop_size=pair_flag(fv, "train_crop_size")))
    trainer = Trainer(model_options, options, data, tf.distribute.OneDeviceStrategy("/cpu:0"))
    trainer.restore()
    return trainer


def _named(trainer) -> dict:
    from deeplab.checkpoints.io import variable_map

    return variable_map(trainer.model)


def _bn_statistics(variables: dict) -> dict[str, np.ndarray]:
    return {name: np.array(var.numpy()) for name, var in variables.items()
            if name.endswith(("/moving_mean", "/moving_variance"))}


def _set_not_restored(case: Case, variables: dict) -> dict[str, np.ndarray]:
    """Our own initial values of the variables the checkpoint does not give; then the
    original's, so both trainers start from the same point."""
    spec = case.spec.get("variables_not_restored")
    if not spec:
        return {}
    stored = case.arrays(spec["file"])
    own = {}
    for name in spec["variables"]:
        if name not in variables:
            raise CaseError(f"{case.folder}: the model has no variable {name}")
        own[name] = np.array(variables[name].numpy())
        variables[name].assign(stored[name])
    return own


def _replay_dropout(trainer, case: Case, shape):
    """Points the model's dropout layer at a variable the runner fills each step."""
    import tensorflow as tf

    from deeplab.model.layer_walk import all_layers
    from deeplab.model.layers import Dropout

    layers = [layer for layer in all_layers(trainer.model)
              if isinstance(layer, Dropout)]
    if len(layers) != 1:
        raise CaseError(f"{case.folder}: the case feeds one dropout layer, the model has "
                        f"{len(layers)}")
    multiplier = tf.Variable(tf.zeros(shape), trainable=False, name="replayed_dropout")
    layers[0].replay(multiplier)
    return multiplier


def run_case(case: Case, workdir: str) -> Run:
    """Builds, restores and trains K steps as the case says, recording what it checks."""
    import tensorflow as tf

    from deeplab.train.losses import weight_decayed_variables
    from deeplab.train.trainer import trainable_variable_names

    trainer = _trainer(case, workdir)
    variables = _named(trainer)
    names = {id(var): name for name, var in variables.items()}
    not_restored = _set_not_restored(case, variables)
    multipliers = case.dropout_multipliers()
    replayed = _replay_dropout(trainer, case, multipliers[0].shape)
    images, labels = case.batch()
    data = tf.data.Dataset.from_tensors({"image": images, "label": labels}).repeat()
    iterator = iter(trainer.strategy.experimental_distribute_dataset(data))
    step_fn = trainer.make_step_fn(return_gradients=True)
    trainable = trainable_variable_names(trainer.model)
    bn_initial = _bn_statistics(variables)
    per_step, step0, bn_after_first = [], {}, {}
    for k in range(case.spec["free_run_steps"]):
        replayed.assign(multipliers[k])
        rate = float(trainer.optimizer.learning_rate)
        values = step_fn(iterator)
        grads = [np.array(g.numpy()) for g in values.pop("gradients")]
        per_step.append({"learning_rate": rate,
                         **{key: float(v) for key, v in values.items()},
                         "gradient_norms": {n: float(np.linalg.norm(g))
                                            for n, g in zip(trainable, grads, strict=True)}})
        if k == 0:
            step0 = dict(zip(trainable, grads, strict=True))
            bn_after_first = _bn_statistics(variables)
    replay = replay_optimizer(trainer, case, variables) if "optimizer_replay" in \
        case.expected["checks"] else []
    decayed = [names[id(var)] for var in weight_decayed_variables(trainer.model)]
    return Run(per_step, step0, bn_after_first, bn_initial, _bn_statistics(variables),
               trainable, decayed, not_restored, replay)


# --- the optimizer replay ------------------------------------------------------------------


def _ulp(value: float) -> float:
    return float(np.spacing(np.float32(abs(value))))


def replay_optimizer(trainer, case: Case, variables: dict) -> list[Check]:
    """One update from the original's state k for every k, without the network.

    Our optimizer's slots in TF1's terms (`optimizers.optimizer_slots`) are loaded from the
    case; a slot it keeps under another meaning starts from zero and is brought to step k
    by applying gradient[0..k-1] at our own rates, as the fixture README prescribes.
    """
    from deeplab.train.optimizers import optimizer_slots

    check = case.expected["checks"]["optimizer_replay"]
    arrays = case.arrays(check["file"])
    optimizer = trainer.optimizer
    subset = list(check["variables"])
    targets = [variables[name] for name in subset]
    slots = {name: optimizer_slots(optimizer, var) for name, var in zip(subset, targets,
                                                                          strict=True)}
    value_worst, slot_worst = [], []
    for k in range(check["steps"]):
        _bring_slots_to(optimizer, subset, targets, slots, arrays, k)
        for name, var in zip(subset, targets, strict=True):
            var.assign(arrays[f"{name}|value"][k])
        optimizer.iterations.assign(k)
        optimizer.apply([arrays[f"{name}|gradient"][k] for name in subset], targets)
        for name, var in zip(subset, targets, strict=True):
            want, before = arrays[f"{name}|value"][k + 1], arrays[f"{name}|value"][k]
            update = float(np.abs(want - before).max())
            diff = float(np.abs(var.numpy() - want).max())
            allowed = check["tolerance_value"] * update + 2 * _ulp(np.abs(want).max())
            value_worst.append((diff / allowed, diff <= allowed, f"{name} step {k}"))
            for slot, slot_var in slots[name].items():
                key = f"{name}|{slot}"
                if key not in arrays:
                    continue
                want = arrays[key][k + 1]
                scale = float(np.abs(want).max())
                diff = float(np.abs(slot_var.numpy() - want).max())
                allowed = check["tolerance_slot"] * scale + 2 * _ulp(scale)
                slot_worst.append((diff / allowed, diff <= allowed,
                                   f"{slot} of {name} step {k}"))
    return [_ratio_check("optimizer_replay (values)", value_worst, 1,
                         f"max|w - w_orig| / ({check['tolerance_value']} max|update| + 2 ulp)"),
            _ratio_check("optimizer_replay (slots)", slot_worst, 1,
                         f"max|s - s_orig| / ({check['tolerance_slot']} max|s| + 2 ulp)")]


def _bring_slots_to(optimizer, subset, targets, slots, arrays, k):
    """Loads TF1's slots at step k; other slots: zero, then gradient[0..k-1] applied."""
    foreign = []
    for name in subset:
        for slot, slot_var in slots[name].items():
            key = f"{name}|{slot}"
            if key in arrays:
                slot_var.assign(arrays[key][k])
            else:
                slot_var.assign(np.zeros(slot_var.shape, np.float32))
                foreign.append(slot)
    if not foreign:
        return
    for j in range(k):
        optimizer.iterations.assign(j)
        optimizer.apply([arrays[f"{name}|gradient"][j] for name in subset], targets)


# --- the checks ----------------------------------------------------------------------------


def _rel(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / max(abs(theirs), 1e-30)


def _ratio_check(name: str, rows, tolerance, metric: str) -> Check:
    """rows: (figure, passed, label); the check passes when every row does."""
    if not rows:
        return Check(name, True, "nothing of ours to compare (no such state kept)")
    rows = sorted(rows, key=lambda r: (r[1], -r[0]))
    failed = [r for r in rows if not r[1]]
    worst = max((r[0] for r in rows), default=0.0)
    figure = (f"{metric}: worst {worst:.3g} (tolerance {tolerance}); "
              f"{len(rows) - len(failed)}/{len(rows)} within")
    shown = failed[:5] or sorted(rows, key=lambda r: -r[0])[:3]
    return Check(name, not failed, figure,
                 [f"{'FAIL' if not r[1] else 'ok  '} {r[2]}: {r[0]:.3g}" for r in shown])


def _term_key(original: str) -> str:
    """The original's loss scope (semantic_merged_logits, semantic_logits_0.50) -> ours
    (cross_entropy, cross_entropy_logits_0.50)."""
    key = original.split("_", 1)[1] if "_" in original else original
    return "cross_entropy" if key == "merged_logits" else f"cross_entropy_{key}"


def _ours_scalars(step: dict, terms: list[str]) -> dict:
    ce = {f"cross_entropy/{t}": step[_term_key(t)] for t in terms}
    total_ce = sum(ce.values())
    return {"total_loss": step["total_loss"], "cross_entropy_sum": total_ce,
            "regularization": step["weight_decay"],
            "gradient_global_norm": step["gradient_norm"], **ce}


def _theirs_scalars(step: dict) -> dict:
    ce = {f"cross_entropy/{t}": v for t, v in step["cross_entropy"].items()}
    return {"total_loss": step["total_loss"], "cross_entropy_sum": step["cross_entropy_sum"],
            "regularization": step["regularization"],
            "gradient_global_norm": step["gradient_global_norm"], **ce}


def _scalar_check(name, pairs, tolerance) -> Check:
    rows = [(_rel(ours, theirs), _rel(ours, theirs) <= tolerance,
             f"{label} ours {ours:.7g} original {theirs:.7g}") for label, ours, theirs in pairs]
    return _ratio_check(name, rows, tolerance, "|x - x_orig| / |x_orig|")


def evaluate(case: Case, run: Run) -> list[Check]:
    """Every check of expected.json against `run`, in expected.json's order."""
    checks = case.expected["checks"]
    theirs = [_theirs_scalars(s) for s in case.expected["per_step"]]
    terms = list(case.expected["per_step"][0]["cross_entropy"])
    ours = [_ours_scalars(s, terms) for s in run.per_step]
    results = []
    for name, check in checks.items():
        evaluator = _EVALUATORS.get(name)
        if evaluator is None:
            results.append(Check(name, False, "this runner does not know this check"))
            continue
        results += evaluator(case, run, check, ours, theirs)
    return results


def _learning_rate(case, run, check, ours, theirs):
    pairs = [(f"step {k}", run.per_step[k]["learning_rate"], s["learning_rate"])
             for k, s in enumerate(case.expected["per_step"])]
    return [_scalar_check("learning_rate", pairs, check["tolerance"])]


def _step0_loss(case, run, check, ours, theirs):
    pairs = [(q, ours[0][q], theirs[0][q]) for q in check["quantities"]]
    return [_scalar_check("step0_loss", pairs, check["tolerance"])]


def _step0_regularization(case, run, check, ours, theirs):
    return [_scalar_check("step0_regularization", [
        ("regularization", ours[0]["regularization"], theirs[0]["regularization"])],
        check["tolerance"])]


def _step0_global_norm(case, run, check, ours, theirs):
    return [_scalar_check("step0_gradient_global_norm", [
        ("global norm", ours[0]["gradient_global_norm"], theirs[0]["gradient_global_norm"])],
        check["tolerance"])]


def _step0_gradients(case, run, check, ours, theirs):
    stored = case.arrays(check["file"])
    norms, arrays = [], []
    for name, spec in check["variables"].items():
        if name not in run.step0_gradients:
            norms.append((float("inf"), False, f"{name}: no such trainable variable here"))
            continue
        grad = run.step0_gradients[name]
        norm = float(np.linalg.norm(grad))
        if list(grad.shape) != list(spec["shape"]):
            norms.append((float("inf"), False, f"{name}: shape {list(grad.shape)}, "
                                               f"original {spec['shape']}"))
            continue
        if spec["null_gradient"]:
            limit = spec["tolerance_null_norm"]
            norms.append((norm / limit, norm < limit,
                          f"{name} (null gradient) norm {norm:.3g} < {limit:.3g}"))
            continue
        rel = _rel(norm, spec["norm"])
        norms.append((rel / spec["tolerance_norm_rel"], rel <= spec["tolerance_norm_rel"],
                      f"{name} norm rel {rel:.3g} (tolerance {spec['tolerance_norm_rel']})"))
        if spec.get("array_stored") and name in stored:
            want = stored[name]
            ratio = float(np.abs(grad - want).max() / max(np.abs(want).max(), 1e-30))
            limit = spec["tolerance_max_abs_diff_ratio"]
            arrays.append((ratio / limit, ratio <= limit,
                           f"{name} max|g - g_orig|/max|g_orig| {ratio:.3g} (tolerance {limit})"))
    missing = set(run.step0_gradients) - set(check["variables"])
    extra = [(float("inf"), False, f"{name}: trained here, not by the original")
             for name in sorted(missing)]
    return [_ratio_check("step0_gradients (norms)", norms + extra, "per variable",
                         "figure / tolerance"),
            _ratio_check("step0_gradients (arrays)", arrays, "per variable",
                         "figure / tolerance")]


def _bn_after_first(case, run, check, ours, theirs):
    if not check.get("updated", True):
        rows = [(float(np.abs(run.bn_final[n] - run.bn_initial[n]).max()),
                 np.array_equal(run.bn_final[n], run.bn_initial[n]) and
                 np.array_equal(run.bn_after_first[n], run.bn_initial[n]), n)
                for n in sorted(run.bn_initial)]
        return [_ratio_check("bn_moving_stats (frozen)", rows, 0.0,
                             "max|x - x_checkpoint| after the steps")]
    stored = case.arrays(check["file"])
    rows = []
    for name, spec in check["variables"].items():
        ours_value = run.bn_after_first.get(name)
        if ours_value is None:
            rows.append((float("inf"), False, f"{name}: no such statistic here"))
            continue
        diff = float(np.abs(ours_value - stored[name]).max())
        update = spec["max_abs_update"]
        allowed = spec["tolerance_ratio"] * update + 2 * _ulp(spec["max_abs_after"])
        rows.append((diff / allowed, diff <= allowed,
                     f"{name} (max|x - x_orig| {diff:.3g}, update {update:.3g})"))
    return [_ratio_check("bn_moving_stats_after_first_step", rows, 1,
                         "max|x - x_orig| / (tolerance x max|update| + 2 ulp)")]


def _sets(case, run, check, ours, theirs):
    results = []
    for label, mine, wanted in (("trainable", run.trainable,
                                 case.spec["trainable_variables"]),
                                ("weight-decayed", run.weight_decayed,
                                 case.spec["weight_decayed_variables"])):
        extra, missing = sorted(set(mine) - set(wanted)), sorted(set(wanted) - set(mine))
        figure = (f"{label}: {len(mine)} here, {len(wanted)} in the original; "
                  f"{len(extra)} extra, {len(missing)} missing")
        results.append(Check(f"sets ({label})", not extra and not missing, figure,
                             [f"extra {n}" for n in extra[:5]] +
                             [f"missing {n}" for n in missing[:5]]))
    return results


_CONSTANT_RULES = {"zeros": 0.0, "ones": 1.0}


def _not_restored(case, run, check, ours, theirs):
    """Each variable against its rule: a constant (zeros, ones), or the statistics a
    random initialiser must show (std_range, max_abs, mean_abs_max, whichever are given)."""
    rows = []
    for name, spec in check["variables"].items():
        value = run.not_restored_initial.get(name)
        if value is None:
            rows.append((float("inf"), False, f"{name}: not recorded"))
            continue
        rule = spec.get("rule", "")
        if rule in _CONSTANT_RULES:
            diff = float(np.abs(value - _CONSTANT_RULES[rule]).max())
            rows.append((diff, diff <= spec.get("max_abs", 0.0) if rule == "zeros" else
                         diff == 0.0, f"{name} {rule}: max|w - {_CONSTANT_RULES[rule]:g}| "
                                      f"{diff:.3g}"))
            continue
        std, mean, max_abs = float(value.std()), float(value.mean()), float(np.abs(value).max())
        low, high = spec.get("std_range", (0.0, float("inf")))
        ok = (low <= std <= high and max_abs <= spec.get("max_abs", float("inf"))
              and abs(mean) <= spec.get("mean_abs_max", float("inf")))
        rows.append((0.0 if ok else 1.0, ok, f"{name} {rule}: std {std:.4g} in [{low}, "
                     f"{high}], max|w| {max_abs:.3g} <= {spec.get('max_abs')}, |mean| "
                     f"{abs(mean):.2g} <= {spec.get('mean_abs_max')}"))
    return [_ratio_check("not_restored_initialisation", rows, "rule", "0 within / 1 not")]


def _free_run(case, run, check, ours, theirs):
    loss_pairs, regularization_pairs, norms = [], [], []
    for k in range(1, min(len(ours), len(theirs))):
        for q in ours[k]:
            if q == "regularization":
                regularization_pairs.append((f"step {k} {q}", ours[k][q], theirs[k][q]))
            elif q == "gradient_global_norm":
                norms.append(f"step {k}: {_rel(ours[k][q], theirs[k][q]):.3g}")
            else:
                loss_pairs.append((f"step {k} {q}", ours[k][q], theirs[k][q]))
    results = [_scalar_check("free_run_after_step0 (loss)", loss_pairs,
                             check["tolerance_loss"]),
               _scalar_check("free_run_after_step0 (regularization)", regularization_pairs,
                             check["tolerance_regularization"])]
    results.append(Check("free_run_after_step0 (gradient norm, reported)", True,
                         "rel. difference per step: " + ", ".join(norms)))
    return results


def _optimizer_replay(case, run, check, ours, theirs):
    return run.replay


_EVALUATORS = {
    "learning_rate": _learning_rate,
    "step0_loss": _step0_loss,
    "step0_regularization": _step0_regularization,
    "step0_gradient_global_norm": _step0_global_norm,
    "step0_gradients": _step0_gradients,
    "bn_moving_stats_after_first_step": _bn_after_first,
    "sets": _sets,
    "not_restored_initialisation": _not_restored,
    "free_run_after_step0": _free_run,
    "optimizer_replay": _optimizer_replay,
}


# --- command line --------------------------------------------------------------------------


def check_case(folder: str) -> list[Check]:
    """Runs one case in a scratch folder and evaluates it."""
    case = Case.read(folder)
    with tempfile.TemporaryDirectory(prefix="conformance_") as workdir:
        run = run_case(case, workdir)
    return evaluate(case, run)


def report(folder: str, checks: list[Check], out=None) -> bool:
    """Prints the case's verdict and every check; True when all pass."""
    out = out or sys.stdout
    passed = all(c.passed for c in checks)
    print(f"== {folder}: {sum(c.passed for c in checks)}/{len(checks)} checks pass "
          f"-> {'PASS' if passed else 'FAIL'}", file=out)
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'} {check.name}: {check.figure}", file=out)
        for line in check.worst:
            print(f"       {line}"[:RESULT_WIDTH * 2], file=out)
    return passed


def main(argv: list[str]) -> int:
    folders = [a for a in argv if not a.startswith("--")]
    json_out = next((a.split("=", 1)[1] for a in argv if a.startswith("--json=")), None)
    if not folders or any(a.startswith("--") and not a.startswith("--json=") for a in argv):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    all_passed, summary = True, {}
    for folder in folders:
        try:
            checks = check_case(folder)
        except CaseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        all_passed &= report(folder, checks)
        summary[folder] = [dataclasses.asdict(c) for c in checks]
    if json_out:
        with open(json_out, "w") as f:
            json.dump(summary, f, indent=1)
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
