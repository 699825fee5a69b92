"""Checks the README's install table: what `pip install deeplab-tf2[cpu,export]` resolves to
for each Python version and platform, asked of pip itself (`pip install --dry-run
--python-version V --platform P --only-binary=:all:`), with pyproject.toml's environment
markers evaluated for that platform (pip evaluates markers for the machine it runs on).

    python test/check_platforms.py                 # prints the table
    python test/check_platforms.py --check README.md   # exit 1 when README's table differs
    python test/check_platforms.py --write README.md   # rewrites README's table

Needs the package index (a few minutes: one dependency resolution per cell, 4 at a time).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import re
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib
try:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet

REPO = pathlib.Path(__file__).resolve().parents[1]
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
EXTRAS = ("cpu", "export")
BEGIN, END = "<!-- platforms:begin -->", "<!-- platforms:end -->"


def _manylinux(arch: str) -> list[str]:
    return ["manylinux2014_" + arch] + [f"manylinux_2_{v}_{arch}" for v in range(17, 40)]


# name -> (pip --platform tags, the marker environment of such a machine)
PLATFORMS = {
    "Linux x86_64": (_manylinux("x86_64"), {"sys_platform": "linux", "platform_system": "Linux",
                                            "platform_machine": "x86_64", "os_name": "posix"}),
    "Linux aarch64": (_manylinux("aarch64"), {"sys_platform": "linux",
                                              "platform_system": "Linux",
                                              "platform_machine": "aarch64", "os_name": "posix"}),
    "macOS arm64": ([f"macosx_{v}_0_arm64" for v in range(11, 16)] + ["macosx_10_9_universal2"],
                    {"sys_platform": "darwin", "platform_system": "Darwin",
                     "platform_machine": "arm64", "os_name": "posix"}),
    "Windows x86_64": (["win_amd64"], {"sys_platform": "win32", "platform_system": "Windows",
                                       "platform_machine": "AMD64", "os_name": "nt"}),
}


def requirements(project: dict, python: str, machine: dict) -> list[str]:
    """The project's dependencies plus EXTRAS, markers evaluated for `python` on `machine`."""
    env = {**machine, "python_version": python, "python_full_version": python + ".0",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    wanted = []
    groups = [(None, project["dependencies"])]
    groups += [(extra, project["optional-dependencies"][extra]) for extra in EXTRAS]
    for extra, lines in groups:
        for line in lines:
            req = Requirement(line)
            if req.marker and not req.marker.evaluate({**env, "extra": extra or ""}):
                continue
            req.marker = None
            wanted.append(str(req))
    return wanted


def _dry_run(python: str, tags: list[str], wanted: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
               "--only-binary=:all:", "--python-version", python, "--quiet",
               "--report", "-", *[f"--platform={tag}" for tag in tags], *wanted]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


# pip's words when the package index does not answer (not a fact about the platform)
UNREACHABLE = ("Max retries exceeded", "NewConnectionError", "Could not fetch URL",
               "Network is unreachable", "Temporary failure in name resolution",
               "Read timed out")


class IndexUnreachable(RuntimeError):
    """pip could not ask the package index."""


def _first_error(run: subprocess.CompletedProcess) -> str:
    """pip's first error, shortened: `keras needs Python >=3.11`, `no tensorflow==2.21.0`."""
    unreachable = next((w for w in UNREACHABLE if w in run.stderr), None)
    if unreachable:
        raise IndexUnreachable(f"pip could not reach the package index ({unreachable})")
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
    if not errors:
        return "pip failed"
    text = errors[0].removeprefix("ERROR: ")
    python = re.match(r"Package '(\S+)' requires a different Python: \S+ not in '(.+)'", text)
    if python:
        return f"{python.group(1)} needs Python {python.group(2)}"
    missing = re.match(r"Could not find a version that satisfies the requirement (\S+)", text)
    return f"no {missing.group(1)} wheel" if missing else text


def check_cell(project: dict, python: str, platform: str) -> str:
    """'yes (<tensorflow wheel> <version>)' or 'no: <why>' for one table cell."""
    tags, machine = PLATFORMS[platform]
    wanted = requirements(project, python, machine)
    if python not in SpecifierSet(project["requires-python"]):
        # refused by the metadata: say whether that is true of its pinned dependencies too
        wanted = [r for r in wanted if Requirement(r).name in ("keras", "tensorflow",
                                                                "tensorflow-cpu")]
        run = _dry_run(python, tags, wanted)
        found = "though they resolve" if run.returncode == 0 else _first_error(run)
        return f"no: requires-python ({found})"
    run = _dry_run(python, tags, wanted)
    if run.returncode != 0:
        return "no: " + _first_error(run)
    installed = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
                 for item in json.loads(run.stdout)["install"]}
    tf = [name for name in ("tensorflow-cpu", "tensorflow") if name in installed]
    if not tf:
        return "no: resolves without TensorFlow"
    return f"yes: {tf[0]} {installed[tf[0]]}"  # (onnxruntime's newest version moves on)


def table(project: dict) -> str:
    """The markdown table: one row per Python version, one column per platform."""
    cells = {}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = {pool.submit(check_cell, project, py, plat): (py, plat)
                   for py in PYTHONS for plat in PLATFORMS}
        for future, key in futures.items():
            cells[key] = future.result()
    lines = ["| Python | " + " | ".join(PLATFORMS) + " |",
             "|---|" + "---|" * len(PLATFORMS)]
    for py in PYTHONS:
        lines.append(f"| {py} | " + " | ".join(cells[py, plat] for plat in PLATFORMS) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", metavar="README", help="exit 1 when its table differs")
    action.add_argument("--write", metavar="README", help="rewrite its table")
    args = parser.parse_args()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    try:
        found = table(project)
    except (IndexUnreachable, subprocess.TimeoutExpired) as exc:
        print(f"warning: the install table was not checked: {exc}", file=sys.stderr)
        return 0
    print(found)
    path = args.check or args.write
    if not path:
        return 0
    text = pathlib.Path(path).read_text()
    head, rest = text.split(BEGIN, 1)
    stated, tail = rest.split(END, 1)
    if args.write:
        pathlib.Path(path).write_text(f"{head}{BEGIN}\n{found}\n{END}{tail}")
        return 0
    if stated.strip() != found:
        print(f"error: {path}: the install table differs from what pip resolves (above); "
              f"run python test/check_platforms.py --write {path}", file=sys.stderr)
        return 1
    print(f"{path}: the install table is true")
    return 0


if __name__ == "__main__":
    sys.exit(main())
