"""Fault injection for train.py (and the commands reading its checkpoints), as a user meets
them: kill -9 at any moment, SIGTERM / Ctrl-C, a full disk during a save, damaged
checkpoint files, and bad inputs that must give one line and exit status 2.

Runs are child processes (`train_test.py`'s helpers); this file is also the child that
kills itself part-way through a checkpoint write:
`python train_faults_test.py kill-in-save HOOK N -- <train.py flags>` (HOOK: merge or
state; N: which save).
DEEPLAB_KILL_ROUNDS sets the number of kill -9 moments (default 4; the issue's figure: 10).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from eval_test import finish, start, tiny_run  # noqa: F401 - the session fixture
from train_test import REPO, _train_cmd, data_dir  # noqa: F401 - the module fixture

KILL_MOMENTS = ("steps", "save-merge", "start", "save-state")


def child_kill_in_save(hook: str, nth: str, *train_args: str) -> None:
    """Runs train.py, SIGKILLing this process inside its nth checkpoint save: before the
    temporary shard is merged into model.ckpt-N (hook=merge) or after the merge, before the
    `checkpoint` state file names it (hook=state)."""
    import runpy

    import tensorflow as tf  # noqa: F401 - loads the modules patched below
    from tensorflow.python.checkpoint import checkpoint_management
    from tensorflow.python.ops import gen_io_ops

    module, name = ((gen_io_ops, "merge_v2_checkpoints") if hook == "merge"
                    else (checkpoint_management, "update_checkpoint_state_internal"))
    original, calls = getattr(module, name), []

    def killing(*args, **kwargs):
        calls.append(1)
        if len(calls) == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(module, name, killing)
    sys.argv = ["train.py", *train_args]
    runpy.run_path(os.path.join(REPO, "train.py"), run_name="__main__")


def _saved_steps(logdir) -> list[int]:
    if not os.path.isdir(logdir):
        return []
    return sorted(int(m.group(1)) for f in os.listdir(logdir)
                  if (m := re.fullmatch(r"model\.ckpt-(\d+)\.index", f)))


def _latest_step(logdir) -> int | None:
    """The step a resume must start from: the newest checkpoint that reads back intact,
    whether or not the `checkpoint` state file lists it yet (a kill between a save's index
    and the state file leaves it unlisted)."""
    import tensorflow as tf

    from deeplab.checkpoints.io import (
        CheckpointError,
        checkpoint_step,
        numbered_checkpoints,
        verify_checkpoint,
    )

    latest = tf.train.latest_checkpoint(str(logdir))
    candidates = set(numbered_checkpoints(str(logdir), "model.ckpt"))
    candidates |= {latest} if latest else set()
    for prefix in sorted(candidates, key=checkpoint_step, reverse=True):
        try:
            verify_checkpoint(prefix)
        except CheckpointError:
            continue
        return checkpoint_step(prefix)
    return None


def _assert_intact(logdir) -> None:
    """options.json parses; the latest checkpoint and every other listed one still on disk
    read back intact. (TF's CheckpointManager lists a checkpoint until the state file is
    rewritten after its files are deleted: a kill in between leaves a name without files.)"""
    import tensorflow as tf

    from deeplab.checkpoints.io import verify_checkpoint

    if (logdir / "options.json").exists():
        json.loads((logdir / "options.json").read_text())
    state = tf.train.get_checkpoint_state(str(logdir))
    if state is None:
        return
    verify_checkpoint(state.model_checkpoint_path)
    for prefix in state.all_model_checkpoint_paths:
        if os.path.exists(prefix + ".index"):
            verify_checkpoint(prefix)


def _popen(cmd, **kwargs):
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                            **kwargs)


def _wait_for(predicate, proc, timeout=300):
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def _kill_round(moment, logdir, data_dir, rng):  # noqa: F811
    """Starts train.py (saving every step), kill -9s it at `moment`; returns its stderr."""
    cmd = _train_cmd(logdir, data_dir, 1000)
    cmd = [*cmd, "--save_interval_steps=1"]
    if moment.startswith("save-"):
        nth = str(rng.randint(1, 3))
        proc = _popen([sys.executable, __file__, "kill-in-save", moment[5:], nth, "--",
                       *cmd[2:]])
        proc.wait(timeout=600)
    else:
        proc = _popen(cmd)
        if moment == "start":
            time.sleep(rng.uniform(0.5, 6.0))
        else:
            before = len(_saved_steps(logdir))
            _wait_for(lambda: len(_saved_steps(logdir)) > before, proc)
            time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return proc.communicate()[1]


@pytest.mark.slow
def test_kill_9_at_any_moment_resumes_at_the_last_saved_step(data_dir, tmp_path):  # noqa: F811
    rng = random.Random(int(os.environ.get("DEEPLAB_KILL_SEED", "0")))
    rounds = int(os.environ.get("DEEPLAB_KILL_ROUNDS", "4"))
    logdir = tmp_path / "run"
    resumed = []
    for i in range(rounds):
        expected = _latest_step(logdir) if logdir.exists() else None
        err = _kill_round(KILL_MOMENTS[i % len(KILL_MOMENTS)], logdir, data_dir, rng)
        found = re.search(r"resumed from \S+ at step (\d+)", err)
        if found:  # (a kill right at start may come before the resume)
            assert int(found.group(1)) == expected, err[-3000:]
            resumed.append(expected)
        if logdir.exists():  # (a kill during a save may leave model.ckpt-N_temp/)
            _assert_intact(logdir)
    expected = _latest_step(logdir)
    done = subprocess.run(_train_cmd(logdir, data_dir, expected + 1), cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"at step {expected}" in done.stderr and f"final step {expected + 1}" in done.stdout
    assert not [f for f in os.listdir(logdir) if f.endswith("_temp")]  # leftovers removed
    _assert_intact(logdir)
    print(f"{rounds} kill -9 moments; resumed at the last saved step each time: {resumed}")


def _run_until_step(proc, step):
    """Reads the child's stderr until it logs `step`; returns what it read."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if re.search(rf"step {step}/", line):
            return "".join(seen)
    raise AssertionError("".join(seen)[-3000:])


