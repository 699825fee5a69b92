"""python -m deeplab.zoo list | download NAME [NAME ...] | verify NAME [--output_stride=N]

list      the table: name, backbone, dataset, published mIoU, size, cached / not built
download  fetches, checks and verifies names ahead of time (cached ones are skipped)
verify    re-runs the parity check against the tarball's frozen graph and records it
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from deeplab.zoo import cache  # noqa: E402
from deeplab.zoo.registry import ZooError, get_entry, load_registry  # noqa: E402


def _status(entry, reason: str | None) -> str:
    if reason:
        return f"not built ({entry.requires or reason})"
    if cache.is_cached(entry):
        record = cache.read_verification(entry)
        if record:
            return f"cached, verified {100 * record['label_agreement']:.2f} %"
        return "cached"
    return ""


def table_rows():
    """[(name, backbone, dataset, published, size, status)] for every registry entry."""
    rows = []
    entries = list(load_registry().values())
    reasons = cache.unavailable_reasons(entries)
    for entry in entries:
        size = f"{entry.size_mb:g} MB" if entry.size_mb else "?"
        rows.append((entry.name, entry.backbone, entry.dataset or "(backbone)",
                     entry.summary() or "-", size, _status(entry, reasons[entry.name])))
    return rows


def list_command(_args) -> int:
    header = ("name", "backbone", "dataset", "published mIoU", "size", "status")
    rows = [header] + table_rows()
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    print(f"\ncache: {cache.zoo_dir()} (${cache.HOME_ENV}); mirror: "
          f"{os.environ.get(cache.URL_ENV) or 'none'} (${cache.URL_ENV})")
    return 0


def download_command(args) -> int:
    for name in args.names:
        entry = get_entry(name)
        if cache.is_cached(entry):
            print(f"{name}: already in {cache.model_dir(entry)}")
            continue
        cache.ensure(entry, verify=not args.no_verify)
    return 0


def verify_command(args) -> int:
    from deeplab.zoo.verify import check_parity

    entry = get_entry(args.name)
    folder = cache.ensure(entry, verify=False)
    if not entry.frozen_graph or not os.path.isfile(os.path.join(folder, cache.FROZEN_GRAPH)):
        raise ZooError(f"{args.name}: the tarball holds no frozen graph to check against "
                       "(a backbone checkpoint)")
    crop = tuple(int(v) for v in args.crop_size.split(",")) if args.crop_size else None
    result = check_parity(entry, folder, args.output_stride, crop, args.probes)
    cache.write_verification(folder, result)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deeplab.zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the registry table").set_defaults(run=list_command)
    download = commands.add_parser("download", help="fetch and verify names ahead of time")
    download.add_argument("names", nargs="+")
    download.add_argument("--no_verify", action="store_true",
                          help="skip the parity check against the frozen graph")
    download.set_defaults(run=download_command)
    verify = commands.add_parser("verify", help="re-run the parity check")
    verify.add_argument("name")
    verify.add_argument("--output_stride", type=int, default=None,
                        help="the frozen graph's output stride (default: the registry's)")
    verify.add_argument("--crop_size", default=None, help="height,width of the frozen graph")
    verify.add_argument("--probes", type=int, default=3, help="probe images")
    verify.set_defaults(run=verify_command)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from deeplab.utils import quiet

    quiet.quiet_tensorflow_import()
    sys.exit(main())
