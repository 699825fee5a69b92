"""The PyTorch peer of bench/compare.py: segmentation-models-pytorch DeepLabV3Plus with the
timm Xception-65 encoder (output stride 16), 21 classes, at 512x512, channels_last.

  python bench/peer_torch.py --task=forward|train --precision=fp32|bf16 [--threads=2]
      [--runs=3] [--warmup=1] [--batch_size=2]

forward: batch 1, eval mode, inference_mode. train: batch --batch_size, train mode, SGD with
momentum 0.9, cross-entropy on random labels, one optimizer step per timed call. bf16:
torch.autocast("cpu", dtype=torch.bfloat16). Weights are random (encoder_weights=None).
Prints one line `RESULT {json}` with the median/min seconds, every timed run, peak RSS (VmHWM)
and the multiply-adds of the Conv2d layers for one image (counted by forward hooks).
Needs the `bench` extra (torch, timm, segmentation-models-pytorch).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

SIZE = 512
NUM_CLASSES = 21
RESULT_PREFIX = "RESULT "


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM), in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def build(torch):
    import segmentation_models_pytorch as smp

    model = smp.DeepLabV3Plus(encoder_name="tu-xception65", encoder_weights=None,
                              encoder_output_stride=16, classes=NUM_CLASSES)
    return model.to(memory_format=torch.channels_last)


def count_macs(torch, model) -> int:
    """Multiply-adds of every Conv2d for one SIZE x SIZE image (out H*W*k*k*C_in/g*C_out)."""
    total = []

    def hook(module, inputs, output):
        kh, kw = module.kernel_size
        per_position = kh * kw * module.in_channels // module.groups * module.out_channels
        total.append(output.shape[2] * output.shape[3] * per_position)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, torch.nn.Conv2d)]
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(1, 3, SIZE, SIZE).to(memory_format=torch.channels_last))
    for handle in handles:
        handle.remove()
    return int(sum(total))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("forward", "train"), required=True)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(torch)
    macs = count_macs(torch, model)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())
    if args.task == "forward":
        model.eval()
        images = torch.rand(1, 3, SIZE, SIZE).to(memory_format=torch.channels_last)

        def step():
            with torch.inference_mode(), autocast:
                model(images).float().numpy()
    else:
        model.train()
        images = torch.rand(args.batch_size, 3, SIZE, SIZE).to(
            memory_format=torch.channels_last)
        labels = torch.randint(0, NUM_CLASSES, (args.batch_size, SIZE, SIZE))
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model(images).float(), labels)
            loss.backward()
            optimizer.step()
            float(loss)

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(max(0, args.warmup - 1)):
        step()
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(RESULT_PREFIX + json.dumps({
        "first": first, "median": statistics.median(times), "min": min(times), "times": times,
        "peak_rss": peak_rss_bytes(), "macs": macs, "load": os.getloadavg()[0],
        "version": f"torch {torch.__version__}"}), flush=True)


if __name__ == "__main__":
    main()
