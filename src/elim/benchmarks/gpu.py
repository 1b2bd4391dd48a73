"""``elim bench gpu``: everything worth measuring on the day a GPU is lent, in one command.

One JSON report (``--out``, default ``gpu_check.json``) with

* ``steps`` — seconds per training step of the baseline and of ELIM
  (:func:`elim.benchmarks.step.bench_step`) for each paper backbone at the paper's batch size
  and face size (``configs/paper/*.yaml``: alexnet-light 10 × 51, resnet18 10 × 26, mixer
  10 × 13, 224 px), in float32 and under bfloat16 autocast;
* ``sinkhorn`` — :func:`elim.ot.sinkhorn` on the GPU for the matching layer's problems: B = 9
  targets (N = 10 identities), k × k cosine costs for k = 10 … 256, float32, with its
  iterations, convergence and marginal error;
* ``train`` — a one-epoch ``elim train`` of the ``synthetic`` preset on one GPU with
  ``16-mixed`` (the gradient scaler's path);
* ``ddp`` — the same on two GPUs with ``--strategy ddp`` (NCCL) when two are visible.

Each part records its own error instead of stopping the others (an out-of-memory batch size,
a failing launch). ``--dry-run`` runs the same code on the CPU at toy sizes and skips the two
training runs (their commands are reported), so the script itself is checked without a GPU;
``scripts/gpu_check.sh`` is the one command to run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elim.errors import ElimError

__all__ = ["PAPER_STEPS", "SINKHORN_SIZES", "gpu_check", "register", "train_command"]

#: (backbone, identities N, samples per identity K, face size): configs/paper/*.yaml
PAPER_STEPS = (("alexnet-light", 10, 51, 224), ("resnet18", 10, 26, 224), ("mixer", 10, 13, 224))
#: k of the Sinkhorn problems (B = N - 1 = 9 targets of k samples each)
SINKHORN_SIZES = (10, 32, 64, 128, 256)
_DRY_STEPS = (("cnn-small", 4, 5, 32),)
_DRY_SIZES = (10, 16)


def _guarded(part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``part()``, or ``{"error": ...}`` when it fails (the other parts still run)."""
    try:
        return part()
    except (RuntimeError, ValueError, KeyError, OSError, ElimError) as err:  # e.g. CUDA OOM
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return {"error": f"{type(err).__name__}: {first[:300]}"}


def _steps(device: str, sizes: tuple, repeats: int, warmup: int) -> list[dict[str, Any]]:
    from elim.benchmarks.step import bench_step

    rows = []
    for backbone, n_ids, per_id, image_size in sizes:
        for precision in ("32", "bf16"):
            def one(backbone=backbone, n_ids=n_ids, per_id=per_id, image_size=image_size,
                    precision=precision) -> dict[str, Any]:
                r = bench_step(backbone, batch=n_ids * per_id, image_size=image_size,
                               n_identities=n_ids, repeats=repeats, warmup=warmup,
                               device=device, progress=False, precision=precision)
                return {k: r[k] for k in ("baseline_s", "elim_s", "ratio", "matching_s",
                                          "matching_share")}

            row = {"backbone": backbone, "batch": n_ids * per_id, "image_size": image_size,
                   "precision": precision, **_guarded(one)}
            rows.append(row)
            _release(device)
    return rows


def _release(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _sinkhorn(device: str, sizes: tuple, repeats: int, n_problems: int = 9) -> list[dict]:
    import torch

    from elim.benchmarks.sinkhorn import cosine_costs
    from elim.ot import sinkhorn

    dev = torch.device(device)
    rows = []
    for k in sizes:
        def one(k=k) -> dict[str, Any]:
            cost = cosine_costs(n_problems, k, 64, seed=k, dtype=torch.float32).to(dev)
            result = sinkhorn(cost)  # warm-up (and the result reported)
            times = []
            for _ in range(repeats):
                _sync(dev)
                start = time.perf_counter()
                sinkhorn(cost)
                _sync(dev)
                times.append(time.perf_counter() - start)
            return {"seconds": statistics.median(times), "min_seconds": min(times),
                    "n_iter": result.n_iter, "converged": bool(result.converged.all()),
                    "marginal_error": float(result.marginal_error.max())}

        rows.append({"k": k, "B": n_problems, **_guarded(one)})
    return rows


def _sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def train_command(out: str | Path, devices: int) -> list[str]:
    """The ``elim train`` of the training checks: one epoch of the ``synthetic`` preset on
    ``devices`` GPUs with ``16-mixed`` (DDP when more than one)."""
    cmd = [sys.executable, "-m", "elim.cli", "train", "--preset", "synthetic", "--accelerator",
           "gpu", "--devices", str(devices), "--precision", "16-mixed", "--epochs", "1",
           "--out", str(out), "--json"]
    return cmd + (["--strategy", "ddp"] if devices > 1 else [])


def _shown(cmd: list[str]) -> str:
    """``python -m elim.cli train …`` as ``elim train …``."""
    return " ".join(["elim", *cmd[3:]])


def _train(devices: int, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="elim-gpu-check-") as tmp:
        cmd = train_command(Path(tmp) / "run", devices)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("ELIM_TRAIN_RUN_DIR", None)
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                                  check=False)
        except subprocess.TimeoutExpired:
            return {"command": _shown(cmd), "error": f"timed out after {timeout:.0f} s"}
        row: dict[str, Any] = {"command": _shown(cmd), "exit": proc.returncode,
                               "seconds": round(time.perf_counter() - start, 1)}
        if proc.returncode != 0:
            row["stderr_tail"] = proc.stderr[-2000:]
            return row
        metrics = json.loads(proc.stdout)["metrics"]
        row.update(processes=metrics["processes"], steps=metrics["steps"],
                   val_ccc_mean=metrics["val"]["ccc_mean"],
                   skipped_steps=metrics["skipped_steps"]["skipped_steps"])
        return row


