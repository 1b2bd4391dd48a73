"""``elim evaluate-pairs RUN_DIR LABELS.csv --order SPEC``: a trained run on labelled photos of
other people — does it order each person's expressions as stated?

The CSV has ``path`` (relative to its folder), ``identity`` and a label column (``label`` or
``expression``, or ``--label-column``), optionally numeric ``valence`` / ``arousal``. Faces are
found by the detector and cut by the run's face contract, exactly as ``elim predict`` does (the
largest face of each photo). Each ``--order`` is checked per person: ``smiling>neutral``
(valence), ``happy>normal>sad:valence`` (a chain), ``sleepy<*:arousal`` (below every other label
of the person). Reported: per ordering the people with both sides and the fraction for whom it
holds; CCC and the other metrics where numeric labels exist.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from elim.detection import DEFAULT_DETECTOR, DETECTORS

    p = sub.add_parser(
        "evaluate-pairs",
        help="per-person expression orderings (and CCC) of a run on a folder of labelled photos",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of `elim train`")
    p.add_argument("labels", metavar="LABELS.csv", help="CSV: path, identity, label[, valence, arousal]")
    p.add_argument("--order", action="append", default=[], metavar="SPEC", help="an ordering that must hold per person, e.g. smiling>neutral, happy>normal>sad:valence, sleepy<*:arousal (repeatable)")
    p.add_argument("--label-column", metavar="COL", help="the label column (default: label, else expression)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS), help=f"face detector (default {DEFAULT_DETECTOR})")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="photos per batch (default 32)")
    p.add_argument("--margin", type=float, metavar="M", help="override the run's face contract: the box square with this margin")
    p.add_argument("--grayscale", action="store_true", default=None, help="override the run's face colour: grey crops")
    p.add_argument("--device", default="cpu", help="torch device for the model (default cpu)")
    p.add_argument("-o", "--out", metavar="FILE.csv", help="write the per-person table to FILE.csv")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elim.errors import ElimError
    from elim.evaluation import evaluate_pairs, parse_orderings, read_pair_labels
    from elim.inference.predictor import load
    from elim.metrics import format_metrics_table

    labels = read_pair_labels(args.labels, args.label_column)
    numeric = all(c in labels.columns for c in ("valence", "arousal"))
    if not args.order and not numeric:
        raise ElimError(f"{args.labels}: no numeric valence/arousal columns; state what must "
                        "hold with --order (e.g. --order smiling>neutral)")
    orderings = parse_orderings(args.order) if args.order else []
    predictor = load(args.run_dir, device=args.device, margin=args.margin,
                     grayscale=args.grayscale)
    result = evaluate_pairs(
        labels, lambda paths: predictor.predict(paths, args.detector, args.batch_size), orderings
    )
    if args.out:
        from elim.fileio import atomic_write_text

        atomic_write_text(args.out, result["per_person"].to_csv(index=False))
    for miss in result["missing"]:
        print(f"elim evaluate-pairs: {miss['path']}: {miss['status']}", file=sys.stderr)
    if args.json:
        out = {**result, "run": str(args.run_dir), "labels": str(args.labels),
               "per_person": result["per_person"].to_dict(orient="records")}
        print(json.dumps(out, indent=2))
    else:
        print("| ordering | people | respected | fraction |\n|---|---:|---:|---:|")
        for row in result["orderings"]:
            frac = "-" if row["fraction"] is None else f"{row['fraction']:.0%}"
            print(f"| {row['ordering']} | {row['people']} | {row['respected']} | {frac} |")
        if result["metrics"] is not None:
            print()
            print(format_metrics_table({f"photos (n={result['n_metrics']})": result["metrics"]},
                                       label="labels"))
    print(f"elim evaluate-pairs: {result['photos']} photo(s), {result['faces']} with a face",
          file=sys.stderr)
    return 1 if any(m["status"].startswith("error") for m in result["missing"]) else 0
