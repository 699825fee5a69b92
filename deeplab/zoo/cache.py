"""The model-zoo cache: download (resumable, checked), extract, verify, never twice.

Layout under `zoo_dir()` = $DEEPLAB_HOME/zoo ($DEEPLAB_HOME defaults to ~/.cache/deeplab_tf2):

    downloads/<tarball file name>        the tarball (`.part` while downloading)
    downloads/sha256.json                {file name: {"sha256", "size"}} of first downloads
    models/<name>/                       the extracted checkpoint + frozen_inference_graph.pb,
                                         plus options.json (the registry's model options),
                                         zoo_entry.json and verification.json

$DEEPLAB_ZOO_URL replaces the base address of every tarball: an HTTP(S) mirror, a `file://`
URL or a local directory holding the tarballs under their original file names. A tarball
put at `downloads/<file name>` by hand is used as is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import logging
import os
import pathlib
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib

from deeplab.utils.atomic import write_json_atomically
from deeplab.utils.names_cache import (  # noqa: F401 - HOME_ENV: cache.HOME_ENV for users
    HOME_ENV,
    PACKAGE_DIR,
    deeplab_home,
    fingerprint,
)
from deeplab.utils.progress import Progress
from deeplab.utils.run_options import TRAINING_DONE, save_run_options
from deeplab.zoo.registry import ZooEntry, ZooError, unavailable_reason

URL_ENV = "DEEPLAB_ZOO_URL"
SHA_FILE = "sha256.json"
ENTRY_FILE = "zoo_entry.json"
VERIFICATION_FILE = "verification.json"
AVAILABILITY_FILE = "availability.json"
FROZEN_GRAPH = "frozen_inference_graph.pb"
SIZE_TOLERANCE = 0.2  # published sizes are rounded MB (and MB may mean MiB)
CHUNK = 1 << 20
ATTEMPTS = 4


def _model_code_fingerprint() -> str:
    """Changes when deeplab/model's files (what `unavailable_reason` runs) or the
    interpreter do."""
    return fingerprint(os.path.join(PACKAGE_DIR, "model"))


def zoo_dir() -> str:
    return os.path.join(deeplab_home(), "zoo")


def tarball_path(entry: ZooEntry) -> str:
    return os.path.join(zoo_dir(), "downloads", entry.file_name)


def model_dir(entry: ZooEntry) -> str:
    return os.path.join(zoo_dir(), "models", entry.name)


def is_cached(entry: ZooEntry) -> bool:
    return os.path.isfile(os.path.join(model_dir(entry), ENTRY_FILE))


def source_url(entry: ZooEntry) -> str:
    """The tarball's URL, under $DEEPLAB_ZOO_URL when set (a URL or a local directory)."""
    base = os.environ.get(URL_ENV, "").strip()
    if not base:
        return entry.url
    if "://" not in base:
        base = pathlib.Path(base).expanduser().resolve().as_uri()
    return base.rstrip("/") + "/" + entry.file_name


def unavailable_reasons(entries) -> dict[str, str | None]:
    """{name: `unavailable_reason(entry)`} for `entries`, remembered in
    <zoo dir>/availability.json while deeplab/model's files and the entry stay the same:
    answering needs the backbone registry (TensorFlow, seconds), listing the zoo should not."""
    path = os.path.join(zoo_dir(), AVAILABILITY_FILE)
    stamp = _model_code_fingerprint()
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        saved = {}
    known = saved.get("entries", {}) if saved.get("fingerprint") == stamp else {}
    found, changed = {}, False
    for entry in entries:
        key = json.dumps(dataclasses.asdict(entry), sort_keys=True, default=str)
        if known.get(entry.name, {}).get("key") == key:
            found[entry.name] = {"key": key, "reason": known[entry.name]["reason"]}
        else:
            found[entry.name] = {"key": key, "reason": unavailable_reason(entry)}
            changed = True
    if changed:
        try:
            os.makedirs(zoo_dir(), exist_ok=True)
            write_json_atomically(path, {"fingerprint": stamp, "entries": found})
        except OSError:
            pass  # a read-only cache: answered, not remembered
    return {name: value["reason"] for name, value in found.items()}