def gpu_check(dry_run: bool = False, repeats: int = 10, warmup: int = 3,
              train_timeout: float = 300.0) -> dict[str, Any]:
    """Run the checks of the module docstring and return the report.

    Parameters
    ----------
    dry_run
        CPU, toy sizes, no training runs (checks the script without a GPU).
    repeats, warmup
        Timed and untimed repetitions of each step and Sinkhorn call.
    train_timeout
        Seconds allowed for each training run.

    Returns
    -------
    dict
        ``{"dry_run", "environment", "device", "steps", "sinkhorn", "train", "ddp",
        "seconds"}``.
    """
    import torch

    from elim.runs.provenance import environment

    started = time.perf_counter()
    if not dry_run and not torch.cuda.is_available():
        raise ElimError("no CUDA device is visible (torch.cuda.is_available() is False); "
                        "`elim bench gpu --dry-run` checks this script on the CPU")
    device = "cpu" if dry_run else "cuda"
    n_gpus = torch.cuda.device_count() if not dry_run else 0
    report: dict[str, Any] = {
        "dry_run": dry_run,
        "environment": environment(),
        "device": {"type": device, "count": n_gpus,
                   "names": [torch.cuda.get_device_name(i) for i in range(n_gpus)],
                   "cuda": torch.version.cuda, "bf16": bool(n_gpus and
                                                            torch.cuda.is_bf16_supported())},
    }
    report["steps"] = _steps(device, _DRY_STEPS if dry_run else PAPER_STEPS, repeats, warmup)
    report["sinkhorn"] = _sinkhorn(device, _DRY_SIZES if dry_run else SINKHORN_SIZES, repeats)
    if dry_run:
        report["train"] = {"skipped": "dry run", "command": _shown(train_command("RUN", 1))}
        report["ddp"] = {"skipped": "dry run", "command": _shown(train_command("RUN", 2))}
    else:
        report["train"] = _guarded(lambda: _train(1, train_timeout))
        report["ddp"] = (_guarded(lambda: _train(2, train_timeout)) if n_gpus >= 2
                         else {"skipped": f"{n_gpus} GPU visible; the DDP check needs 2"})
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _summary(report: dict[str, Any]) -> str:
    dev = report["device"]
    where = "dry run, CPU" if report["dry_run"] else ", ".join(dev["names"])
    lines = [f"elim bench gpu ({where}; {report['seconds']} s)", "",
             ("| backbone | batch | px | precision | baseline s | elim s | elim/baseline "
              "| matching s |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in report["steps"]:
        if "error" in r:
            lines.append(f"| {r['backbone']} | {r['batch']} | {r['image_size']} | "
                         f"{r['precision']} | {r['error']} | | | |")
        else:
            lines.append(f"| {r['backbone']} | {r['batch']} | {r['image_size']} | "
                         f"{r['precision']} | {r['baseline_s']:.4f} | {r['elim_s']:.4f} | "
                         f"{r['ratio']:.3f} | {r['matching_s']:.4f} |")
    lines += ["", "| Sinkhorn k (B = 9) | ms | iterations | converged |", "|---|---|---|---|"]
    for r in report["sinkhorn"]:
        lines.append(f"| {r['k']} | {r['error']} | | |" if "error" in r else
                     f"| {r['k']} | {1e3 * r['seconds']:.2f} | {r['n_iter']} | {r['converged']} |")
    for part in ("train", "ddp"):
        r = report[part]
        state = r.get("skipped") or r.get("error") or (
            f"exit {r['exit']}, {r['seconds']} s" + (
                f", {r['processes']} process(es), {r['steps']} steps, val CCC "
                f"{r['val_ccc_mean']:.3f}" if r.get("exit") == 0 else ""))
        lines.append(f"{part}: {state}")
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("gpu", help="GPU report: step times, Sinkhorn, 16-mixed and DDP runs",
                            description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dry-run", action="store_true",
                        help="check the script on the CPU (toy sizes, no training runs)")
    parser.add_argument("--out", metavar="FILE", default="gpu_check.json",
                        help="the JSON report (default gpu_check.json)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--train-timeout", type=float, default=300.0, metavar="SECONDS")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elim.fileio import write_json

    if args.repeats < 1 or args.warmup < 0:
        raise ElimError("--repeats must be >= 1 and --warmup >= 0")
    report = gpu_check(args.dry_run, args.repeats, args.warmup, args.train_timeout)
    write_json(args.out, report)
    print(json.dumps(report, indent=2) if args.json else _summary(report))
    if not args.json:
        print(f"report: {args.out}")
    return 0
