"""Checkpoints: `config.json` (the `ModelConfig`: format version, normalisation statistics,
calibration, training instructions) beside `model.safetensors` (the weights). Never a pickle.

`load_policy` accepts a local folder, the name of a checkpoint shipped in the package
(`vla_ros/checkpoints/<name>/`, "" = `mobile`), or a hub id (downloaded with `snapshot_download`
unless HF_HUB_OFFLINE is set). Every way a checkpoint can be wrong raises `CheckpointError` naming
the file and what to do.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from vla_ros.model.config import CONFIG_FILE, FORMAT_VERSION, ModelConfig, VisionKind
from vla_ros.model.encoders import (
    TextEncoder,
    VisionBackbone,
    image_processor_stats,
    load_vision_backbone,
    resolve_source,
)
from vla_ros.model.network import VLAModel, make_members
from vla_ros.model.vla_policy import VLAPolicy
from vla_ros.paths import package_data_dir

WEIGHTS_FILE = "model.safetensors"
DEFAULT_CHECKPOINT = "mobile"
BACKBONE_PREFIX = "backbone."


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file and what to do."""


def shipped_checkpoints() -> list[str]:
    root = package_data_dir("checkpoints")
    return (
        sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())
        if root.is_dir()
        else []
    )


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(
            "device 'cuda' was asked for but torch sees no CUDA device; use cpu or auto"
        )
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise CheckpointError(f"unknown device {device!r}: use cpu, cuda or auto")
    return device


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


def hub_id_problem(name: str) -> str | None:
    """Why `name` cannot be a hub id, or None if it is a well-formed one.

    `runs/mobil` has the form owner/name, but where `runs/` is a local folder it is a mistyped
    path: taken as a hub id it would only fail later, at download.
    """
    if not _HUB_ID.fullmatch(name) or "--" in name or ".." in name:
        return "not a hub id of the form owner/name"
    owner = name.split("/")[0]
    if Path(owner).is_dir():
        return f"{owner}/ is a local folder, so this is a path, not a hub id"
    return None


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """A folder holding config.json: local, shipped by name, or downloaded from the hub."""
    name = str(checkpoint) or DEFAULT_CHECKPOINT
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    shipped = package_data_dir("checkpoints", name)
    if (shipped / CONFIG_FILE).is_file():
        return shipped
    problem = "it is not a folder" if local.exists() else hub_id_problem(name)
    if problem:
        raise CheckpointError(
            f"no checkpoint folder {name!r} ({problem}); give a folder with {CONFIG_FILE} and "
            f"{WEIGHTS_FILE}, a hub id (owner/name) or a shipped name: "
            f"{', '.join(shipped_checkpoints())}"
        )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise CheckpointError(
            f"{name!r} is not a local folder and HF_HUB_OFFLINE is set: download it on a machine "
            "with internet access and pass the folder"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=[CONFIG_FILE, WEIGHTS_FILE]))
    except Exception as error:  # network, auth, missing repo: all end the same way for the user
        raise CheckpointError(
            f"cannot download checkpoint {name!r} from the hub ({type(error).__name__}: {error}); "
            "check the id and the network, or pass a local folder"
        ) from error


