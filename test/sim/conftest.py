import itertools
import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

# The simulator's ROS tests use domains 150-199; the other suites use lower ones.
_sim_domain_ids = itertools.count()


@pytest.fixture(scope="session")
def small_camera() -> tuple[int, int]:
    """(height, width): enough to see every object, cheap to render."""
    return (60, 80)


@pytest.fixture
def sim_domain_id() -> int:
    return 150 + next(_sim_domain_ids) % 50


@pytest.fixture(scope="module")
def worlds(small_camera):
    """One world per scene (and objects: fixed or compositional) for a whole test module
    (building a renderer costs ~0.1 s)."""
    from vla_ros.sim.scenes import scene_with_objects
    from vla_ros.sim.world import SimWorld

    built = {}

    def get(scene: str, objects: str = "fixed") -> SimWorld:
        if (scene, objects) not in built:
            spec = scene_with_objects(scene, objects)
            built[scene, objects] = SimWorld(spec, camera_size=small_camera, seed=0)
        return built[scene, objects]

    yield get
    for world in built.values():
        world.close()
