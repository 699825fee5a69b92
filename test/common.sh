# Shared by the train_*.sh launchers: argument parsing, the recipes, train + eval, summary.
# Each launcher sets RANK_SIZE (devices) and the real-data defaults, then calls run_launcher.
set -euo pipefail
cur_path=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$cur_path")
PYTHON=${PYTHON:-python3}
source "${cur_path}/env.sh"  # PYTHON with the package installed (.venv made on first use)

data_path=""; ckpt_path=""; precision="fp32"; device_id=${ASCEND_DEVICE_ID:-0}
extra_flags=()

parse_args() {
  for para in "$@"; do
    case $para in
      --data_path=*) data_path=${para#*=} ;;
      --ckpt_path=*) ckpt_path=${para#*=} ;;
      --batch_size=*) batch_size=${para#*=} ;;
      --train_steps=*) train_steps=${para#*=} ;;
      --learning_rate=*) learning_rate=${para#*=} ;;
      --precision=*) precision=${para#*=} ;;
      --device_id=*) device_id=${para#*=} ;;
      --help|-h) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
      --*) extra_flags+=("$para") ;;
      *) echo "[Error] unknown argument $para (flags look like --name=value)" >&2; exit 2 ;;
    esac
  done
}

run_launcher() {
  parse_args "$@"
  output=${cur_path}/output/${device_id}
  # One log per launcher: a second launcher must not overwrite the first one's log.
  log=${output}/${run_name}.log
  mkdir -p "$output"
  if [[ -z $data_path ]]; then tag=synthetic; else tag=data; fi
  # One logdir per launcher and data: running the same launcher again resumes it.
  logdir=${output}/${run_name}_${tag}
  [[ ${fresh_run:-0} == 1 ]] && rm -rf "$logdir"
  if [[ -z $data_path ]]; then
    # The built-in synthetic dataset: a small DeepLabv3+ that learns it in minutes on a CPU.
    model=(--model_variant=mobilenet_v2 --depth_multiplier=0.5 --output_stride=16
           --decoder_output_stride=4 --head_batch_norm_decay=0.99)
    data=(--dataset=synthetic)
    crop=97,97; eval_crop=(--eval_crop_size=)
    : "${batch_size:=$synthetic_batch_size}" "${train_steps:=$synthetic_steps}"
    : "${learning_rate:=$synthetic_learning_rate}"
  else
    # The original's recipe: Xception-65 DeepLabv3+, crop 513, OS16, momentum, decay 4e-5.
    model=(--model_variant=xception_65 --atrous_rates=6 --atrous_rates=12 --atrous_rates=18
           --output_stride=16 --decoder_output_stride=4)
    data=(--dataset=pascal_voc_seg "--dataset_dir=$data_path")
    crop=513,513; eval_crop=(--eval_crop_size=513,513)
    : "${batch_size:=$real_batch_size}" "${train_steps:=$real_steps}"
    : "${learning_rate:=$real_learning_rate}"
  fi
  init=()
  [[ -n $ckpt_path ]] && init=("--tf_initial_checkpoint=$ckpt_path")
  clones=()
  (( RANK_SIZE > 1 )) && clones=("--num_clones=$RANK_SIZE")
  global_batch=$(( batch_size * RANK_SIZE ))
  echo "training on ${RANK_SIZE} device(s): global batch ${global_batch}, ${train_steps} steps," \
       "log ${log}"
  start=$(date +%s)
  cd "$repo"
  # the terminal sees what the log gets (step lines, progress, figures) as it happens
  export PYTHONUNBUFFERED=1
  "$PYTHON" train.py --train_logdir="$logdir" "${data[@]}" "${model[@]}" "${init[@]}" \
    "${clones[@]}" --train_crop_size=$crop --train_batch_size=$global_batch \
    --training_number_of_steps="$train_steps" --base_learning_rate="$learning_rate" \
    --momentum=0.9 --weight_decay=4e-5 --precision="$precision" --log_steps="$log_steps" \
    --save_interval_secs=300 "${extra_flags[@]}" 2>&1 | tee "$log" || {
      echo "[Error] training failed (above; the whole output is in ${log})" >&2; exit 1; }
  "$PYTHON" eval.py --checkpoint_dir="$logdir" --eval_logdir="${logdir}/eval" \
    "${data[@]}" --eval_split=val "${eval_crop[@]}" --max_number_of_evaluations=1 \
    2>&1 | tee -a "$log" || {
      echo "[Error] evaluation failed (above; the whole output is in ${log})" >&2; exit 1; }
  end=$(date +%s)
  final=$(grep "^final step" "$log" | tail -1)
  if grep -q "already trained" <<< "$final"; then
    echo "final loss: none (already trained to the last step; remove ${logdir} to train anew)"
    echo "throughput: none (no step run)"
  else
    echo "final loss: $(sed -n 's/.* loss \([^ ]*\) .*/\1/p' <<< "$final")"
    echo "throughput: $(sed -n 's/.* \([^ ]*\) images\/s.*/\1/p' <<< "$final") images/s"
  fi
  echo "mIoU: $(grep -o 'mIoU [0-9.]*%' "$log" | tail -1 | cut -d' ' -f2)"
  echo "E2E time: $(( end - start )) s; checkpoints, TensorBoard events and options in ${logdir}"
}
