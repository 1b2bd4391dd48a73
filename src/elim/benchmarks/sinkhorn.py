"""``elim bench sinkhorn``: batched :func:`elim.ot.sinkhorn` against POT at equal accuracy.

For each size k, B problems of k×k cosine costs between random unit features (seeded) are solved
with the same eps by (1) ``elim.ot.sinkhorn`` in one call, (2) POT's batched solver
``ot.batch.solve_batch(method="log_sinkhorn")`` when the installed POT has it, and (3) a Python
loop of ``ot.sinkhorn(method="sinkhorn_log")`` over the B problems. All three get the same
torch tensors. Equal accuracy: elim stops on the relative L1 row-marginal error <= tol; POT
stops on an L2 norm of a marginal error, so it gets tol / sqrt(k), which bounds its L1 error
by tol too; the achieved L1 errors of all three are reported. Times are medians over
``--repeats`` interleaved samples after one warm-up call of each; a sample is the mean time of
enough back-to-back calls to fill 50 ms. The fastest sample is reported too: on a shared
machine the median includes time lost to other processes, the minimum mostly does not.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm import tqdm

from elim.ot import sinkhorn

DEFAULT_SIZES = (10, 64, 256)


def cosine_costs(n_problems: int, k: int, dim: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, k, k) costs 1 - cos(x_i, y_j) between seeded standard-normal features."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(n_problems, k, dim, generator=gen), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(n_problems, k, dim, generator=gen), dim=-1)
    return (1.0 - x @ y.transpose(1, 2)).to(dtype)


def _pot_batch() -> Any | None:
    try:
        import ot.batch
    except ImportError:
        return None
    return getattr(ot.batch, "solve_batch", None)


def _marginal_error(plan: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest relative L1 error of either marginal over the batch."""
    rows = (plan.sum(-1) - a).abs().sum(-1) / a.sum(-1)
    cols = (plan.sum(-2) - b).abs().sum(-1) / b.sum(-1)
    return float(torch.maximum(rows, cols).max())