def read_config(folder: Path) -> ModelConfig:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing: {folder} is not a vla_ros checkpoint "
            f"({CONFIG_FILE} + {WEIGHTS_FILE})"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{path} is not valid JSON ({error}): re-save or re-train the model"
        ) from None
    if isinstance(data, dict) and data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {data.get('format_version')!r}; this vla_ros reads "
            f"{FORMAT_VERSION}: re-train the model, or load it with the vla_ros version that "
            "wrote it"
        )
    try:
        return ModelConfig.from_dict(data)
    except (ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: {error}; fix the file or re-train") from None


def build_policy(
    config: ModelConfig,
    device: str = "cpu",
    seed: int = 0,
    mc_samples: int | None = None,
    text: TextEncoder | None = None,
    base: Path | None = None,
) -> VLAPolicy:
    """A policy with freshly initialised members (and the backbone as configured)."""
    device = resolve_device(device)
    text = text or TextEncoder(config.text, base, device)
    config, backbone = _vision(config, base)
    members = make_members(config, text.width, backbone, seed)
    reference = _reference(config, text)
    model = VLAModel(config, members, backbone, reference)
    return VLAPolicy(config, model, text, device, mc_samples, base)


def save_policy(policy: VLAPolicy, folder: str | Path) -> Path:
    """Write config.json and model.safetensors; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in policy.model.state_dict().items()
        if _embedded(policy.config) or not name.startswith(BACKBONE_PREFIX)
    }
    save_file(state, folder / WEIGHTS_FILE, metadata={"format": "pt", "vla_ros": "1"})
    policy.config.save(folder)
    return folder


def load_policy(
    checkpoint: str | Path = "",
    device: str = "cpu",
    mc_samples: int | None = None,
    precision: str = "float32",
    compile: bool = False,
    threads: int | None = None,
) -> VLAPolicy:
    """The policy in `checkpoint` (folder, shipped name, hub id; "" = the shipped default).

    device: cpu, cuda or auto (CUDA when present). mc_samples overrides the MC sample count of
    models that use MC dropout (ignored by the others). precision: what a transformers backbone
    runs in, float32, bfloat16 or int8 (`speed.set_backbone_precision`); compile: torch.compile
    the network; threads: torch's intra-op threads, by default one per core this process may use
    (see speed.py).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vla_ros.model.speed import compile_model, configure_threads, set_backbone_precision

    configure_threads(threads)
    folder = resolve_checkpoint(checkpoint)
    config = read_config(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(
            f"{weights_path} is missing: copy it beside {CONFIG_FILE} or re-train"
        )
    try:
        weights = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{weights_path} is corrupt or truncated ({error}): download or save it again"
        ) from None
    try:
        policy = build_policy(config, device, mc_samples=mc_samples, base=folder)
    except (OSError, ValueError) as error:  # e.g. the text encoder or backbone cannot be found
        raise CheckpointError(f"{folder / CONFIG_FILE}: cannot build the model: {error}") from error
    _load_weights(policy.model, weights, weights_path, _embedded(config))
    set_backbone_precision(policy, precision)
    if compile:
        compile_model(policy)
    return policy


def _load_weights(model: VLAModel, weights: dict, path: Path, embedded: bool) -> None:
    expected = {
        name: tensor
        for name, tensor in model.state_dict().items()
        if embedded or not name.startswith(BACKBONE_PREFIX)
    }
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [
        f"{name} {tuple(weights[name].shape)} (expected {tuple(tensor.shape)})"
        for name, tensor in expected.items()
        if name in weights and weights[name].shape != tensor.shape
    ]
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            problems.append(f"{label}: {', '.join(names[:5])}{more}")
    if problems:
        raise CheckpointError(
            f"{path} does not match {path.parent / CONFIG_FILE} ({'; '.join(problems)}): "
            "the two files come from different models; save them together again"
        )
    model.load_state_dict(weights, strict=False)


def _embedded(config: ModelConfig) -> bool:
    """Whether the backbone's weights live in the checkpoint (random init or fine-tuned)."""
    return config.vision.kind is VisionKind.HF and (
        config.vision.hf_config is not None or config.vision.finetune
    )


def _vision(config: ModelConfig, base: Path | None) -> tuple[ModelConfig, VisionBackbone | None]:
    """Load the backbone (if any) and write into the config what it resolved: the pixel
    statistics it was trained with, and its architecture when its weights will be embedded."""
    if config.vision.kind is not VisionKind.HF:
        return config, None
    backbone, hf_config = load_vision_backbone(config.vision, config.image_size, base)
    overrides: dict[str, object] = {}
    if config.vision.mean is None or config.vision.std is None:
        stats = None
        if config.vision.pretrained is not None:
            stats = image_processor_stats(resolve_source(config.vision.pretrained, base))
        mean, std = stats or ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        overrides.update({"vision.mean": list(mean), "vision.std": list(std)})
    if config.vision.finetune and config.vision.hf_config is None:
        overrides["vision.hf_config"] = hf_config
    return (config.with_overrides(overrides) if overrides else config), backbone


def _reference(config: ModelConfig, text: TextEncoder) -> torch.Tensor:
    if not config.training_instructions:
        return torch.zeros(0, text.width)
    return text.encode(list(config.training_instructions)).pooled.cpu()