@pytest.mark.slow
def test_sigterm_and_ctrl_c_save_the_step_and_resume_there(data_dir, tmp_path):  # noqa: F811
    logdir = tmp_path / "run"
    flags = ["--save_interval_steps=1000", "--save_interval_secs=100000"]
    first = random.Random().randint(2, 5)
    proc = _popen([*_train_cmd(logdir, data_dir, 1000), *flags])
    _run_until_step(proc, first)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    stopped = int(re.search(r"stopped by SIGTERM at step (\d+): saved ", out).group(1))
    assert stopped >= first and _saved_steps(logdir) == [stopped]
    assert "Traceback" not in err
    proc = _popen([*_train_cmd(logdir, data_dir, 1000), *flags])
    log = _run_until_step(proc, stopped + 2)
    assert f"resumed from {logdir}/model.ckpt-{stopped} at step {stopped}" in log
    assert re.search(rf"step {stopped + 1}/1000 ", log)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err
    again = int(re.search(r"stopped by SIGINT at step (\d+)", out).group(1))
    assert _saved_steps(logdir) == [stopped, again] and again >= stopped + 2
    _assert_intact(logdir)


def _mount_tmpfs(folder, size):
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill a disk ({done.stderr.strip()})")


@pytest.mark.slow
def test_full_disk_during_a_save_is_one_line_and_keeps_the_last_checkpoint(
        data_dir, tmp_path):  # noqa: F811
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (a disk that fills up) needs root")
    probe = tmp_path / "probe"
    done = subprocess.run(_train_cmd(probe, data_dir, 1), cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    size = sum(os.path.getsize(probe / f) for f in os.listdir(probe) if "ckpt-1" in f)
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, size + size // 2 + 256 * 1024)  # one checkpoint fits, not two
    try:
        logdir = disk / "run"
        done = subprocess.run([*_train_cmd(logdir, data_dir, 4), "--save_interval_steps=1"],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert len(errors) == 1 and re.fullmatch(
            rf"error: {logdir}/model.ckpt-2: saving step 2 failed \(No space left on device\); "
            rf"its partial files are removed, the last good checkpoint is "
            rf"{logdir}/model.ckpt-1", errors[0]), errors
        assert _saved_steps(logdir) == [1] and not list(logdir.glob("*_temp"))
        _assert_intact(logdir)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _truncate_half(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def test_damaged_checkpoints_and_bad_inputs_are_one_line_with_status_2(
        tiny_run, data_dir, tmp_path):  # noqa: F811
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_run["train"], damaged)
    data_file = f"{damaged}/{os.path.basename(tiny_run['prefix'])}.data-00000-of-00001"
    _truncate_half(data_file)
    image = tmp_path / "a.npy"
    import numpy as np

    np.save(image, np.zeros((8, 8, 3), np.uint8))
    train = _train_cmd(tmp_path / "t", data_dir, 1)[1:]
    damaged_file = f"error: {data_file}: variable "
    cases = [  # (the error line starts with, command line, environment)
        (damaged_file, ["predict.py", f"--checkpoint={damaged}",
                        f"--output_dir={tmp_path / 'p'}", str(image)], {}),
        (damaged_file, ["eval.py", f"--checkpoint_dir={damaged}",
                        f"--eval_logdir={tmp_path / 'e'}", f"--dataset_dir={tiny_run['data']}",
                        "--max_number_of_evaluations=1"], {}),
        (damaged_file, ["train.py", f"--train_logdir={tmp_path / 't2'}",
                        f"--dataset_dir={data_dir}", "--model_variant=mobilenet_v2",
                        "--depth_multiplier=0.5", "--train_crop_size=33,33",
                        "--train_batch_size=2", "--training_number_of_steps=1",
                        f"--tf_initial_checkpoint={damaged}"], {}),
        ("error: --train_crop_size=8,8 is smaller than --output_stride=16",
         [*train, "--train_crop_size=8,8", "--dataset=cityscapes"], {}),
        ('error: TF_CONFIG: "cluster" is [], not an object of host:port lists', train,
         {"TF_CONFIG": '{"cluster": []}'}),
        ("error: --crop_size=8,8 is smaller than --output_stride=16",
         ["export_model.py", f"--checkpoint_path={tiny_run['train']}",
          f"--export_path={tmp_path / 'x'}", "--crop_size=8", "--crop_size=8",
          "--output_stride=16"], {}),
        ("error: --num_classes=21, but", [
            "eval.py", f"--checkpoint_dir={tiny_run['train']}", "--num_classes=21",
            f"--eval_logdir={tmp_path / 'e2'}", f"--dataset_dir={tiny_run['data']}",
            "--max_number_of_evaluations=1"], {}),
    ]
    processes = [subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
                 for _, argv, env in cases]
    for (expected, argv, _), proc in zip(cases, processes, strict=True):
        _, err = proc.communicate(timeout=600)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and "Traceback" not in err, (argv, err[-3000:])
        assert err.strip().splitlines()[-1] == errors[-1], (argv, err[-3000:])  # one line
        assert len(errors) == 1 and errors[0].startswith(expected), (argv, err[-3000:])
        if expected == damaged_file:
            assert "is damaged (the data file is truncated" in errors[0]
        if "train_crop_size" in expected:  # dataset.json is the truth about the shards
            assert f"--dataset=cityscapes, but {data_dir}/dataset.json describes synthetic" \
                in err


def test_eval_and_vis_accept_num_classes(tiny_run, tmp_path):  # noqa: F811
    common = [f"--checkpoint_dir={tiny_run['train']}", f"--dataset_dir={tiny_run['data']}",
              "--num_classes=6"]
    runs = [start("eval.py", *common, f"--eval_logdir={tmp_path / 'e'}",
                  "--max_number_of_evaluations=1"),
            start("vis.py", *common, f"--vis_logdir={tmp_path / 'v'}",
                  "--max_number_of_iterations=1")]
    for proc in runs:
        code, _, err = finish(proc, timeout=600)
        assert code == 0, err[-3000:]
    assert (tmp_path / "e" / "metrics.json").is_file()
    assert list((tmp_path / "v" / "segmentation_results").glob("*_prediction.png"))


def test_dataset_json_is_the_truth_with_a_warning_naming_both(data_dir, caplog):  # noqa: F811
    from deeplab import entry

    with caplog.at_level(logging.WARNING):
        descriptor = entry.dataset_descriptor("cityscapes", data_dir)
    assert descriptor.name == "synthetic" and descriptor.num_classes == 6
    assert f"--dataset=cityscapes, but {data_dir}/dataset.json describes synthetic" \
        in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        entry.dataset_descriptor("synthetic", data_dir)
        entry.dataset_descriptor("cityscapes", data_dir, given=False)
    assert not caplog.text


@pytest.fixture(scope="module")
def damaged_data(tmp_path_factory):
    """A synthetic dataset whose train and val shards each hold three damaged records (a
    flipped byte, a non-image, a cut shard). Train: 2 x 264 records damaged past record 256,
    so the first shuffle buffer (512) fills and training runs some steps before reaching
    them. Returns (folder, {split: [DamagedRecord]})."""
    from datasets.synthetic import write_synthetic_dataset
    from deeplab.data.pipeline import InputOptions
    from deeplab.data.record_scan_test import write_damaged_split

    folder = str(tmp_path_factory.mktemp("damaged"))
    write_synthetic_dataset(folder, num_train=16, num_val=6, image_size=(33, 33))
    late = InputOptions().shuffle_buffer_size // 2 + 2
    return folder, {"train": write_damaged_split(folder, "train", late + 6, late),
                    "val": write_damaged_split(folder, "val", 4, 1)}


def _error_line(proc, timeout=600):
    """(exit status, the last stderr line, stderr); asserts one `error:` line, no traceback."""
    _, err = proc.communicate(timeout=timeout)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1, err[-3000:]
    assert err.strip().splitlines()[-1] == errors[0], err[-3000:]
    return proc.returncode, errors[0], err


def _skipped_in_events(logdir) -> list[float]:
    import tensorflow as tf

    values = []
    for path in logdir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            values += [float(tf.make_ndarray(v.tensor)) for v in event.summary.value
                       if v.tag == "data/damaged_records_skipped"]
    return values


@pytest.mark.slow
def test_damaged_records_stop_train_eval_vis_in_one_line_and_skipping_resumes(
        damaged_data, tiny_run, tmp_path):  # noqa: F811
    folder, damaged = damaged_data
    logdir = tmp_path / "run"
    once = ["--save_interval_steps=1000", "--save_interval_secs=100000"]
    source = [f"--checkpoint_dir={tiny_run['train']}", f"--dataset_dir={folder}"]
    train = _popen([*_train_cmd(logdir, folder, 100), *once])
    evaluation = start("eval.py", *source, f"--eval_logdir={tmp_path / 'e'}",
                       "--max_number_of_evaluations=1")
    vis = start("vis.py", *source, f"--vis_logdir={tmp_path / 'v'}",
                "--max_number_of_iterations=1")
    first_val = f"error: {damaged['val'][0].message()}"  # eval and vis read in file order
    for proc in (evaluation, vis):
        assert _error_line(proc)[:2] == (2, first_val)
    code, line, err = _error_line(train)
    assert code == 2 and line in [f"error: {r.message()}" for r in damaged["train"]], err
    saved = _saved_steps(logdir)
    assert len(saved) == 1 and saved[0] >= 1, saved  # the step reached, saved on the error
    assert f"damaged input: saved step {saved[0]} in {logdir}/model.ckpt-{saved[0]}" in err
    # The same command with --skip_damaged_records resumes there and trains to the end.
    end = saved[0] + 2
    done = subprocess.run([*_train_cmd(logdir, folder, end), *once, "--skip_damaged_records"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resumed from {logdir}/model.ckpt-{saved[0]} at step {saved[0]}" in done.stderr
    assert f"final step {end} " in done.stdout
    assert "skipped 3 damaged record(s) of train" in done.stdout
    for record in damaged["train"]:  # each named once
        assert done.stderr.count(record.message().rsplit("; ", 1)[0]) == 1, done.stderr
    assert set(_skipped_in_events(logdir)) == {3.0}


if __name__ == "__main__":
    assert sys.argv[1] == "kill-in-save" and sys.argv[4] == "--"
    child_kill_in_save(sys.argv[2], sys.argv[3], *sys.argv[5:])
