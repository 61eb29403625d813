"""The VLA model family: configuration, network, uncertainty, checkpoints.

Importing this package is cheap: torch and transformers load when a name below is first used, so
nodes and `vla-ros --help` start fast.

    from vla_ros.model import load_policy
    policy = load_policy("")            # the shipped default ("mobile"), or a folder / hub id
    proposal = policy.select_action(observation)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vla_ros.model.checkpoint import (
        CheckpointError,
        build_policy,
        load_policy,
        save_policy,
        shipped_checkpoints,
    )
    from vla_ros.model.config import ModelConfig, default_mobile_config
    from vla_ros.model.vla_policy import VLAPolicy

_LAZY = {
    "CheckpointError": "vla_ros.model.checkpoint",
    "build_policy": "vla_ros.model.checkpoint",
    "load_policy": "vla_ros.model.checkpoint",
    "save_policy": "vla_ros.model.checkpoint",
    "shipped_checkpoints": "vla_ros.model.checkpoint",
    "ModelConfig": "vla_ros.model.config",
    "default_mobile_config": "vla_ros.model.config",
    "VLAPolicy": "vla_ros.model.vla_policy",
}
__all__ = [
    "CheckpointError",
    "ModelConfig",
    "VLAPolicy",
    "build_policy",
    "default_mobile_config",
    "load_policy",
    "save_policy",
    "shipped_checkpoints",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
