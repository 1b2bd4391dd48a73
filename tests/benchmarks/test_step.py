"""``elim bench step`` on a tiny setting: both methods timed on the same batches."""

from __future__ import annotations

import json

from elim.benchmarks.step import bench_step
from elim.cli import main


def test_bench_step_reports_both_methods_and_the_matching():
    r = bench_step("cnn-small", batch=12, image_size=16, n_identities=3, k=4, feature_dim=8,
                   repeats=2, warmup=1, progress=False)
    assert len(r["baseline_all_s"]) == len(r["elim_all_s"]) == 2
    assert r["baseline_s"] > 0 and r["elim_s"] > 0 and r["matching_s"] > 0
    assert r["ratio"] == r["elim_s"] / r["baseline_s"]
    assert 0 < r["matching_share"] < 1


def test_bench_step_command_json(capsys):
    code = main(["bench", "step", "--backbone", "cnn-small", "--batch", "8", "--image-size", "16",
                 "--n-identities", "2", "--k", "3", "--repeats", "1", "--warmup", "0", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backbone"] == "cnn-small" and out["batch"] == 8 and out["n_identities"] == 2


def test_bench_step_under_bf16_autocast(monkeypatch):
    """bf16 really enters bfloat16 autocast around the steps, and the network computes in
    bfloat16 there (fails if ``precision`` were ignored or autocast silently skipped)."""
    import torch

    entered: list[tuple[str, torch.dtype, bool]] = []  # autocasts turned on (not enabled=False)
    real_autocast = torch.autocast

    class RecordingAutocast:
        def __init__(self, device_type, dtype=None, enabled=True, **kwargs):
            self.device_type, self.dtype, self.enabled = device_type, dtype, enabled
            self._inner = real_autocast(device_type, dtype=dtype, enabled=enabled, **kwargs)

        def __enter__(self):
            out = self._inner.__enter__()
            if self.enabled:  # the matching layer's own enabled=False block is not one
                entered.append((self.device_type, self.dtype,
                                torch.is_autocast_enabled(self.device_type)))
            return out

        def __exit__(self, *exc):
            return self._inner.__exit__(*exc)

    dtypes: set[torch.dtype] = set()

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            dtypes.add(output.dtype)

    monkeypatch.setattr(torch, "autocast", RecordingAutocast)
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        r = bench_step("cnn-small", batch=8, image_size=16, n_identities=2, k=3, feature_dim=8,
                       repeats=1, warmup=0, progress=False, precision="bf16")
    finally:
        handle.remove()
    assert r["precision"] == "bf16" and r["elim_s"] > 0
    assert len(entered) == 2  # one step of each method
    assert all(dtype == torch.bfloat16 and enabled for _, dtype, enabled in entered)
    assert torch.bfloat16 in dtypes


def test_bench_step_float32_has_no_autocast(monkeypatch):
    import torch

    real_autocast = torch.autocast

    def refuse(device_type, *args, enabled=True, **kwargs):
        assert not enabled, "float32 must not turn autocast on"
        return real_autocast(device_type, *args, enabled=enabled, **kwargs)

    monkeypatch.setattr(torch, "autocast", refuse)
    r = bench_step("cnn-small", batch=8, image_size=16, n_identities=2, k=3, feature_dim=8,
                   repeats=1, warmup=0, progress=False)
    assert r["precision"] == "32"
