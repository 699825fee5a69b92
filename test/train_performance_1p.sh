#!/usr/bin/env bash
# A short training run that prints the throughput (images/s) on one device.
#   bash test/train_performance_1p.sh [--data_path=SHARDS] [--train_steps=N] [--precision=bf16]
# Log: test/output/<device>/train_performance_1p.log
set -euo pipefail
source "$(dirname "$0")/common.sh"
RANK_SIZE=1
synthetic_batch_size=8; synthetic_steps=100; synthetic_learning_rate=0.02
real_batch_size=7; real_steps=50; real_learning_rate=0.0001
run_name=train_performance_1p; log_steps=10; fresh_run=1
run_launcher "$@"
