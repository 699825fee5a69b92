"""Seconds per training step and peak memory: xception65 DeepLabv3+ (OS16), crop 513, batch 2.

  python bench/train_step.py [--precisions=fp32,bf16,fp16] [--xla] [--steps=5] [--warmup=2]
      [--data=random|synthetic] [--recompute=none,blocks,all]

Runs the real step function: `deeplab.train.trainer.Trainer(...).make_step_fn()` (forward,
loss, backward, momentum update, under a OneDeviceStrategy on the CPU) with the default
TrainOptions apart from the batch size and precision. --data=random (default) feeds one batch
of random pixels and labels, repeated, through a distributed tf.data iterator, so the time is
the step alone; --data=synthetic writes a small synthetic dataset at 513x513 and uses
`Trainer.dataset()` (decode, augment, crop: the input pipeline shares the two cores with the
step). Each configuration runs in its own subprocess so its peak RSS (VmHWM: model, optimizer
state, activations and TF runtime) is its own. --xla adds rows with TrainOptions(xla=True)
(make_step_fn jit-compiles the per-replica step; slow to compile and, on this CPU, to run).
--recompute runs each configuration with each TrainOptions.recompute mode (a child's config
is precision[+xla][@mode]).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 513
NUM_CLASSES = 21
RESULT_PREFIX = "RESULT "


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", default="fp32,bf16,fp16",
                        help="comma-separated: fp32, bf16, fp16")
    parser.add_argument("--xla", action="store_true", help="also time jit_compile=True steps")
    parser.add_argument("--recompute", default="none",
                        help="comma-separated TrainOptions.recompute modes: none, blocks, all")
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
    parser.add_argument("--data", choices=("random", "synthetic"), default="random")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM), in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _random_iterator(strategy, batch_size: int):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    batch = {"image": tf.constant(rng.uniform(0, 255, (batch_size, SIZE, SIZE, 3)), tf.float32),
             "label": tf.constant(rng.integers(0, NUM_CLASSES, (batch_size, SIZE, SIZE, 1)),
                                  tf.int32)}
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    return iter(strategy.experimental_distribute_dataset(dataset))


def run_child(args) -> dict:
    """Times one configuration ("precision" or "precision+xla") in this process."""
    import numpy as np
    import tensorflow as tf

    from deeplab.data.pipeline import InputOptions
    from deeplab.model.options import ModelOptions
    from deeplab.train.options import TrainOptions
    from deeplab.train.trainer import DataOptions, Trainer

    config, _, recompute = args.child.partition("@")
    precision, _, xla = config.partition("+")
    model_options = ModelOptions(model_variant="xception_65", atrous_rates=(6, 12, 18),
                                 output_stride=16, decoder_output_stride=4,
                                 num_classes=NUM_CLASSES)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with tempfile.TemporaryDirectory() as workdir:
        dataset_dir = os.path.join(workdir, "data")
        if args.data == "synthetic":
            from deeplab.datasets.synthetic import write_synthetic_dataset

            write_synthetic_dataset(dataset_dir, num_train=8, num_val=2,
                                    image_size=(SIZE, SIZE))
        data = DataOptions("synthetic", dataset_dir, "train", NUM_CLASSES, 255,
                           InputOptions(crop_size=(SIZE, SIZE)))
        options = TrainOptions(train_logdir=os.path.join(workdir, "logdir"),
                               train_batch_size=args.batch_size, precision=precision,
                               xla=bool(xla), recompute=recompute or "none", seed=0)
        trainer = Trainer(model_options, options, data, strategy)
        step_fn = trainer.make_step_fn()
        mode = "make_step_fn, replica step jit-compiled" if xla else "make_step_fn"
        mode += f", recompute={options.recompute}"
        iterator = (iter(trainer.dataset()) if args.data == "synthetic"
                    else _random_iterator(strategy, args.batch_size))
        start = time.perf_counter()
        loss = float(step_fn(iterator)["total_loss"])
        first = time.perf_counter() - start
        for _ in range(max(0, args.warmup - 1)):
            loss = float(step_fn(iterator)["total_loss"])
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            loss = float(step_fn(iterator)["total_loss"])
            times.append(time.perf_counter() - start)
    return {"config": args.child, "mode": mode, "first": first, "median": float(np.median(times)),
            "min": float(np.min(times)), "loss": loss, "peak_rss": peak_rss_bytes(),
            "load": os.getloadavg()[0]}


def _run_config(config: str, args) -> dict | None:
    command = [sys.executable, os.path.abspath(__file__), f"--child={config}",
               f"--batch_size={args.batch_size}", f"--steps={args.steps}",
               f"--warmup={args.warmup}", f"--data={args.data}"]
    proc = subprocess.run(command, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    errors = [line for line in proc.stderr.splitlines() if "Error" in line]
    print(f"{config}: failed (exit {proc.returncode}): "
          f"{(errors or proc.stderr.splitlines() or ['?'])[-1][:300]}", flush=True)
    return None


def main(argv=None) -> None:
    args = _args(argv)
    if args.child:
        print(RESULT_PREFIX + json.dumps(run_child(args)), flush=True)
        return
    import keras
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    onednn = "on" if _pywrap_util_port.IsMklEnabled() else "off"

    print(f"TF {tf.__version__}, Keras {keras.__version__}, Python "
          f"{platform.python_version()}; oneDNN {onednn}; "
          f"{os.cpu_count()} CPUs ({platform.machine()}), TF default threads; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    configs = args.precisions.split(",")
    if args.xla:
        configs += [f"{p}+xla" for p in args.precisions.split(",")]
    configs = [c if mode == "none" else f"{c}@{mode}"
               for mode in args.recompute.split(",") for c in configs]
    results = []
    for config in configs:
        result = _run_config(config, args)
        if result is None:
            continue
        results.append(result)
        print(f"{config:9s} ({result['mode']}) first {result['first']:6.1f} s  "
              f"median {result['median']:.2f} s  "
              f"min {result['min']:.2f} s  peak RSS {result['peak_rss'] / 1e9:.2f} GB  "
              f"loss {result['loss']:.3f}  load {result['load']:.2f}", flush=True)
    print(f"\nTraining step, xception65 DeepLabv3+ OS16, crop {SIZE}x{SIZE}, batch "
          f"{args.batch_size}, {args.data} data, Trainer.make_step_fn on OneDeviceStrategy; "
          f"{args.steps} timed steps after {args.warmup} warm-up; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| precision | compile | first step s | s/step median | s/step min | images/s "
          "| peak RSS GB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        config, _, recompute = r["config"].partition("@")
        precision, _, xla = config.partition("+")
        precision += f" recompute={recompute}" if recompute else ""
        print(f"| {precision} | {'xla' if xla else 'graph'} | {r['first']:.1f} | "
              f"{r['median']:.2f} | {r['min']:.2f} | {args.batch_size / r['median']:.2f} | "
              f"{r['peak_rss'] / 1e9:.2f} |")


if __name__ == "__main__":
    main()
