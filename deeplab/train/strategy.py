"""tf.distribute strategy for a run: one device, N local devices, or several workers.

OneDevice for one clone; MirroredStrategy over N local devices for --num_clones=N (on a
CPU-only host the CPU is split into N logical devices, which must happen before TensorFlow
starts its runtime); MultiWorkerMirroredStrategy when TF_CONFIG names several workers.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

_TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                      '"task": {"type": "worker", "index": 0}}')


def _tf_config_error(problem: str) -> ValueError:
    return ValueError(f"TF_CONFIG: {problem}; expected e.g. {_TF_CONFIG_EXAMPLE}")


def read_tf_config() -> dict:
    """TF_CONFIG checked for the shape tf.distribute reads ({} when unset).

    cluster: {job name: ["host:port", ...]}; task: {"type": a job of the cluster, "index":
    an int within that job}. ValueError naming what is wrong otherwise.
    """
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError as exc:
        raise _tf_config_error(f"not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise _tf_config_error(f"a JSON {type(config).__name__}, not an object")
    cluster = config.get("cluster", {})
    if not isinstance(cluster, dict) or not all(
            isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)
            for hosts in cluster.values()):
        raise _tf_config_error(f"\"cluster\" is {json.dumps(cluster)}, not an object of "
                               "host:port lists")
    task = config.get("task")
    if cluster and task is not None:
        if not isinstance(task, dict) or task.get("type") not in cluster:
            raise _tf_config_error(f"\"task\" is {json.dumps(task)}; its \"type\" must be one "
                                   f"of the cluster's jobs {sorted(cluster)}")
        index = task.get("index", 0)
        if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
            raise _tf_config_error(f"\"task\" index {json.dumps(index)} is not one of the "
                                   f"{len(cluster[task['type']])} {task['type']} entries")
    return config


def cluster_workers() -> int:
    """Number of workers named in TF_CONFIG (0 without one); ValueError for a bad one."""
    config = read_tf_config()
    cluster = config.get("cluster", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    if workers > 1 and not isinstance(config.get("task"), dict):
        raise _tf_config_error("it names several workers but no \"task\" (this process's "
                               "place among them)")
    return workers


def configure_local_devices(num_clones: int) -> list[str]:
    """Names of `num_clones` local devices, splitting the CPU when there are no GPUs."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if len(gpus) < num_clones:
            raise ValueError(f"--num_clones={num_clones} but only {len(gpus)} GPU(s) are visible")
        return [f"/gpu:{i}" for i in range(num_clones)]
    if num_clones > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_clones)])
        except RuntimeError:
            pass  # already initialised; use the logical devices there are
        found = len(tf.config.list_logical_devices("CPU"))
        if found < num_clones:
            raise ValueError(f"--num_clones={num_clones}: TensorFlow started with {found} CPU "
                             "device(s); split the CPU before any other TensorFlow call")
    return [f"/cpu:{i}" for i in range(num_clones)]


def make_strategy(num_clones: int = 1) -> tf.distribute.Strategy:
    """The strategy for this process; see the module docstring."""
    if cluster_workers() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = configure_local_devices(num_clones)
    if num_clones == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    cross_device = None if devices[0].startswith("/gpu") else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, summaries and logs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def worker_id(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None and resolver.task_type else 0
