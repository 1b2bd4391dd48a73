"""Multi-process (DDP) training: identity-disjoint shards and exactly gathered validation."""

from __future__ import annotations

import json
import socket
import subprocess
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from elim.cli import main
from elim.data.sampler import IdentityBatchSampler
from elim.runs import read_json
from elim.training.distributed import any_process, gather_objects, gather_shards, shard, unshard


# ------------------------------------------------------------------ gathering (one process)
def _fake_all_gather(locals_: list[torch.Tensor]):
    """What ``all_gather`` returns on every process, for shards ``locals_`` of all of them."""
    counts = torch.tensor([len(t) for t in locals_])
    length = int(counts.max())

    def all_gather(t: torch.Tensor) -> torch.Tensor:
        if t.shape == (1,):
            return counts.reshape(-1, 1)
        out = torch.zeros((len(locals_), length, *t.shape[1:]), dtype=t.dtype)
        for r, part in enumerate(locals_):
            out[r, : len(part)] = part
        return out

    return all_gather


@pytest.mark.parametrize(("n", "world"), [(n, w) for n in (1, 2, 5, 7, 45) for w in (1, 2, 3, 4)
                                           if n >= w])  # fewer samples than processes: refused
def test_gathered_shards_are_the_whole_set_once_in_order(n, world):
    data = torch.arange(2 * n, dtype=torch.float32).reshape(n, 2)
    idx = np.arange(n)
    parts = [data[shard(idx, r, world)] for r in range(world)]
    assert sum(len(p) for p in parts) == n and max(map(len, parts)) - min(map(len, parts)) <= 1
    all_gather = _fake_all_gather(parts)
    for r in range(world):  # every process reassembles the same, complete, ordered set
        assert torch.equal(gather_shards(parts[r], world, all_gather), data)


def test_ccc_of_gathered_shards_is_the_global_ccc_not_a_mean():
    from elim.metrics import va_metrics

    rng = np.random.default_rng(0)
    true = torch.tensor(rng.uniform(-1, 1, (45, 2)))
    pred = true * 0.5 + torch.tensor(rng.normal(0, 0.3, (45, 2)))
    pred[::2] += 0.4  # shard 0 is biased: per-shard CCCs differ from the global one
    parts = [(pred[shard(np.arange(45), r, 2)], true[shard(np.arange(45), r, 2)]) for r in (0, 1)]
    p_all = gather_shards(parts[0][0], 2, _fake_all_gather([p for p, _ in parts]))
    t_all = gather_shards(parts[0][1], 2, _fake_all_gather([t for _, t in parts]))
    assert va_metrics(p_all, t_all) == va_metrics(pred, true)
    mean_of_shards = np.mean([va_metrics(p, t)["ccc_mean"] for p, t in parts])
    assert abs(mean_of_shards - va_metrics(pred, true)["ccc_mean"]) > 1e-3


def test_unshard_refuses_counts_that_are_not_a_strided_split():
    gathered = torch.zeros(2, 3, 2)
    for counts in ([3, 1], [1, 2], [4, 3], [2]):
        with pytest.raises(ValueError):
            unshard(gathered, torch.tensor(counts))


def test_decisions_are_or_ed_over_processes():
    calls = []

    def reduce_boolean_decision(flag, all):
        calls.append((flag, all))
        return True  # another process said yes

    assert any_process(None, True) and not any_process(None, False)
    assert not any_process(SimpleNamespace(world_size=1, strategy=None), False)
    trainer = SimpleNamespace(world_size=2, strategy=SimpleNamespace(
        reduce_boolean_decision=reduce_boolean_decision))
    assert any_process(trainer, False) and calls == [(False, False)]
    assert gather_objects({"a": 1}, 1) == [{"a": 1}]


def test_sampler_shards_identities_disjointly_every_epoch():
    codes = np.repeat(np.arange(14), 9)
    for epoch in range(3):
        seen = []
        for rank in range(2):
            s = IdentityBatchSampler(codes, 4, 6, seed=0, rank=rank, world_size=2)
            s.set_epoch(epoch)
            seen.append({int(codes[i]) for batch in s for i in batch})
        assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(14))


# ------------------------------------------------------------------ two real CPU processes
def _check_run(run, metrics, capsys) -> None:
    """A finished two-process run: disjoint identity shards covering the training set in every
    epoch, and final metrics that ``elim evaluate`` reproduces in one process."""
    assert metrics["processes"] == 2
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]  # the loss falls
    train_ids = set(json.loads((run / "splits.json").read_text())["train"])
    logs = [json.loads(line) for r in (0, 1)
            for line in (run / "logs" / "ranks" / f"rank-{r}.jsonl").read_text().splitlines()]
    for epoch in range(metrics["epochs_run"]):
        parts = {e["rank"]: set(e["identities"]) for e in logs if e["epoch"] == epoch}
        assert set(parts) == {0, 1} and all(parts.values())
        assert not parts[0] & parts[1]  # no identity (hence no sample) on both processes
        assert parts[0] | parts[1] == train_ids
    for split in ("test", "val"):
        assert main(["evaluate", str(run), "--split", split, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["metrics"] == metrics[split]


def test_two_cpu_processes_train_on_disjoint_identities(ddp_reference, capsys):
    run, metrics = ddp_reference
    _check_run(run, metrics, capsys)
    # The validation metric used for model selection was gathered from both processes'
    # shards (23 + 22 faces): it equals the single-process value of the best epoch's weights.
    log = pd.read_csv(run / "logs" / "csv" / "metrics.csv").dropna(subset=["val/ccc_mean"])
    best = log[log["epoch"] == metrics["best_epoch"]]["val/ccc_mean"].item()
    assert best == pytest.approx(metrics["val"]["ccc_mean"], abs=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_loopback_train_like_two_devices(tmp_path, tiny_yaml, procs, ddp_reference,
                                                      capsys):
    """``--num-nodes 2 --devices 1``: two processes started as two "machines" (NODE_RANK 0 and 1,
    MASTER_ADDR 127.0.0.1, gloo) — the plain multi-node route — write one run, equal to the
    same run on one machine with two devices."""
    run = tmp_path / "run"
    port = str(_free_port())
    args = ["train", "--config", str(tiny_yaml), *procs.ddp_args, "--devices", "1",
            "--num-nodes", "2", "--out", str(run), "--json"]
    nodes = [procs.start(args, env=procs.env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                                             NODE_RANK=str(rank)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE) for rank in (0, 1)]
    outputs = [node.communicate(timeout=900) for node in nodes]
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-3000:]
    assert outputs[1][0] == ""  # node 1 neither reports nor writes the run's files
    metrics = json.loads(outputs[0][0])["metrics"]
    assert read_json(run / "config.json")["train"]["num_nodes"] == 2
    _check_run(run, metrics, capsys)
    reference, expected = ddp_reference
    want, got = load_file(reference / "model.safetensors"), load_file(run / "model.safetensors")
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert metrics["test"] == expected["test"]


def test_multi_node_needs_an_explicit_out(tiny_yaml, capsys, monkeypatch):
    monkeypatch.delenv("ELIM_TRAIN_RUN_DIR", raising=False)
    assert main(["train", "--config", str(tiny_yaml), "--num-nodes", "2"]) == 2
    assert "--out is needed" in capsys.readouterr().err
    monkeypatch.setenv("LOCAL_RANK", "0")  # started by torchrun
    assert main(["train", "--config", str(tiny_yaml)]) == 2
    assert "--out is needed" in capsys.readouterr().err
