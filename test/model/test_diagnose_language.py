"""The language-zeroing probe of `vla-ros eval --diagnose`."""

import dataclasses

import numpy as np

from vla_ros.learn.diagnose import zeroed_language
from vla_ros.model.checkpoint import build_policy


def test_zeroed_language_makes_every_command_look_alike_and_is_undone(
    tiny_config, text_encoder, observation
):
    policy = build_policy(tiny_config(), text=text_encoder, seed=1)
    other = dataclasses.replace(observation, instruction="touch the blue ball")

    def first_actions():
        actions = []
        for seen in (observation, other):
            policy.reset()
            actions.append(policy.select_action(seen).action)
        return actions

    red, blue = first_actions()
    assert not np.allclose(red, blue)  # the untrained network still reads its command
    with zeroed_language(policy):
        silent_red, silent_blue = first_actions()
    np.testing.assert_array_equal(silent_red, silent_blue)
    np.testing.assert_array_equal(first_actions()[0], red)
