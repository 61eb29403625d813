"""The shipped arm policy listens to its command: on one picture, naming another object turns its
first action toward that object."""

import itertools

import mujoco
import numpy as np

from vla_ros.learn.evaluate import PolicyController
from vla_ros.model import load_policy
from vla_ros.sim.world import SimWorld

SEED = 11  # a placement the evaluation never draws (its episode seeds derive from seed 1)


def fingertip_velocity(world, joint_velocities):
    """Where a joint-velocity command moves the fingertip (m/s), from the site's Jacobian."""
    model, data = world.model, world.data
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "fingertip")
    jacobian = np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, jacobian, None, site)
    joints = [
        mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in world.spec.joint_names
    ]
    return jacobian[:, model.jnt_dofadr[joints]] @ joint_velocities


def heading(world, velocity, obj):
    """Cosine between the fingertip's motion and the way to `obj`."""
    way = world.target_point(obj) - world.site_position("fingertip")
    return float(velocity @ way / (np.linalg.norm(velocity) * np.linalg.norm(way) + 1e-12))


def test_swapping_the_command_turns_the_shipped_arm_toward_the_newly_named_object():
    policy = load_policy("arm")
    with SimWorld("arm", seed=SEED) as world:
        controller = PolicyController(policy, world)
        first = {}
        for obj in world.objects:
            world.set_instruction(f"reach the {obj.name.replace('sphere', 'ball')}")
            controller.reset()
            first[obj.name] = fingertip_velocity(world, controller.act(world))
        for old, new in itertools.permutations(world.objects, 2):
            # The command naming `new` heads more toward it than the one naming `old` did.
            assert heading(world, first[new.name], new) > heading(world, first[old.name], new), (
                f"told 'reach the {new.name}' instead of the {old.name}"
            )