def _timed(
    runs: dict[str, Callable[[], Any]], repeats: int, min_sample_s: float
) -> tuple[dict[str, list[float]], dict]:
    """Seconds per call of each run, ``repeats`` samples each, and each run's last output.

    One warm-up call first. A sample averages as many back-to-back calls as fill
    ``min_sample_s`` (as timeit does), so that short calls are not dominated by the timer and
    by scheduling jitter; the runs are interleaved sample by sample so that a change in machine
    load hits all of them alike."""
    outputs, number = {}, {}
    for name, run in runs.items():
        start = time.perf_counter()
        outputs[name] = run()
        number[name] = max(1, math.ceil(min_sample_s / max(time.perf_counter() - start, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(number[name]):
                outputs[name] = run()
            samples[name].append((time.perf_counter() - start) / number[name])
    return samples, outputs


def run_size(
    k: int,
    *,
    n_problems: int,
    dim: int,
    eps: float,
    tol: float,
    max_iter: int,
    dtype: torch.dtype,
    repeats: int,
    seed: int,
    min_sample_s: float = 0.05,
) -> dict[str, Any]:
    """Benchmark one size; returns a flat dict of times, ratios, plan differences, iterations."""
    import ot

    cost = cosine_costs(n_problems, k, dim, seed, dtype)
    a = torch.full((n_problems, k), 1.0 / k, dtype=dtype)
    b = a.clone()
    pot_tol = tol / math.sqrt(k)
    solve_batch = _pot_batch()

    def loop():
        return [
            ot.sinkhorn(
                a[i],
                b[i],
                cost[i],
                eps,
                method="sinkhorn_log",
                numItermax=max_iter,
                stopThr=pot_tol,
                log=True,
            )
            for i in range(n_problems)
        ]

    runs: dict[str, Callable[[], Any]] = {
        "elim": lambda: sinkhorn(cost, a, b, eps=eps, max_iter=max_iter, tol=tol),
        "pot_loop": loop,
    }
    if solve_batch is not None:
        runs["pot_batch"] = lambda: solve_batch(
            cost, eps, a, b, max_iter=max_iter, tol=pot_tol, method="log_sinkhorn", grad="detach"
        )
    samples, out = _timed(runs, repeats, min_sample_s)
    times = {name: statistics.median(t) for name, t in samples.items()}
    best = {name: min(t) for name, t in samples.items()}

    plan = out["elim"].plan
    loop_plan = torch.stack([torch.as_tensor(p) for p, _ in out["pot_loop"]])
    row: dict[str, Any] = {
        "k": k,
        "elim_s": times["elim"],
        "pot_batch_s": times.get("pot_batch"),
        "pot_loop_s": times["pot_loop"],
        "ratio_elim_pot_batch": None,
        "ratio_elim_pot_loop": times["elim"] / times["pot_loop"],
        "elim_min_s": best["elim"],
        "pot_batch_min_s": best.get("pot_batch"),
        "pot_loop_min_s": best["pot_loop"],
        "ratio_min_elim_pot_batch": None,
        "ratio_min_elim_pot_loop": best["elim"] / best["pot_loop"],
        "max_plan_diff_pot_batch": None,
        "max_plan_diff_pot_loop": float((plan - loop_plan).abs().max()),
        "n_iter_elim": out["elim"].n_iter,
        "n_iter_pot_batch": None,
        "n_iter_pot_loop": max(int(log["niter"]) + 1 for _, log in out["pot_loop"]),
        "marginal_error_elim": _marginal_error(plan, a, b),
        "marginal_error_pot_batch": None,
        "marginal_error_pot_loop": _marginal_error(loop_plan, a, b),
    }
    if solve_batch is not None:
        batch_plan = out["pot_batch"].plan
        row.update(
            ratio_elim_pot_batch=times["elim"] / times["pot_batch"],
            ratio_min_elim_pot_batch=best["elim"] / best["pot_batch"],
            max_plan_diff_pot_batch=float((plan - batch_plan).abs().max()),
            n_iter_pot_batch=int(out["pot_batch"].log["n_iter"]) + 1,
            marginal_error_pot_batch=_marginal_error(batch_plan, a, b),
        )
    return row


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import ot

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    config = {
        "n_problems": args.batch,
        "dim": args.dim,
        "eps": args.eps,
        "tol": args.tol,
        "max_iter": args.max_iter,
        "dtype": args.dtype,
        "repeats": args.repeats,
        "min_sample_s": args.min_sample_s,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pot": ot.__version__,
        "pot_batch_available": _pot_batch() is not None,
    }
    rows = [
        run_size(
            k,
            n_problems=args.batch,
            dim=args.dim,
            eps=args.eps,
            tol=args.tol,
            max_iter=args.max_iter,
            dtype=dtype,
            repeats=args.repeats,
            seed=args.seed + k,
            min_sample_s=args.min_sample_s,
        )
        for k in tqdm(args.sizes, desc="sinkhorn bench", disable=None)
    ]
    return {"config": config, "results": rows}


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(report: dict[str, Any]) -> None:
    cfg = report["config"]
    print(
        f"Sinkhorn: B={cfg['n_problems']} problems, cosine costs (d={cfg['dim']}), "
        f"eps={cfg['eps']}, tol={cfg['tol']} (L1), {cfg['dtype']}, {cfg['threads']} threads, "
        f"median of {cfg['repeats']}; POT {cfg['pot']}"
        + ("" if cfg["pot_batch_available"] else " (ot.batch not available)")
    )
    header = (
        f"{'k':>5} {'elim ms':>9} {'POT batch':>10} {'POT loop':>9} {'elim/batch':>10} "
        f"{'elim/loop':>9} {'best e/b':>8} {'best e/l':>8} {'|dP| batch':>10} {'|dP| loop':>9} "
        f"{'iters e/b/l':>12} {'marginal err e/b/l':>26}"
    )
    print(header)
    for r in report["results"]:
        iters = f"{r['n_iter_elim']}/{_fmt(r['n_iter_pot_batch'], 'd')}/{r['n_iter_pot_loop']}"
        errors = "/".join(
            _fmt(r[f"marginal_error_{m}"], ".1e") for m in ("elim", "pot_batch", "pot_loop")
        )
        batch_ms = None if r["pot_batch_s"] is None else 1e3 * r["pot_batch_s"]
        print(
            f"{r['k']:>5} {1e3 * r['elim_s']:>9.2f} {_fmt(batch_ms, '.2f'):>10} "
            f"{1e3 * r['pot_loop_s']:>9.2f} {_fmt(r['ratio_elim_pot_batch'], '.3f'):>10} "
            f"{r['ratio_elim_pot_loop']:>9.3f} {_fmt(r['ratio_min_elim_pot_batch'], '.3f'):>8} "
            f"{r['ratio_min_elim_pot_loop']:>8.3f} {_fmt(r['max_plan_diff_pot_batch'], '.1e'):>10} "
            f"{r['max_plan_diff_pot_loop']:>9.1e} {iters:>12} {errors:>26}"
        )


def _main(args: argparse.Namespace) -> int:
    report = run_benchmark(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sinkhorn", help="time batched elim.ot.sinkhorn against POT (batched and looped)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per solver (median)")
    parser.add_argument("--eps", type=float, default=0.05, help="entropic regularisation")
    parser.add_argument("--tol", type=float, default=1e-5, help="relative L1 marginal tolerance")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--batch", type=int, default=9, help=argparse.SUPPRESS)
    parser.add_argument("--min-sample-s", type=float, default=0.05, help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help=argparse.SUPPRESS
    )
    parser.set_defaults(func=_main)
