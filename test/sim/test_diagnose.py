"""`vla-ros eval --diagnose`: where a controller heads in the first second, command named or
swapped, on the same pictures."""

import numpy as np

from vla_ros.learn.diagnose import Condition, command_following
from vla_ros.model.policy import ActionProposal, Policy
from vla_ros.sim.scenes import scene_spec


class Blind(Policy):
    """Swings the arm the same way whatever it is told (and knows nothing of the gripper)."""

    action_names = joint_names = scene_spec("arm").action_names[:6]

    def select_action(self, observation):
        return ActionProposal(np.array([0.6, 0.3, 0, 0, 0, 0], np.float32), 0.0)

    def reset(self):
        pass


def test_the_expert_follows_every_command_and_a_blind_policy_none(small_camera):
    expert = command_following("arm", 3, None, camera_size=small_camera, progress=False)
    assert expert.rate(Condition.NAMED) == expert.rate(Condition.SWAPPED) == 1.0
    assert expert.rate(Condition.ZEROED) is None  # the expert has no language input to zero
    assert expert.first_action_change > 0.1

    blind = command_following("arm", 3, Blind(), camera_size=small_camera, progress=False)
    named, swapped = blind.rollouts[Condition.NAMED], blind.rollouts[Condition.SWAPPED]
    assert [r.headed_for for r in named] == [r.headed_for for r in swapped]
    assert [r.named for r in named] != [r.named for r in swapped]  # same pictures, other objects
    assert blind.first_action_change == 0.0
