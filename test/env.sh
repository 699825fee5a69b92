# Sourced by the launchers (via common.sh) and run_tests.sh: sets PYTHON to an interpreter
# that has this package and its dependencies, creating them on first use.
#
# - An interpreter that already has them ($PYTHON, else python3: an active virtualenv or
#   conda environment, a Docker image) is used as it is.
# - Otherwise the checkout's virtual environment (.venv, or $DEEPLAB_VENV) is created on first
#   use and the package installed into it in editable mode with the `cpu` extra
#   (DEEPLAB_DEVICE=gpu: the `gpu` extra, in .venv-gpu, since the two TensorFlow wheels cannot
#   share an environment), plus the extras in $DEEPLAB_ENV_EXTRAS (run_tests.sh: `test`).
#   Later runs reuse it; it is updated when pyproject.toml or the extras change.
# Needs Python 3.11 to 3.13 ($DEEPLAB_PYTHON or python3) to create the environment.

_deeplab_env_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

_deeplab_has_deps() {  # $1 = interpreter, $2 = extras; true when it has every module needed
  local modules="deeplab tensorflow keras absl PIL scipy matplotlib"
  [[ ,$2, == *,test,* ]] && modules+=" pytest xdist ruff onnxruntime tf2onnx"
  (cd / && "$1" -c 'import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))' $modules >/dev/null 2>&1)
}

_deeplab_env_repair() {  # $1 = venv; a broken one (python that does not run, no pip) is
  # repaired (ensurepip), else rebuilt when it is the checkout's own, else named in one line
  local venv=$1
  [[ -e $venv ]] || return 0
  "$venv/bin/python" -c 'import pip' >/dev/null 2>&1 && return 0
  if "$venv/bin/python" -c '' >/dev/null 2>&1 &&
     "$venv/bin/python" -m ensurepip -q >/dev/null 2>&1 &&
     "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
    echo "the virtual environment $venv had no pip; restored it (ensurepip)" >&2
    return 0
  fi
  if [[ $venv == "$_deeplab_env_repo/.venv" || $venv == "$_deeplab_env_repo/.venv-gpu" ]]; then
    echo "the virtual environment $venv is broken (no working python or pip); rebuilding it" >&2
    rm -rf "$venv"
    return 0
  fi
  echo "[Error] $venv is a broken virtual environment (no working python or pip): delete it" \
       "(rm -rf $venv) and run again" >&2
  return 2
}

_deeplab_env_setup() {
  local extras=${DEEPLAB_ENV_EXTRAS:-} device=${DEEPLAB_DEVICE:-cpu} candidate=${PYTHON:-python3}
  if command -v "$candidate" >/dev/null 2>&1 && _deeplab_has_deps "$candidate" "$extras"; then
    PYTHON=$candidate
    return 0
  fi
  case $device in
    cpu) local venv=${DEEPLAB_VENV:-$_deeplab_env_repo/.venv} ;;
    gpu) local venv=${DEEPLAB_VENV:-$_deeplab_env_repo/.venv-gpu} ;;
    *) echo "[Error] DEEPLAB_DEVICE=$device: use cpu or gpu" >&2; return 2 ;;
  esac
  local stamp="$venv/.deeplab-installed" sum installed=""
  sum=$(cksum < "$_deeplab_env_repo/pyproject.toml")
  _deeplab_env_repair "$venv" || return 2
  if [[ ! -x $venv/bin/python ]]; then
    local base=${DEEPLAB_PYTHON:-python3}
    if ! "$base" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info < (3, 14))' \
        2>/dev/null; then
      echo "[Error] $base is missing or not Python 3.11-3.13 (what TensorFlow 2.21 and Keras" \
           "3.15 install on); install one or set DEEPLAB_PYTHON to one" >&2
      return 2
    fi
    echo "creating the virtual environment $venv (first run only)" >&2
    "$base" -m venv "$venv" || return 2
    if ! "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
      rm -rf "$venv"
      echo "[Error] $base -m venv made an environment without pip (Debian/Ubuntu: apt install" \
           "python3-venv; or set DEEPLAB_PYTHON to another Python 3.11-3.13)" >&2
      return 2
    fi
  fi
  # the stamp holds pyproject.toml's checksum, then the extras installed with it
  [[ -f $stamp && $(head -1 "$stamp") == "$sum" ]] && installed=$(sed -n 2p "$stamp")
  if [[ -z $installed ]] || ! _deeplab_has_deps "$venv/bin/python" "$extras"; then
    local wanted
    wanted=$(tr ',' '\n' <<< "$device,$extras,$installed" | sed '/^$/d' | sort -u | paste -sd,)
    echo "installing deeplab-tf2[$wanted] into $venv (first run: downloads TensorFlow," \
         "a few minutes)" >&2
    # an interrupted install leaves no stamp: the next run installs again
    if ! { "$venv/bin/python" -m pip install -q --upgrade pip >&2 &&
           "$venv/bin/python" -m pip install -q -e "$_deeplab_env_repo[$wanted]" >&2; }; then
      echo "[Error] installing into $venv failed (pip's message above); fix that and run" \
           "again (to start over: rm -rf $venv)" >&2
      return 2
    fi
    printf '%s\n%s\n' "$sum" "$wanted" > "$stamp"
  fi
  PYTHON=$venv/bin/python
}

_deeplab_env_setup || exit $?
export PYTHON
