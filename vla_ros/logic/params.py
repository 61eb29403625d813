"""Node parameters described as data: type, description, range, choices; defaults from YAML.

The nodes declare their ROS parameters from these specs (vla_ros.ros.params), and take every
default from the shipped config/vla.yaml, so defaults are written once.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vla_ros import paths

DEFAULTS_FILE = "vla.yaml"
SHARED_SECTION = "/**"


class ParamType(enum.Enum):
    BOOL = "bool"
    INTEGER = "integer"
    DOUBLE = "double"
    STRING = "string"
    STRING_ARRAY = "string_array"


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: ParamType
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    def coerce(self, value: Any) -> Any:
        """`value` as this parameter's Python type (an int is a fine double); ValueError if not."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        accepted = {
            ParamType.BOOL: isinstance(value, bool),
            ParamType.INTEGER: number and isinstance(value, int),
            ParamType.DOUBLE: number,
            ParamType.STRING: isinstance(value, str),
            ParamType.STRING_ARRAY: isinstance(value, (list, tuple))
            and all(isinstance(item, str) for item in value),
        }[self.type]
        if not accepted:
            raise ValueError(f"{self.name} must be a {self.type.value}, got {value!r}")
        if self.type is ParamType.DOUBLE:
            return float(value)
        if self.type is ParamType.STRING_ARRAY:
            return list(value)
        return value

    def check(self, value: Any) -> Any:
        """The coerced value if it is allowed; ValueError with the reason if not."""
        value = self.coerce(value)
        if self.type in (ParamType.INTEGER, ParamType.DOUBLE):
            if not math.isfinite(value):
                raise ValueError(f"{self.name} must be finite, got {value}")
            if self.min_value is not None and value < self.min_value:
                raise ValueError(f"{self.name} must be >= {self.min_value:g}, got {value:g}")
            if self.max_value is not None and value > self.max_value:
                raise ValueError(f"{self.name} must be <= {self.max_value:g}, got {value:g}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {list(self.choices)}, got {value!r}")
        return value


def read_parameter_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """A ROS parameter YAML as {section: {parameter: value}} (`node:` or `/**:` sections)."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a parameter file maps node names to ros__parameters")
    sections: dict[str, dict[str, Any]] = {}
    for section, body in raw.items():
        if not isinstance(body, dict) or not isinstance(body.get("ros__parameters"), dict):
            raise ValueError(f"{path}: section {section!r} has no ros__parameters mapping")
        sections[str(section)] = dict(body["ros__parameters"])
    return sections


def node_parameters(sections: Mapping[str, Mapping[str, Any]], node_name: str) -> dict[str, Any]:
    """The values that apply to `node_name`: the shared `/**` section, then the node's own."""
    values = dict(sections.get(SHARED_SECTION, {}))
    for key in (node_name, f"/{node_name}"):
        values.update(sections.get(key, {}))
    return values


def defaults(node_name: str, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Every spec's default for `node_name`, from the shipped config/vla.yaml, checked."""
    path = paths.config_file(DEFAULTS_FILE)
    values = node_parameters(read_parameter_file(path), node_name)
    missing = [spec.name for spec in specs if spec.name not in values]
    if missing:
        raise ValueError(f"{path}: no default for {node_name} parameters {missing}")
    return {spec.name: spec.check(values[spec.name]) for spec in specs}
