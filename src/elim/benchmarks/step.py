"""``elim bench step``: seconds per training step of the baseline and of ELIM, on the same batches.

A step is what :class:`elim.training.ElimModule` does per iteration — preprocessing and
augmentation of a uint8 batch, forward, loss, backward and the Adam update — for
``method=baseline`` (L_va) and ``method=elim`` (L_va + L_main with identity matching, warm-up
weight already 1). Both models start from the same weights and see the same batches; their steps
alternate so that a change of machine load affects both alike. After ``warmup`` untimed steps
each, the median of ``repeats`` timed steps is reported, with the ratio ELIM / baseline (of the
medians, and of the fastest steps, which is less sensitive to a busy machine) and the matching
layer's own time (its share of the ELIM step). Defaults follow the paper: N = 10
identities per batch, k = 10, d = 64; images are random pixels (speed does not depend on content).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from typing import Any, get_args

__all__ = ["bench_step", "register"]


def bench_step(
    backbone: str = "alexnet-light",
    batch: int = 256,
    image_size: int = 112,
    n_identities: int = 10,
    k: int = 10,
    feature_dim: int = 64,
    repeats: int = 5,
    warmup: int = 2,
    device: str = "cpu",
    seed: int = 0,
    solver: str = "sinkhorn",
    progress: bool = True,
    precision: str = "32",
) -> dict[str, Any]:
    """Time baseline and ELIM training steps; returns the figures as a dict (seconds).

    ``precision``: ``"32"`` (float32) or ``"bf16"`` (backbone and head under bfloat16
    autocast, as ``train.precision="bf16-mixed"``; the matching layer stays float32).
    """
    import contextlib

    import torch
    from tqdm.auto import tqdm

    from elim.config import Config
    from elim.data.transforms import FaceAugment
    from elim.models import backbone_defaults, build_model
    from elim.training.module import ElimModule

    torch.manual_seed(seed)
    defaults = backbone_defaults(backbone)
    config = Config()
    config.model.backbone, config.model.feature_dim = backbone, feature_dim
    config.data.image_size = image_size
    config.matching.n_identities, config.matching.k = n_identities, k
    config.matching.solver = solver
    config.train.warmup = 0.0
    config.seed = seed

    from elim.models.preprocess import Preprocess

    pre = Preprocess(image_size, defaults["mean"], defaults["std"])
    augment = FaceAugment.from_config(config.augment, pre.mean, pre.std)
    dev = torch.device(device)
    base_model = build_model(config.model.to_model_dict())
    modules, optims = {}, {}
    for method in ("baseline", "elim"):
        cfg = copy.deepcopy(config)
        cfg.train.method = method
        module = ElimModule(copy.deepcopy(base_model), cfg, pre, augment=augment, total_steps=1)
        module.to(dev).train()
        modules[method] = module
        optims[method] = module.configure_optimizers()["optimizer"]

    g = torch.Generator().manual_seed(seed)
    n_batches = warmup + repeats
    batches = [
        (
            torch.randint(0, 256, (batch, image_size, image_size, 3), generator=g,
                          dtype=torch.uint8).to(dev),
            (torch.rand(batch, 2, generator=g) * 2 - 1).to(dev),
            (torch.arange(batch) % n_identities).to(dev),
        )
        for _ in range(n_batches)
    ]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    if precision not in ("32", "bf16"):
        raise ValueError(f"precision must be '32' or 'bf16', got {precision!r}")

    def autocast():
        if precision == "32":
            return contextlib.nullcontext()
        return torch.autocast(dev.type, dtype=torch.bfloat16)

    def step(method: str, b: tuple) -> tuple[float, float]:
        module, opt = modules[method], optims[method]
        before = module.matching_seconds
        sync()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss, _ = module.compute_loss(b, step=1)
        loss.backward()
        opt.step()
        sync()
        return time.perf_counter() - start, module.matching_seconds - before

    times: dict[str, list[float]] = {"baseline": [], "elim": []}
    matching: list[float] = []
    for i in tqdm(range(n_batches), desc="bench step", unit="step",
                  disable=None if progress else True):
        order = ("baseline", "elim") if i % 2 == 0 else ("elim", "baseline")
        for method in order:
            seconds, match = step(method, batches[i])
            if i >= warmup:
                times[method].append(seconds)
                if method == "elim":
                    matching.append(match)
    base_s = statistics.median(times["baseline"])
    elim_s = statistics.median(times["elim"])
    match_s = statistics.median(matching)
    return {
        "backbone": backbone, "batch": batch, "image_size": image_size,
        "n_identities": n_identities, "k": k, "feature_dim": feature_dim, "solver": solver,
        "precision": precision, "device": str(dev), "threads": torch.get_num_threads(),
        "repeats": repeats, "warmup": warmup,
        "baseline_s": base_s, "elim_s": elim_s, "ratio": elim_s / base_s,
        "ratio_min": min(times["elim"]) / min(times["baseline"]),
        "matching_s": match_s, "matching_share": match_s / elim_s,
        "baseline_all_s": times["baseline"], "elim_all_s": times["elim"],
    }


def register(sub: argparse._SubParsersAction) -> None:
    from elim.ot import Solver

    parser = sub.add_parser("step", help="seconds per training step, baseline vs ELIM",
                            description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backbone", default="alexnet-light")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--n-identities", type=int, default=10, help="N (identities per batch)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--feature-dim", type=int, default=64)
    parser.add_argument("--solver", choices=get_args(Solver), default="sinkhorn")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=("32", "bf16"), default="32",
                        help="bf16: backbone and head under bfloat16 autocast")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    r = bench_step(args.backbone, args.batch, args.image_size, args.n_identities, args.k,
                   args.feature_dim, args.repeats, args.warmup, args.device,
                   solver=args.solver, progress=not args.json, precision=args.precision)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['backbone']}, batch {r['batch']}, {r['image_size']} px, N={r['n_identities']}, "
          f"k={r['k']}, d={r['feature_dim']}, {r['precision']}, {r['device']} "
          f"({r['threads']} threads); "
          f"median of {r['repeats']} steps after {r['warmup']} warm-up")
    print("| method | s / step |")
    print("|---|---|")
    print(f"| baseline | {r['baseline_s']:.4f} |")
    print(f"| elim | {r['elim_s']:.4f} |")
    print(f"| matching layer (inside elim) | {r['matching_s']:.4f} |")
    print(f"ratio elim / baseline = {r['ratio']:.3f} (medians; {r['ratio_min']:.3f} of the fastest "
          f"steps); matching = {100 * r['matching_share']:.1f} % of the ELIM step")
    return 0
