import itertools
import os

import pytest

# Discovery stays on this machine; set before any test starts rclpy.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Domain ids 1-120 for these tests; the simulator's own tests use 150-199.
_domain_ids = itertools.count()


@pytest.fixture
def domain_id() -> int:
    return 1 + next(_domain_ids) % 120


@pytest.fixture
def ros(domain_id):
    """A real rclpy graph in its own DDS domain, with a probe node for the test's own I/O."""
    from ros_harness import RosGraph

    graph = RosGraph(domain_id)
    yield graph
    graph.close()


@pytest.fixture(scope="session")
def nan_checkpoint(tmp_path_factory):
    """The shipped checkpoint with every weight NaN: a model that outputs NaN."""
    import torch

    from vla_ros.model import load_policy, save_policy

    policy = load_policy("")
    with torch.no_grad():
        for parameter in policy.model.parameters():
            parameter.fill_(float("nan"))
    return save_policy(policy, tmp_path_factory.mktemp("nan") / "checkpoint")
