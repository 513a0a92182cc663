"""The measured cases. Each returns one row (a dict) of the benchmark tables.

Every case builds its model with a fixed seed and random inputs (speed and memory do not depend on
the values), runs ``warmup`` untimed and ``repeats`` timed steps (:func:`alignlib.bench.timing.time_call`),
and on CUDA records ``torch.cuda.max_memory_allocated`` above what was allocated before the steps
(on CPU the subprocess wrapper adds peak RSS). ``amp=True`` runs under bf16 autocast (CUDA only).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from alignlib.bench.flops import factored_elementwise, matmul_probe, bandwidth_probe, tower_flops
from alignlib.bench.timing import time_call

__all__ = ["tower_step", "official_step", "image_step", "dina_step", "probe", "device_name"]


def device_name(device: str = "cpu") -> str:
    """A readable name of the device (GPU model, or the CPU model and thread count)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    name = "CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({torch.get_num_threads()} threads)"


def _autocast(device: str, amp: bool):
    if not amp:
        return contextlib.nullcontext()
    if torch.device(device).type != "cuda":
        raise ValueError("amp (bf16 autocast) is measured on CUDA only")
    return torch.autocast("cuda", dtype=torch.bfloat16)


def _measure(step, device: str, warmup: int, repeats: int) -> dict[str, Any]:
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    t = time_call(step, warmup=warmup, repeats=repeats, device=device)
    row = {"median_s": t["median_s"], "min_s": t["min_s"], "repeats": repeats, "warmup": warmup,
           "device": torch.device(device).type, "device_name": device_name(device),
           "threads": torch.get_num_threads()}
    if cuda:
        row["peak_mb"] = (torch.cuda.max_memory_allocated() - before) / 2 ** 20
    return row


def tower_step(n_neurons: int, batch: int, attention: str = "sdpa", d_model: int = 512, n_heads: int = 1,
               residual: bool = False, device: str = "cpu", amp: bool = False, warmup: int = 1,
               repeats: int = 2, seed: int = 0) -> dict[str, Any]:
    """One forward + backward step of :class:`NeuralTower` (``attention`` = sdpa | naive | factored)."""
    from alignlib.models.neural_tower import NeuralTower

    torch.manual_seed(seed)
    tower = NeuralTower(n_neurons, d_model=d_model, n_heads=n_heads, residual=residual,
                        attention=attention).to(device)
    r = torch.randn(batch, n_neurons, device=device)

    def step():
        with _autocast(device, amp):
            out = tower(r)
        out.float().sum().backward()
        tower.zero_grad(set_to_none=True)

    row = _measure(step, device, warmup, repeats)
    flops = tower_flops(n_neurons, batch, attention, d_model, n_heads)
    row.update(matmul_flops=flops, step="forward+backward")
    if attention == "factored":
        from alignlib.models import factored_kernel

        path = "kernel" if factored_kernel.available(r) else "torch"
        e = factored_elementwise(n_neurons, batch, n_heads, path=path)
        row.update(elementwise_ops=e["ops"], elementwise_bytes=e["bytes"],
                   factored_path="fused C kernel" if path == "kernel" else "torch ops")
    return row


def official_step(n_neurons: int, batch: int, d_model: int = 512, device: str = "cpu", warmup: int = 0,
                  repeats: int = 1, checkout: str | None = None, seed: int = 0) -> dict[str, Any]:
    """One forward + backward step of the official structure (stand-in, or the module from ``checkout``)."""
    from alignlib.bench.official import OfficialStyleNeuralTower, load_official_tower, official_forward

    torch.manual_seed(seed)
    model = (load_official_tower(checkout, n_neurons, d_model) if checkout
             else OfficialStyleNeuralTower(n_neurons, d_model)).to(device)
    r = torch.randn(batch, n_neurons, device=device)

    def step():
        official_forward(model, r).sum().backward()
        model.zero_grad(set_to_none=True)

    row = _measure(step, device, warmup, repeats)
    row.update(implementation="official module" if checkout else "stand-in of the official structure",
               step="forward+backward")
    return row


def image_step(width: str = "quick", batch: int = 32, stem_stride: int = 4, device: str = "cpu",
               amp: bool = False, warmup: int = 1, repeats: int = 2, seed: int = 0) -> dict[str, Any]:
    """Image tower (DS-Net) forward + backward; images per second."""
    from alignlib.models.dina import build_dina

    torch.manual_seed(seed)
    tower = build_dina(10, width, stem_stride=stem_stride).image_tower.to(device)
    x = torch.randn(batch, 1, *tower.input_size, device=device)

    def step():
        with _autocast(device, amp):
            out = tower(x)
        out.float().sum().backward()
        tower.zero_grad(set_to_none=True)

    row = _measure(step, device, warmup, repeats)
    row["images_per_s"] = batch / row["median_s"]
    return row


def dina_step(width: str = "quick", n_neurons: int = 600, batch: int = 128, attention: str = "sdpa",
              stem_stride: int = 4, residual: bool = True, n_train: int = 810, device: str = "cpu",
              amp: bool = False, warmup: int = 1, repeats: int = 2, seed: int = 0) -> dict[str, Any]:
    """One DINA training step (both towers, symmetric InfoNCE, AdamW + RMSprop) and the epoch time
    extrapolated from it: ``ceil(n_train / batch)`` steps."""
    from alignlib.losses.info_nce import info_nce
    from alignlib.models.dina import build_dina

    torch.manual_seed(seed)
    model = build_dina(n_neurons, width, stem_stride=stem_stride, residual=residual).to(device)
    model.neural_tower.attention = attention
    opts = [torch.optim.AdamW(model.image_tower.parameters(), lr=3e-4, weight_decay=5e-5),
            torch.optim.RMSprop(model.neural_tower.parameters(), lr=5e-5, alpha=0.9)]
    x = torch.randn(batch, 1, *model.image_tower.input_size, device=device)
    r = torch.randn(batch, n_neurons, device=device)

    def step():
        with _autocast(device, amp):
            z_img, z_neu = model(x, r)
        loss = info_nce(z_img.float(), z_neu.float(), 0.01)
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()

    row = _measure(step, device, warmup, repeats)
    steps = math.ceil(n_train / batch)
    row.update(steps_per_epoch=steps, epoch_s=steps * row["median_s"], epoch_extrapolated=True)
    return row


def probe(device: str = "cpu", n: int = 2048, mib: int = 256) -> dict[str, Any]:
    """Measured matmul throughput (float32; bf16 too on CUDA) and memory bandwidth of this machine."""
    row = {"device": torch.device(device).type, "device_name": device_name(device),
           "threads": torch.get_num_threads(), "matmul_n": n,
           "matmul_gflops_fp32": matmul_probe(n, device=device)["gflops"],
           "bandwidth_gbps": bandwidth_probe(mib, device=device)["gbps"]}
    if torch.device(device).type == "cuda":
        row["matmul_gflops_bf16"] = matmul_probe(n, device=device, dtype=torch.bfloat16)["gflops"]
    return row
