"""Speed options: CPU threads, the backbone's precision (bfloat16 or dynamic int8), torch.compile.

Each is checked in test/model/test_speed.py to change actions by less than its stated tolerance
(BFLOAT16_TOLERANCE, QUANTIZE_TOLERANCE, COMPILE_TOLERANCE, in normalised action units), and
`vla-ros bench` measures what bfloat16 and int8 change on a CLIP ViT-B/32-sized backbone.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from vla_ros.model.vla_policy import VLAPolicy

BACKBONE_PRECISIONS = ("float32", "bfloat16", "int8")
# bfloat16 keeps 8 bits of mantissa through every layer of the backbone; the fusion and the heads
# stay in float32. A twentieth of a channel's half-range is the most it may move an action.
BFLOAT16_TOLERANCE = 0.05
# int8 weights and activations perturb every layer of a deep backbone a little; a tenth of a
# channel's half-range is the most a quantised model may move an action (normalised units).
QUANTIZE_TOLERANCE = 0.1
# compiled kernels reorder floating-point sums only
COMPILE_TOLERANCE = 1e-4


def configure_threads(threads: int | None = None) -> int:
    """Intra-op threads for inference: one per core the process may use (2 on the project's
    machines), since more only time-slice the same cores and raise the latency tail."""
    if threads is None:
        threads = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
    threads = max(1, int(threads or 1))
    torch.set_num_threads(threads)
    return threads


def native_bfloat16(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run in hardware here: any CUDA GPU of the last years, or a
    CPU with AVX512-BF16 or AMX. Elsewhere they are emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def check_backbone_precision(precision: str, has_backbone: bool, device: torch.device) -> None:
    """A ValueError saying what to do where `precision` cannot apply (set_backbone_precision)."""
    if precision not in BACKBONE_PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}: use one of {', '.join(BACKBONE_PRECISIONS)}"
        )
    if precision == "float32":
        return
    if not has_backbone:
        raise ValueError(
            f"precision {precision} applies to a transformers vision backbone; this model has "
            "none (its small CNN is already fast): use float32"
        )
    if precision == "bfloat16" and not native_bfloat16(device):
        raise ValueError(
            f"this {device.type.upper()} has no native bfloat16 (AVX512-BF16 or AMX on a CPU): it "
            "would run slower than float32; use int8"
        )
    if precision == "int8" and device.type != "cpu":
        raise ValueError("int8 (dynamic quantisation) runs on the CPU only: use bfloat16 on CUDA")


def set_backbone_precision(policy: VLAPolicy, precision: str) -> None:
    """Run the transformers vision backbone (where a large model spends its time) in `precision`:
    float32 (as trained), bfloat16 (weights and arithmetic; about half the time of float32 for a
    CLIP ViT-B/32 on a CPU with AVX512-BF16) or int8 (dynamic quantisation of its linear layers;
    CPU only). The rest of the network stays in float32."""
    backbone = policy.model.backbone
    check_backbone_precision(precision, backbone is not None, policy.device)
    if precision == "bfloat16":
        backbone.run_in(torch.bfloat16)
    elif precision == "int8":
        with warnings.catch_warnings():
            # torch.ao.quantization warns it is deprecated in favour of torchao; it still works
            # in the pinned torch, and torchao would be another large dependency
            warnings.simplefilter("ignore")
            torch.ao.quantization.quantize_dynamic(
                backbone, {nn.Linear}, dtype=torch.qint8, inplace=True
            )


def compile_model(policy: VLAPolicy, backend: str = "inductor") -> None:
    """torch.compile the network in place. The first steps pay the compilation: about a minute
    for a small model on two cores with inductor, which generates and builds C++ kernels."""
    policy.model.compile(backend=backend)
