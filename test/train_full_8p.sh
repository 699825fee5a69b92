#!/usr/bin/env bash
# Trains and evaluates DeepLabv3+ on 8 devices (8 GPUs, or the CPU split into 8 devices).
#   bash test/train_full_8p.sh                       built-in synthetic dataset
#   bash test/train_full_8p.sh --data_path=SHARDS [--ckpt_path=CKPT]
#        PASCAL VOC shards, Xception-65 with the original 8p recipe (batch 7 per device,
#        32500 steps, learning rate 0.0008)
# Overrides: --batch_size (per device) --train_steps --learning_rate --precision=fp32|bf16|fp16
# and any train.py flag (--name=value). Log: test/output/<device>/<launcher name>.log
set -euo pipefail
source "$(dirname "$0")/common.sh"
RANK_SIZE=8
synthetic_batch_size=1; synthetic_steps=1200; synthetic_learning_rate=0.02
real_batch_size=7; real_steps=32500; real_learning_rate=0.0008
run_name=train_full_8p; log_steps=50
# One image per device: BatchNorm statistics must come from the global batch.
run_launcher --sync_batch_norm=true "$@"