# --- download -------------------------------------------------------------------------------

def _offline_error(entry: ZooEntry, url: str, reason) -> ZooError:
    return ZooError(f"{entry.name}: cannot download {url} ({reason}); download it elsewhere "
                    f"and put it at {tarball_path(entry)} (it is then used as is), or set "
                    f"{URL_ENV} to a mirror or a directory holding {entry.file_name}")


def _copy_response(response, part: str, done: int, total: int | None, desc: str) -> int:
    """Appends the response body to `part`; returns the bytes now in it."""
    with open(part, "ab") as f, Progress(
            None if total is None else -(-total // CHUNK), f"{desc} (MB)") as bar:
        bar.count = done // CHUNK
        while True:
            block = response.read(CHUNK)
            if not block:
                break
            f.write(block)
            done += len(block)
            bar.update(1)
    return done


def _fetch_once(url: str, part: str, desc: str) -> tuple[int, int | None]:
    """One request resuming `part` (HTTP Range); returns (bytes in part, expected total)."""
    done = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": "deeplab-tf2"}
    if done:
        headers["Range"] = f"bytes={done}-"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=60) as response:
        status = getattr(response, "status", None) or response.getcode()
        length = response.headers.get("Content-Length")
        if done and status != 206:  # the server (or file://) ignored the range: start over
            done = 0
            open(part, "wb").close()
        total = done + int(length) if length is not None else None
        if done and total is not None and done >= total:
            return done, total
        if done:
            logging.info("resuming %s at %d bytes", url, done)
        return _copy_response(response, part, done, total, desc), total


def download(entry: ZooEntry, url: str | None = None, attempts: int = ATTEMPTS) -> str:
    """Downloads the tarball to tarball_path(entry) via a `.part` file; returns the path.

    An interrupted transfer resumes where it stopped (HTTP Range), within this call (up to
    `attempts` requests) and in later calls. ZooError names the URL and where to put the
    tarball by hand when it cannot be fetched.
    """
    url = url or source_url(entry)
    path = tarball_path(entry)
    part = path + ".part"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    last = None
    for attempt in range(attempts):
        try:
            done, total = _fetch_once(url, part, entry.file_name)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and os.path.exists(part):  # range beyond the end: start over
                os.remove(part)
                last = exc
                continue
            raise _offline_error(entry, url, f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            last = getattr(exc, "reason", exc)
            time.sleep(min(2.0 ** attempt * 0.1, 2.0))
            continue
        if total is not None and done != total:
            last = f"connection closed after {done} of {total} bytes"
            continue
        os.replace(part, path)
        return path
    raise _offline_error(entry, url, last)


# --- checks ---------------------------------------------------------------------------------

def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha_records() -> tuple[str, dict]:
    path = os.path.join(zoo_dir(), "downloads", SHA_FILE)
    try:
        with open(path) as f:
            return path, json.load(f)
    except FileNotFoundError:
        return path, {}
    except (OSError, ValueError) as exc:
        raise ZooError(f"{path}: unreadable ({exc}); delete it to record the hashes anew") \
            from None


def _refuse(entry: ZooEntry, path: str, problem: str) -> ZooError:
    """Moves the bad tarball aside (so the next attempt fetches it again) and says so."""
    rejected = path + ".rejected"
    os.replace(path, rejected)
    return ZooError(f"{entry.name}: {path}: {problem}; moved to {rejected}")


def check_size(entry: ZooEntry, path: str) -> int:
    """The tarball's size in bytes; ZooError when it is not the registry's."""
    size = os.path.getsize(path)
    if entry.size is not None and size != entry.size:
        raise _refuse(entry, path, f"{size} bytes, expected {entry.size}")
    if entry.size is None and entry.size_mb:
        low, high = entry.size_mb * 1e6 * (1 - SIZE_TOLERANCE), entry.size_mb * 2**20 * (
            1 + SIZE_TOLERANCE)
        if not low <= size <= high:
            raise _refuse(entry, path, f"{size / 1e6:.1f} MB, but the model zoo lists "
                                       f"{entry.size_mb} MB")
    return size


def check_sha256(entry: ZooEntry, path: str) -> str:
    """Records the sha256 of the first download of this file; later ones must equal it."""
    digest, size = sha256_of(path), os.path.getsize(path)
    records_path, records = _sha_records()
    known = records.get(entry.file_name)
    if known and known["sha256"] != digest:
        raise _refuse(entry, path, f"sha256 {digest} differs from {known['sha256']} recorded "
                                   f"at its first download ({records_path}); if the publisher "
                                   "really changed it, delete that record")
    if not known:
        records[entry.file_name] = {"sha256": digest, "size": size}
        tmp = records_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(records, f, indent=2, sort_keys=True)
        os.replace(tmp, records_path)
    return digest


# --- extraction -----------------------------------------------------------------------------

def _safe_members(tar: tarfile.TarFile, path: str):
    members = tar.getmembers()
    for member in members:
        name = os.path.normpath(member.name)
        if name.startswith(("..", "/")) or not (member.isfile() or member.isdir()):
            raise ValueError(f"unexpected member {member.name!r}")
    return members


def extract(entry: ZooEntry, path: str, staging: str) -> str:
    """Extracts the tarball into `staging`; returns the folder holding the checkpoint."""
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(staging, members=_safe_members(tar, path))
    except (tarfile.TarError, zlib.error, OSError, EOFError, ValueError) as exc:
        raise _refuse(entry, path, f"not a readable tarball ({exc})") from None
    for root, _, files in os.walk(staging):
        if any(f.endswith(".index") for f in files):
            return root
    raise _refuse(entry, path, "holds no checkpoint (no model.ckpt*.index)")


def _point_checkpoint_state(folder: str) -> None:
    """Rewrites the `checkpoint` state file to name the extracted prefix (relative): the
    published ones name paths on the machines that wrote them."""
    prefixes = sorted(f[:-len(".index")] for f in os.listdir(folder) if f.endswith(".index"))
    with open(os.path.join(folder, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "{prefixes[-1]}"\n'
                f'all_model_checkpoint_paths: "{prefixes[-1]}"\n')


def _write_metadata(entry: ZooEntry, folder: str, digest: str) -> None:
    _point_checkpoint_state(folder)
    save_run_options(folder, model=entry.model_fields(),
                     zoo={"name": entry.name, "dataset": entry.dataset})
    with open(os.path.join(folder, ENTRY_FILE), "w") as f:
        json.dump({"name": entry.name, "url": entry.url, "sha256": digest,
                   "dataset": entry.dataset}, f, indent=2)
    with open(os.path.join(folder, TRAINING_DONE), "w") as f:
        f.write("model-zoo checkpoint\n")


def write_verification(folder: str, result: dict) -> None:
    with open(os.path.join(folder, VERIFICATION_FILE), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)


def read_verification(entry: ZooEntry) -> dict | None:
    path = os.path.join(model_dir(entry), VERIFICATION_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def ensure(entry: ZooEntry, verify: bool = True, log=print) -> str:
    """The extracted, verified checkpoint folder of `entry`, fetched on first use.

    Refuses (ZooError) an entry whose network is not built, a tarball of the wrong size or
    sha256, an unreadable tarball, and a checkpoint whose frozen graph disagrees with our
    network (see deeplab.zoo.verify). Nothing lands in models/ unless everything passed.
    """
    reason = unavailable_reason(entry)
    if reason:
        raise ZooError(f"{entry.name}: {reason}")
    final = model_dir(entry)
    if is_cached(entry):
        return final
    path = tarball_path(entry)
    if not os.path.isfile(path):
        log(f"downloading {entry.name} from {source_url(entry)}")
        download(entry)
    check_size(entry, path)
    digest = check_sha256(entry, path)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{entry.name}.partial-", dir=os.path.dirname(final))
    try:
        folder = extract(entry, path, staging)
        _write_metadata(entry, folder, digest)
        if verify and entry.frozen_graph and os.path.isfile(os.path.join(folder, FROZEN_GRAPH)):
            from deeplab.zoo.verify import check_parity

            write_verification(folder, check_parity(entry, folder, log=log))
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(folder, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{entry.name}: ready in {final}")
    return final
