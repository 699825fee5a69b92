#!/usr/bin/env bash
# Trains and evaluates DeepLabv3+ on one device.
#   bash test/train_full_1p.sh                       built-in synthetic dataset (~5 min, CPU)
#   bash test/train_full_1p.sh --data_path=SHARDS [--ckpt_path=CKPT]
#        PASCAL VOC shards, Xception-65 with the original 1p recipe (batch 7, 300000 steps)
# Overrides: --batch_size (per device) --train_steps --learning_rate --precision=fp32|bf16|fp16
# and any train.py flag (--name=value). Log: test/output/<device>/<launcher name>.log
set -euo pipefail
source "$(dirname "$0")/common.sh"
RANK_SIZE=1
synthetic_batch_size=8; synthetic_steps=1200; synthetic_learning_rate=0.02
real_batch_size=7; real_steps=300000; real_learning_rate=0.0001
run_name=train_full_1p; log_steps=50
run_launcher "$@"
