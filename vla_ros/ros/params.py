"""Declaring a node's parameters from specs, and refusing invalid run-time changes with a reason."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rcl_interfaces.msg import ParameterType as RosType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from vla_ros.logic.params import ParamSpec, ParamType, defaults

_ROS_TYPES = {
    ParamType.BOOL: RosType.PARAMETER_BOOL,
    ParamType.INTEGER: RosType.PARAMETER_INTEGER,
    ParamType.DOUBLE: RosType.PARAMETER_DOUBLE,
    ParamType.STRING: RosType.PARAMETER_STRING,
    ParamType.STRING_ARRAY: RosType.PARAMETER_STRING_ARRAY,
}


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(
        name=spec.name,
        type=_ROS_TYPES[spec.type],
        description=spec.description,
        read_only=spec.read_only,
    )
    if spec.choices:
        descriptor.additional_constraints = f"one of: {', '.join(spec.choices)}"
    if spec.min_value is None and spec.max_value is None:
        return descriptor
    # A ROS range has both ends; an open end is infinite (doubles) or the int32 limit.
    if spec.type is ParamType.DOUBLE:
        low = -math.inf if spec.min_value is None else spec.min_value
        high = math.inf if spec.max_value is None else spec.max_value
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
        ]
    elif spec.type is ParamType.INTEGER:
        low = -(2**31) if spec.min_value is None else spec.min_value
        high = 2**31 - 1 if spec.max_value is None else spec.max_value
        descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return descriptor


class ParameterSet:
    """A node's parameters: declared with descriptions and ranges, validated as a whole.

    `validate` gets the complete candidate values and raises ValueError to refuse a change; its
    message becomes the reason `ros2 param set` prints. Values given at start-up (YAML,
    --ros-args -p) pass the same checks; a bad one stops the node from starting, with the reason.

    `on_change` applies an accepted change, after the set has succeeded, from the node's executor:
    never inside rclpy's validation callback, where publishing or reconfiguring can fail half-way
    and leave the parameter service without an answer (Humble has no post-set callback, so a
    guard condition carries the change out of the callback). `values` is what has been applied.
    An exception while applying is logged with its reason; it never ends the node.
    """

    def __init__(
        self,
        node: Node,
        specs: Sequence[ParamSpec],
        defaults_section: str,
        validate: Callable[[Mapping[str, Any]], None] | None = None,
        on_change: Callable[[Mapping[str, Any], set[str]], None] | None = None,
    ) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._validate = validate
        self._on_change = on_change
        self._node = node
        initial = defaults(defaults_section, specs)
        for spec in specs:
            self._accept_yaml_types(spec)
            value = initial[spec.name]
            if spec.type is ParamType.STRING_ARRAY and not value:
                # rclpy takes [] for a byte array (and rcl reads `[]` in YAML as no value):
                # declared by its type, the parameter takes string lists and reads as None.
                value = Parameter.Type.STRING_ARRAY
            node.declare_parameter(spec.name, value, _descriptor(spec))
        self.values: dict[str, Any] = {
            name: spec.check(_initial_value(node, spec)) for name, spec in self._specs.items()
        }
        if validate is not None:
            validate(self.values)
        self._accepted = dict(self.values)
        self._pending: set[str] = set()
        self._apply_guard = node.create_guard_condition(self._apply_pending)
        node.add_on_set_parameters_callback(self._on_set)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def _accept_yaml_types(self, spec: ParamSpec) -> None:
        # YAML writes 1 for 1.0 and [] for an empty list; rclpy would refuse the integer for a
        # double parameter, and reads [] as a byte array whatever the declared type. An empty
        # list given for a string array is left out: declared by its type, it is empty anyway
        # (rcl's own YAML parser leaves it out too).
        overrides = getattr(self._node, "_parameter_overrides", {})
        given = overrides.get(spec.name)
        if given is None:
            return
        if spec.type is ParamType.DOUBLE and given.type_ is Parameter.Type.INTEGER:
            overrides[spec.name] = Parameter(spec.name, value=float(given.value))
        empty = given.type_ is Parameter.Type.BYTE_ARRAY and len(given.value) == 0
        if spec.type is ParamType.STRING_ARRAY and empty:
            del overrides[spec.name]

    def _on_set(self, parameters: list[Parameter]) -> SetParametersResult:
        candidate = dict(self._accepted)
        changed = set()
        try:
            for parameter in parameters:
                spec = self._specs.get(parameter.name)
                if spec is None:
                    continue
                candidate[parameter.name] = spec.check(_value(parameter.value, spec))
                changed.add(parameter.name)
            if changed and self._validate is not None:
                self._validate(candidate)
        except ValueError as error:
            self._node.get_logger().warning(f"refused parameter change: {error}")
            return SetParametersResult(successful=False, reason=str(error))
        if changed:
            self._accepted = candidate
            self._pending |= changed
            self._apply_guard.trigger()
        return SetParametersResult(successful=True)

    def _apply_pending(self) -> None:
        changed, self._pending = self._pending, set()
        if not changed:
            return
        self.values = dict(self._accepted)
        if self._on_change is None:
            return
        try:
            self._on_change(self.values, changed)
        except Exception as error:  # a parameter change must never end the node
            self._node.get_logger().error(
                f"applying {sorted(changed)} failed: {type(error).__name__}: {error}"
            )


def _initial_value(node: Node, spec: ParamSpec) -> Any:
    try:
        return _value(node.get_parameter(spec.name).value, spec)
    except ParameterUninitializedException:  # declared by type, nothing given at start-up
        return _value(None, spec)


def _value(value: Any, spec: ParamSpec) -> Any:
    """A parameter's value; an unset string array (declared by type, see above) is empty."""
    if value is None and spec.type is ParamType.STRING_ARRAY:
        return []
    return value
