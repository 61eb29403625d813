import threading

from polling import wait_until

from vla_ros.logic.clock import ClockWatch, jump_message
from vla_ros.logic.health import FaultLog, fault_key
from vla_ros.logic.worker import BackgroundLoader


class ManualClock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


def test_a_backward_jump_is_reported_once_with_both_times():
    clock, jumps = ManualClock(), []
    watch = ClockWatch(clock, lambda before, after: jumps.append((before, after)))
    assert watch.now() == 100.0
    clock.now = 100.5
    watch.now()
    clock.now = 70.0
    assert watch.now() == 70.0
    watch.now()
    clock.now = 70.1
    watch.now()
    assert jumps == [(100.5, 70.0)]


def test_forward_jumps_and_jitter_within_the_tolerance_are_not_jumps():
    clock, jumps = ManualClock(), []
    watch = ClockWatch(clock, lambda *jump: jumps.append(jump), tolerance=0.05)
    watch.now()
    clock.now = 1000.0  # forward: inputs simply look old, staleness handles it
    watch.now()
    clock.now = 999.97  # a reading from another thread, out of order
    watch.now()
    assert jumps == []


def test_a_jump_message_says_how_far_and_what_follows():
    message = jump_message(100.0, 70.0)
    assert "30.00 s" in message and "stopped" in message


def test_a_fault_whose_numbers_change_is_one_fault():
    faults = FaultLog()
    assert faults.record("picture is 0.31 s old (max 0.3 s)")
    assert not faults.record("picture is 0.41 s old (max 0.3 s)")
    assert not faults.record("picture is 12.5 s old (max 0.3 s)")
    assert faults.record("joint state is 0.5 s old (max 0.3 s)")
    assert faults.total == 4


def test_fault_keys_keep_names_and_mask_measurements():
    assert fault_key("joint 'joint_2' position is not finite (nan)") == (
        "joint 'joint_2' position is not finite (nan)"
    )
    assert fault_key("stamped -27.06 s in the future, 1e-3") == "stamped -# s in the future, #"


def test_background_loader_hands_over_only_the_newest_success():
    release = threading.Event()
    failures = []

    def load(args):
        if args["name"] == "slow":
            release.wait(5.0)
        if args["name"] == "broken":
            raise ValueError("no such checkpoint")
        return args["name"].upper()

    loader = BackgroundLoader(load, lambda args, error: failures.append((args, str(error))))
    loader.request({"name": "slow"})
    loader.request({"name": "skipped"})
    loader.request({"name": "broken"})  # replaces "skipped" while "slow" loads
    assert loader.take() is None  # nothing finished: the old one keeps serving
    release.set()
    assert wait_until(lambda: not loader.busy)
    assert failures == [({"name": "broken"}, "no such checkpoint")]
    assert loader.take() == ({"name": "slow"}, "SLOW")
    assert loader.take() is None  # handed over once
