"""``elim data``: build face caches (``prepare``) and write a synthetic dataset (``synth``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from elim.config import DEFAULT_MARGIN
from elim.errors import DataError


def _option(text: str) -> tuple[str, Any]:
    """``key=value`` → (key, value parsed as JSON when possible, else the string)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="prepare face caches and synthetic data")
    data_sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help() or 1)

    prep = data_sub.add_parser(
        "prepare",
        help="decode, crop and cache a dataset's faces (resumable)",
        description="Read a dataset, crop every face once and store the uint8 faces in a cache "
        "directory. Rerunning with the same arguments resumes an interrupted build or reuses "
        "a finished one.",
    )
    prep.add_argument("--dataset", required=True, help="dataset reader (csv, afew-va, aff-wild2, ...)")
    prep.add_argument("--root", required=True, help="the raw dataset (folder or labels CSV)")
    prep.add_argument("--out", required=True, help="cache directory to write")
    prep.add_argument("--image-size", type=int, required=True, help="side of the cached faces (pixels)")
    prep.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                      help=f"extra margin around face boxes (default {DEFAULT_MARGIN})")
    prep.add_argument("--workers", type=int, default=0, help="decoding threads (default 0: none)")
    prep.add_argument("-o", "--option", action="append", type=_option, default=[], metavar="KEY=VALUE",
                      help="reader option, repeatable (e.g. -o detect=true)")
    prep.add_argument("--json", action="store_true", help="print the summary as JSON")
    prep.set_defaults(func=_prepare)

    synth = data_sub.add_parser(
        "synth", help="write a synthetic dataset (PNG faces + labels.csv) for smoke tests"
    )
    synth.add_argument("--out", required=True, help="folder to write")
    synth.add_argument("--identities", type=int, default=12)
    synth.add_argument("--clips", type=int, default=2, help="clips per identity")
    synth.add_argument("--frames", type=int, default=8, help="frames per clip")
    synth.add_argument("--image-size", type=int, default=64)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--json", action="store_true", help="print the summary as JSON")
    synth.set_defaults(func=_synth)


def _prepare(args: argparse.Namespace) -> int:
    from elim.data.cache import build_cache
    from elim.datasets import read_dataset

    result = read_dataset(args.dataset, args.root, **dict(args.option))
    cache = build_cache(
        result,
        args.out,
        args.image_size,
        args.margin,
        progress=not args.json,
        workers=args.workers,
        dataset=args.dataset,
    )
    meta = cache.meta
    summary = {
        "dataset": args.dataset,
        "source": meta.get("source"),
        "out": str(Path(args.out).absolute()),
        "image_size": meta["image_size"],
        "margin": meta["margin"],
        "read": meta["counts"]["records"] + meta["counts"]["reader_skipped"],
        "written": len(cache),
        "identities": meta["counts"]["identities"],
        "skipped_by_reader": meta["reader_skipped"],
        "skipped_by_cache": meta["skipped"],
        "notes": meta["notes"],
        "shards": len(meta["shards"]),
        "fingerprint": meta["fingerprint"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    rows = [
        ("dataset", f"{args.dataset} ({summary['source']})"),
        ("rows read", summary["read"]),
        ("skipped by reader", _reasons(meta["reader_skipped"])),
        ("skipped by cache", _reasons(meta["skipped"])),
        ("faces written", (f"{len(cache)} ({summary['identities']} identities), "
                           f"{meta['image_size']}×{meta['image_size']}, margin {meta['margin']}")),
        ("cache", f"{summary['out']} ({summary['shards']} shard(s))"),
    ]
    if meta["notes"]:
        rows.insert(4, ("notes", _reasons(meta["notes"])))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for name, report in (("reader", meta["reader_skipped"]), ("cache", meta["skipped"])):
        for reason, entry in report.items():
            for ex in entry["examples"]:
                print(f"  e.g. {reason} ({name}): {ex}")
    return 0


def _reasons(report: dict) -> str:
    if not report:
        return "0"
    total = sum(e["count"] for e in report.values())
    return f"{total} (" + ", ".join(f"{r}: {e['count']}" for r, e in report.items()) + ")"


def _synth(args: argparse.Namespace) -> int:
    try:
        from elim.datasets.synthetic import write_synthetic
    except ImportError as err:
        raise DataError(f"the synthetic dataset module is not available ({err})") from err
    result = write_synthetic(
        args.out,
        n_identities=args.identities,
        clips_per_identity=args.clips,
        frames_per_clip=args.frames,
        image_size=args.image_size,
        seed=args.seed,
    )
    out = Path(args.out).absolute()
    summary = {
        "out": str(out),
        "labels": str(out / "labels.csv"),
        "identities": args.identities,
        "images": args.identities * args.clips * args.frames,
        "image_size": args.image_size,
        "seed": args.seed,
    }
    if isinstance(result, (str, Path)):
        summary["labels"] = str(result)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {summary['images']} synthetic faces of {args.identities} identities "
              f"({args.image_size}×{args.image_size}) to {out}")
        print(f"labels: {summary['labels']}  (read with --dataset csv --root {out})")
    return 0
