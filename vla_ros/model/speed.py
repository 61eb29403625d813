"""Speed options: CPU threads, dynamic int8 quantisation, torch.compile.

Each is checked in test/model/test_speed.py to change actions by less than its stated tolerance
(QUANTIZE_TOLERANCE, COMPILE_TOLERANCE, in normalised action units).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from vla_ros.model.vla_policy import VLAPolicy

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


def quantize_backbone(policy: VLAPolicy) -> int:
    """Dynamic int8 for every linear layer of the transformers backbone (where the time goes).

    The stacked ensemble members stay in float: their weights are batched tensors, not
    `nn.Linear` modules, and they cost little. Returns the number of layers quantised.
    """
    backbone = policy.model.backbone
    if backbone is None:
        raise ValueError("quantize applies to a transformers vision backbone; this model has none")
    if policy.device.type != "cpu":
        raise ValueError("dynamic int8 quantisation runs on the CPU only")
    count = sum(isinstance(m, nn.Linear) for m in backbone.modules())
    with warnings.catch_warnings():
        # torch.ao.quantization warns it is deprecated in favour of torchao; it still works in
        # the pinned torch, and torchao would be another large dependency
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(
            backbone, {nn.Linear}, dtype=torch.qint8, inplace=True
        )
    return count


def compile_model(policy: VLAPolicy, backend: str = "inductor") -> None:
    """torch.compile the network in place. The first steps pay the compilation: about a minute
    for a small model on two cores with inductor, which generates and builds C++ kernels."""
    policy.model.compile(backend=backend)
