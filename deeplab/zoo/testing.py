"""Model-zoo tarballs for tests, in the original's layout, built from a tiny network.

A tarball holds one top-level directory with `frozen_inference_graph.pb` (exported by this
project, the original's interface) and `model.ckpt.index` / `model.ckpt.data-*` (written by
this project, TF1 variable names). `serve_files` runs an HTTP server on 127.0.0.1 that honours
Range requests and can cut its first response midway.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import tarfile
import tempfile
import threading

from deeplab.zoo.registry import ZooEntry

CROP = (65, 65)
MODEL_FIELDS = {"model_variant": "mobilenet_v2", "depth_multiplier": 0.5, "output_stride": 16}
NUM_CLASSES = 6  # the built-in synthetic dataset's, so class names are known


def zoo_entry(name: str = "tiny_synthetic", size: int | None = None, **changes) -> ZooEntry:
    """A registry entry for a tarball called `<name>.tar.gz` (exact `size` when given)."""
    values = dict(
        name=name, url=f"http://download.invalid/models/{name}.tar.gz", size=size,
        backbone="MobileNet-v2 x0.5", dataset="synthetic", num_classes=NUM_CLASSES,
        ignore_label=255, model=dict(MODEL_FIELDS),
        published=({"metric": "mIoU", "value": 50.0, "split": "val", "output_stride": 16,
                    "scales": [1.0], "flip": False, "crop_size": list(CROP)},),
        frozen_graph={"output_stride": 16, "crop_size": list(CROP), "documented": True})
    values.update(changes)
    return ZooEntry(**values)


def tarball_model(seed: int = 1):
    """(Keras model, ModelOptions) of the network in `build_tarballs`' good tarball."""
    from deeplab.export.testing import small_model
    from deeplab.model.options import ModelOptions

    options = ModelOptions(num_classes=NUM_CLASSES, **MODEL_FIELDS)
    return small_model(options, seed=seed, glorot_logits=False), options


def build_tarballs(out_dir: str, top: str = "deeplab_tiny") -> dict[str, str]:
    """Writes three tarballs of one tiny network (one model build, three graph freezes):

    good.tar.gz: its checkpoint and its frozen graph (they agree);
    other_graph.tar.gz: the same checkpoint with the frozen graph of other weights (the
    logits' class channels rolled by one, so labels disagree almost everywhere);
    perturbed.tar.gz: the frozen graph of the good weights with a checkpoint of the same
    architecture whose every weight carries 1 % relative noise (a trained-like neighbour).
    Returns {kind: path}.
    """
    import numpy as np

    from deeplab.checkpoints.io import model_checkpoint, variable_map

    model, options = tarball_model()
    original = {name: v.numpy() for name, v in variable_map(model).items()}
    rng = np.random.default_rng(5)
    paths = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("good", "other_graph", "perturbed"):
            folder = os.path.join(tmp, kind, top)
            os.makedirs(folder)
            for name, variable in variable_map(model).items():
                variable.assign(original[name])
            if kind == "perturbed":
                _write_frozen_graph(model, options, folder)
                for name, variable in variable_map(model).items():
                    noise = rng.normal(0.0, 0.01, original[name].shape)
                    variable.assign((original[name] * (1.0 + noise)).astype(np.float32))
                model_checkpoint(model).write(os.path.join(folder, "model.ckpt"))
            else:
                model_checkpoint(model).write(os.path.join(folder, "model.ckpt"))
                if kind == "other_graph":
                    for name in ("logits/semantic/weights", "logits/semantic/biases"):
                        variable = variable_map(model)[name]
                        variable.assign(np.roll(variable.numpy(), 1, axis=-1))
                _write_frozen_graph(model, options, folder)
            paths[kind] = write_tarball(folder, os.path.join(out_dir, f"{kind}.tar.gz"))
    return paths


def _write_frozen_graph(model, options, folder: str) -> None:
    from deeplab.export import frozen
    from deeplab.export.contract import ExportModule, ExportOptions

    module = ExportModule(model, options, ExportOptions(crop_size=CROP))
    frozen.write_frozen_graph(frozen.freeze(module), os.path.join(folder, frozen.FILE_NAME))


def tarball_from_checkpoint(prefix: str, options, path: str, top: str = "deeplab_ref") -> str:
    """A tarball holding the checkpoint files at `prefix` (e.g. a TF1 checkpoint of the
    reference fixtures, with its `checkpoint` file) and the frozen graph (crop CROP) this
    project exports from the network `options` restored from it."""
    import glob
    import shutil

    from deeplab.checkpoints.io import load_model
    from deeplab.export import frozen
    from deeplab.export.contract import ExportModule, ExportOptions

    model = load_model(options, prefix)
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, top)
        os.makedirs(folder)
        for name in glob.glob(prefix + ".*") + glob.glob(os.path.join(
                os.path.dirname(prefix), "checkpoint")):
            shutil.copy(name, folder)
        module = ExportModule(model, options, ExportOptions(crop_size=CROP))
        frozen.write_frozen_graph(frozen.freeze(module), os.path.join(folder, frozen.FILE_NAME))
        return write_tarball(folder, path)


def write_tarball(folder: str, path: str, mtime: int = 0) -> str:
    """tar.gz of `folder` as one top-level directory; `mtime` changes the bytes only."""
    with tarfile.open(path, "w:gz") as tar:
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                full = os.path.join(root, name)
                info = tar.gettarinfo(full, os.path.relpath(full, os.path.dirname(folder)))
                info.mtime = mtime
                with open(full, "rb") as f:
                    tar.addfile(info, f)
    return path


def write_registry(path: str, entries) -> str:
    """A registry file ($DEEPLAB_ZOO_REGISTRY) holding `entries`."""
    import dataclasses

    rows = [{**dataclasses.asdict(e), "published": list(e.published)} for e in entries]
    with open(path, "w") as f:
        json.dump({"entries": rows}, f)
    return path


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list = []
    cut_first: set = set()
    timeout = 10

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        name = self.path.rsplit("/", 1)[-1]
        self.requests.append((name, self.headers.get("Range")))
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if name in self.cut_first:  # send half, then drop the connection
            self.cut_first.discard(name)
            self.wfile.write(data[start:start + (len(data) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        self.wfile.write(data[start:])


@contextlib.contextmanager
def serve_files(files: dict[str, bytes], cut_first=()):
    """Yields (base URL, list of (file name, Range header) requests) of a local server."""
    handler = type("Handler", (_Handler,), {"files": dict(files), "requests": [],
                                            "cut_first": set(cut_first)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/models", handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def corrupt(data: bytes) -> bytes:
    """The same length with the middle third inverted (gzip's CRC then fails)."""
    third = len(data) // 3
    middle = bytes(b ^ 0xFF for b in data[third:2 * third])
    return data[:third] + middle + data[2 * third:]
