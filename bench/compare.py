"""Ours against the PyTorch peer, side by side in one run: the source of every performance
figure in the README.

  python bench/compare.py [--rounds=3] [--threads=2] [--rows=forward,train,export]
      [--runs=3] [--steps=3] [--peer_python=PYTHON]

Rows (Xception-65 DeepLabv3+, output stride 16, 21 classes):
  forward b1 fp32 / bf16    ours: bench/forward.py `time_forward` (Keras model, 513x513);
                            peer: bench/peer_torch.py (smp DeepLabV3Plus + timm xception65,
                            512x512, channels_last, bf16 by torch.autocast)
  train step b2 fp32 / bf16 ours: bench/train_step.py `run_child` (Trainer.make_step_fn,
                            crop 513); peer: bench/peer_torch.py --task=train (SGD step, 512)
  train step b2 bf16        ours with TrainOptions(recompute="blocks"), against the peer's
   recompute=blocks         bf16 step (the table's last line: its time / ours without)
  budget (--rows=budget)    the largest training batch at 513 under 6 GB peak RSS, ours
                            bf16 (recompute none, blocks, all) and the peer's bf16, from one
                            step at batch 2 and at batch 3 of each (linear estimate; the
                            peer's BatchNorm refuses batch 1 in training)
  export rows               our exported model at 513x513 (bench/export_latency.py
                            `export_variant`, verified like every export) run by its own
                            runtime, against our Keras fp32 forward of the same round:
                            frozen graph (TF Session), SavedModel, ONNX Runtime, TFLite int8.

Every measurement runs in its own process (so peak RSS, VmHWM, is its own), alternating ours
and the peer's (the order flips every round), for --rounds rounds, each process with
--threads threads (TF intra-op, torch.set_num_threads, ONNX Runtime and TFLite threads).
A process reports the median of its timed runs; the table gives, per row, the median over
rounds and the range [min, max] of the rounds, peak RSS, GFLOP/s = 2 x multiply-adds / s
(training: 3 x the forward's multiply-adds x batch, forward plus two backward products), and
the ratios ours / reference of the medians of this run. The peer runs in --peer_python
(default: this interpreter; install the `bench` extra: pip install -e .[bench]).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULT_PREFIX = "RESULT "
FORWARD = {"forward b1 fp32": "fp32", "forward b1 bf16": "bf16"}
TRAIN = {"train step b2 fp32": "fp32", "train step b2 bf16": "bf16",
         "train step b2 bf16 recompute=blocks": "bf16@blocks"}
# Rows of ours only, compared with the peer's row named here (the peer has no such option).
PEER_ROW = {"train step b2 bf16 recompute=blocks": "train step b2 bf16"}
EXPORTS = {"exported frozen graph fp32": "frozen", "exported SavedModel fp32": "saved_model",
           "ONNX Runtime fp32": "onnx", "TFLite int8": "tflite_int8"}
KERAS_FP32 = "forward b1 fp32"
# budget rows: (system, train config) whose largest batch under BUDGET_BYTES is estimated
BUDGET = {"ours bf16": ("ours", "bf16"), "ours bf16 recompute=blocks": ("ours", "bf16@blocks"),
          "ours bf16 recompute=all": ("ours", "bf16@all"), "PyTorch peer bf16": ("peer", "bf16")}
BUDGET_BYTES = 6e9
BUDGET_BATCHES = (2, 3)  # the peer's BatchNorm (image pooling at 1x1) refuses batch 1
CALIBRATION_IMAGES = 4


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", default="forward,train,export",
                        help="comma-separated groups: forward, train, export, budget")
    parser.add_argument("--runs", type=int, default=3, help="timed forward runs per process")
    parser.add_argument("--steps", type=int, default=3, help="timed train steps per process")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (>= 1)")
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--peer_python", default=sys.executable,
                        help="Python with torch, timm and segmentation-models-pytorch")
    parser.add_argument("--reuse_workdir", default=None,
                        help="directory of an earlier run's exports (xception65/ inside) to "
                        "time instead of exporting again")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _limit_tf_threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _export_dir(workdir: str) -> str:
    return os.path.join(workdir, "xception65")


def _child(args) -> dict:
    """Runs one measurement (`--child=kind:what`) in this process."""
    kind, _, what = args.child.partition(":")
    _limit_tf_threads(args.threads)
    from train_step import peak_rss_bytes

    if kind == "forward":
        from forward import time_forward

        result = time_forward("xception65", what, args.runs, args.warmup)
    elif kind == "train":
        from train_step import run_child

        result = run_child(argparse.Namespace(child=what, batch_size=args.batch_size,
                                              steps=args.steps, warmup=args.warmup,
                                              data="random"))
    elif kind == "prepare":
        return _prepare(args)
    else:
        result = _time_export(args, what)
    return {**result, "peak_rss": peak_rss_bytes()}


def _prepare(args) -> dict:
    """Exports xception65 into the workdir (not timed): the float formats through export
    (verified, as any export); TFLite int8 through its registered writer, its verification
    figures returned rather than enforced (random weights leave small label margins)."""
    import numpy as np
    from export_latency import SIZE, export_variant

    from deeplab.export import formats, verify

    rng = np.random.default_rng(1)
    calibration = [rng.integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
                   for _ in range(CALIBRATION_IMAGES)]
    floats = [fmt for fmt in EXPORTS.values() if not formats.get(fmt).needs_calibration]
    module = export_variant("xception65", _export_dir(args.workdir), floats)
    figures = {}
    for name in set(EXPORTS.values()) - set(floats):
        fmt = formats.get(name)
        path = os.path.join(_export_dir(args.workdir), fmt.file_name)
        fmt.write(formats.WriteSource(module, calibration=calibration), path)
        report = verify.Reference(module).compare(fmt.load(path), path, fmt.tolerance)
        print(f"not enforced: {report.line()}", file=sys.stderr, flush=True)
        figures[name] = report.to_dict()
    return {"median": 0.0, "verification": figures}


def _time_export(args, fmt: str) -> dict:
    import time

    import numpy as np
    from export_latency import SIZE, runner

    from deeplab.export import formats

    model = runner(os.path.join(_export_dir(args.workdir), formats.get(fmt).file_name),
                   args.threads)
    image = np.random.default_rng(0).integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
    for _ in range(args.warmup):
        model(image)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        model(image)
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "times": times}


def _run(command: list[str], label: str) -> dict | None:
    proc = subprocess.run(command, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    lines = [line for line in proc.stderr.splitlines() if "Error" in line] or \
        proc.stderr.splitlines() or ["?"]
    print(f"{label}: failed (exit {proc.returncode}): {lines[-1][:300]}", flush=True)
    return None


def _ours(args, child: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), f"--child={child}",
            f"--threads={args.threads}", f"--runs={args.runs}", f"--steps={args.steps}",
            f"--warmup={args.warmup}", f"--batch_size={args.batch_size}",
            f"--workdir={args.workdir}"]


def _peer(args, task: str, precision: str) -> list[str]:
    runs = args.runs if task == "forward" else args.steps
    return [args.peer_python, os.path.join(BENCH, "peer_torch.py"), f"--task={task}",
            f"--precision={precision}", f"--threads={args.threads}", f"--runs={runs}",
            f"--warmup={args.warmup}", f"--batch_size={args.batch_size}"]


def _jobs(args) -> list[tuple[str, str, list[str]]]:
    """(row, "ours" or "peer", command) in the order of one round."""
    groups, jobs = args.rows.split(","), []
    if "forward" in groups or "export" in groups:
        for row, precision in FORWARD.items():
            if "forward" in groups or row == KERAS_FP32:
                jobs.append((row, "ours", _ours(args, f"forward:{precision}")))
            if "forward" in groups:
                jobs.append((row, "peer", _peer(args, "forward", precision)))
    if "train" in groups:
        for row, precision in TRAIN.items():
            jobs.append((row, "ours", _ours(args, f"train:{precision}")))
            if row not in PEER_ROW:
                jobs.append((row, "peer", _peer(args, "train", precision)))
    if "export" in groups:
        jobs += [(row, "ours", _ours(args, f"export:{fmt}")) for row, fmt in EXPORTS.items()]
    if "budget" in groups:
        jobs += _budget_jobs(args)
    return jobs


def _budget_jobs(args) -> list:
    """One training step at each BUDGET_BATCHES of each BUDGET row (memory only)."""
    jobs = []
    for row, (system, config) in BUDGET.items():
        for batch in BUDGET_BATCHES:
            small = argparse.Namespace(**{**vars(args), "batch_size": batch, "steps": 1})
            command = (_ours(small, f"train:{config}") if system == "ours"
                       else _peer(small, "train", config))
            jobs.append((f"budget {row} b{batch}", system, command))
    return jobs


def print_budget(collected: dict) -> None:
    """Largest batch at 513 whose training step fits BUDGET_BYTES of peak RSS, estimated
    linearly from the peak RSS at the two BUDGET_BATCHES (fixed part + per-image part)."""
    lines = []
    low, high = BUDGET_BATCHES
    for row, (system, _) in BUDGET.items():
        one, two = (_summary(collected.get((f"budget {row} b{b}", system), []))
                    for b in BUDGET_BATCHES)
        if not one or not two:
            continue
        per_image = max(two["peak_rss"] - one["peak_rss"], 1) / (high - low)
        fixed = one["peak_rss"] - low * per_image
        batch = int((BUDGET_BYTES - fixed) // per_image)
        lines.append(f"| {row} | {one['peak_rss'] / 1e9:.2f} | {two['peak_rss'] / 1e9:.2f} | "
                     f"{per_image / 1e9:.2f} | {batch} |")
    if lines:
        print(f"\nLargest training batch at 513 under {BUDGET_BYTES / 1e9:.0f} GB peak RSS "
              f"(estimated: fixed + per-image memory from batches {low} and {high}):\n")
        print(f"| configuration | peak RSS b{low} GB | peak RSS b{high} GB | per image GB | "
              "largest batch |")
        print("|---|---|---|---|---|")
        print("\n".join(lines))


def _round_order(jobs, round_index: int):
    """Flips ours/peer within each row on odd rounds."""
    if round_index % 2 == 0:
        return jobs
    flipped = list(jobs)
    for i in range(len(flipped) - 1):
        a, b = flipped[i], flipped[i + 1]
        if a[0] == b[0] and a[1] == "ours" and b[1] == "peer":
            flipped[i], flipped[i + 1] = b, a
    return flipped


def _summary(results: list[dict]) -> dict | None:
    if not results:
        return None
    medians = [r["median"] for r in results]
    return {"median": statistics.median(medians), "low": min(medians), "high": max(medians),
            "peak_rss": max(r["peak_rss"] for r in results),
            "macs": results[0].get("macs"), "rounds": len(results)}


def _gflops(summary, row: str, batch: int, forward_macs) -> str:
    macs = (summary or {}).get("macs") or forward_macs
    if not summary or not macs:
        return "-"
    work = 3 * macs * batch if row in TRAIN else macs
    return f"{2 * work / summary['median'] / 1e9:.0f}"


def _cell(summary) -> str:
    if not summary:
        return "-"
    return f"{summary['median']:.3f} [{summary['low']:.3f}, {summary['high']:.3f}]"


def _rss(summary) -> str:
    return f"{summary['peak_rss'] / 1e9:.2f}" if summary else "-"


def print_table(collected: dict, args) -> None:
    """collected: {(row, system): [result per round]}; prints the markdown table."""
    ours_forward = _summary(collected.get((KERAS_FP32, "ours"), []))
    forward_macs = ours_forward and ours_forward["macs"]
    print("| row | ours s median [round range] | ours peak RSS GB | ours GFLOP/s | reference | "
          "reference s median [range] | reference peak RSS GB | reference GFLOP/s | "
          "time ours/ref | memory ours/ref |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = dict.fromkeys(row for row, _ in collected)
    for row in (r for r in rows if not r.startswith("budget ")):
        ours = _summary(collected.get((row, "ours"), []))
        if row in EXPORTS:
            name, ref = "our Keras forward fp32", ours_forward
        else:
            name = "PyTorch peer" + (f" ({PEER_ROW[row]})" if row in PEER_ROW else "")
            ref = _summary(collected.get((PEER_ROW.get(row, row), "peer"), []))
        batch = args.batch_size if row in TRAIN else 1
        time_ratio = f"{ours['median'] / ref['median']:.2f}" if ours and ref else "-"
        memory = (f"{ours['peak_rss'] / ref['peak_rss']:.2f}"
                  if ours and ref and row not in EXPORTS else "-")
        print(f"| {row} | {_cell(ours)} | {_rss(ours)} | "
              f"{_gflops(ours, row, batch, forward_macs)} | {name} | "
              f"{_cell(ref) if row not in EXPORTS else 'same run'} | "
              f"{_rss(ref) if row not in EXPORTS else '-'} | "
              f"{_gflops(ref, row, batch, None) if row not in EXPORTS else '-'} | "
              f"{time_ratio} | {memory} |")
    _recompute_line(collected)
    print_budget(collected)


def _recompute_line(collected: dict) -> None:
    """Step time and peak RSS of each recomputing row over the same row without it."""
    for row, plain_row in PEER_ROW.items():
        ours, plain = (_summary(collected.get((r, "ours"), [])) for r in (row, plain_row))
        if ours and plain:
            print(f"\n{row} / {plain_row} (ours): time "
                  f"{ours['median'] / plain['median']:.2f}, peak RSS "
                  f"{ours['peak_rss'] / plain['peak_rss']:.2f}")


def _header(args) -> str:
    import tensorflow as tf

    peer = subprocess.run([args.peer_python, "-c", "import torch, timm, "
                           "segmentation_models_pytorch as s; print(f'torch {torch.__version__}"
                           ", timm {timm.__version__}, smp {s.__version__}')"],
                          capture_output=True, text=True).stdout.strip() or "peer missing"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.machine())
    return (f"{cpu}, {os.cpu_count()} CPUs; TF {tf.__version__}, {peer}; Python "
            f"{platform.python_version()}; {args.threads} threads per process, "
            f"{args.rounds} rounds; load average {os.getloadavg()[0]:.2f}")


def main(argv=None) -> None:
    args = _args(argv)
    if args.child:
        print(RESULT_PREFIX + json.dumps(_child(args)), flush=True)
        return
    print(_header(args), flush=True)
    with tempfile.TemporaryDirectory(prefix="deeplab-compare-") as workdir:
        args.workdir = args.reuse_workdir or workdir
        if "export" in args.rows.split(",") and not args.reuse_workdir:
            print("exporting xception65 (frozen, SavedModel, ONNX, TFLite int8) ...", flush=True)
            prepared = _run(_ours(args, "prepare:"), "export")
            if prepared is None:
                args.rows = ",".join(g for g in args.rows.split(",") if g != "export")
            for name, figures in prepared.get("verification", {}).items() if prepared else ():
                print(f"{name} against Keras (random weights, not enforced): labels agree on "
                      f"{100 * figures['label_agreement']:.2f}% of {figures['pixels']} pixels, "
                      f"mean |p difference| {figures['mean_abs_diff']:.2e}", flush=True)
        collected: dict = {}
        jobs = _jobs(args)
        for index in range(args.rounds):
            for row, system, command in _round_order(jobs, index):
                result = _run(command, f"round {index + 1} {row} {system}")
                if result is not None:
                    collected.setdefault((row, system), []).append(result)
                    print(f"round {index + 1}  {row:28s} {system:4s} median "
                          f"{result['median']:.3f} s  peak RSS {result['peak_rss'] / 1e9:.2f} GB",
                          flush=True)
            if index + 1 < args.rounds:  # a table so far, in case the run is cut short
                print(f"\nafter round {index + 1}:")
                print_table(collected, args)
    print(f"\nXception-65 DeepLabv3+ OS16; ours 513x513, peer 512x512; {_header(args)}; "
          f"load average at the end {os.getloadavg()[0]:.2f}\n")
    print_table(collected, args)


if __name__ == "__main__":
    main()
