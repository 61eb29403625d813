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
    """One world per scene for a whole test module (building a renderer costs ~0.1 s)."""
    from vla_ros.sim.world import SimWorld

    built = {}

    def get(scene: str) -> SimWorld:
        if scene not in built:
            built[scene] = SimWorld(scene, camera_size=small_camera, seed=0)
        return built[scene]

    yield get
    for world in built.values():
        world.close()
