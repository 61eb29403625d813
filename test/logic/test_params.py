import math

import pytest

from vla_ros.logic.params import (
    ParamSpec,
    ParamType,
    defaults,
    node_parameters,
    read_parameter_file,
)

SPEED = ParamSpec("speed", ParamType.DOUBLE, "m/s", 0.0, 2.0)


def test_an_integer_is_a_fine_double():
    assert SPEED.check(1) == 1.0
    assert isinstance(SPEED.check(1), float)


@pytest.mark.parametrize("value", [-0.1, 2.5, math.nan, "fast", True])
def test_out_of_range_or_mistyped_values_are_refused(value):
    with pytest.raises(ValueError, match="speed"):
        SPEED.check(value)


def test_choices_are_enforced():
    mode = ParamSpec("mode", ParamType.STRING, "", choices=("a", "b"))
    assert mode.check("a") == "a"
    with pytest.raises(ValueError, match="one of"):
        mode.check("c")


def test_string_arrays():
    names = ParamSpec("names", ParamType.STRING_ARRAY, "")
    assert names.check(("a", "b")) == ["a", "b"]
    with pytest.raises(ValueError):
        names.check(["a", 1])


def test_parameter_file_sections_merge_shared_then_node(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    shared: 1\n    speed: 0.1\n"
        "my_node:\n  ros__parameters:\n    speed: 0.5\n"
    )
    values = node_parameters(read_parameter_file(path), "my_node")
    assert values == {"shared": 1, "speed": 0.5}
    assert node_parameters(read_parameter_file(path), "other") == {"shared": 1, "speed": 0.1}


def test_malformed_parameter_file_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("my_node:\n  speed: 1\n")
    with pytest.raises(ValueError, match="ros__parameters"):
        read_parameter_file(path)


def test_every_node_parameter_has_a_valid_default_in_the_shipped_config():
    from vla_ros.nodes import (
        camera_node,
        fusion_node,
        joint_state_node,
        safety_node,
        voice_command_node,
    )

    for module in (camera_node, voice_command_node, joint_state_node, fusion_node, safety_node):
        values = defaults(module.NAME, module.PARAMS)
        assert set(values) == {spec.name for spec in module.PARAMS}


def test_a_missing_default_is_reported():
    with pytest.raises(ValueError, match="no default"):
        defaults("safety_node", [ParamSpec("not_there", ParamType.BOOL, "")])
