# ruff: noqa: E501  (the mutants read best one to a line)
"""Hand-made faults in the safety path, and whether the tests notice each (a mutation check).

    .venv/bin/python tools/mutate_logic.py [--tests test/logic]

Each mutant changes one line of a copy of the package; the tests run against the copy; a mutant
the tests pass is a survivor: a way the code can be wrong that nothing checks. Report the count
in the issue note; give every survivor in the safety path a test.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (file, original text, mutated text, what the fault means)
MUTANTS = [
    ("logic/safety.py", "uncertainty >= stop:", "uncertainty > stop:", "stop only above the threshold"),
    ("logic/safety.py", "if uncertainty <= slowdown:", "if uncertainty < slowdown:", "slow at the slowdown threshold"),
    ("logic/safety.py", "return (stop - uncertainty) / (stop - slowdown)", "return (uncertainty - slowdown) / (stop - slowdown)", "scale rises in the band"),
    ("logic/safety.py", "if not math.isfinite(uncertainty) or", "if", "NaN uncertainty not a stop"),
    ("logic/safety.py", "return velocity * float(ratios.min())", "return velocity * float(ratios.max())", "clamp by the loosest limit"),
    ("logic/safety.py", "over = magnitude > limits", "over = magnitude > 2 * limits", "clamp lets twice the limit through"),
    ("logic/safety.py", "window = min(max(dt, 0.0), ACCEL_WINDOW_S)", "window = max(dt, 0.0)", "long gaps allow big jumps"),
    ("logic/safety.py", "speed_up = accel_limits * window", "speed_up = 2 * accel_limits * window", "twice the acceleration"),
    ("logic/safety.py", "fraction = float(np.min(", "fraction = float(np.max(", "the loosest channel sets the pace"),
    ("logic/safety.py", "toward_zero = np.where(braked > 0, direction * braked, -direction * speed_up)", "toward_zero = np.where(braked > 0, direction * braked, -direction * np.inf)", "reversals unlimited"),
    ("logic/safety.py", "if abs(age) > self.config.watchdog_timeout:", "if age > self.config.watchdog_timeout:", "proposals from the future accepted"),
    ("logic/safety.py", "proposal.stamp <= self.last_proposal_stamp", "proposal.stamp < self.last_proposal_stamp", "repeated stamps accepted"),
    ("logic/safety.py", "        if self.stop_reason is not None:\n            return self.stop(now, Level.WARN, f\"stopped: {self.stop_reason}\")\n        if proposal.is_hold:", "        if proposal.is_hold:", "stop latch ignored by proposals"),
    ("logic/safety.py", "if proposal.is_hold:\n            return self.stop(", "if False:\n            return self.stop(", "holds do not stop"),
    ("logic/safety.py", "        if scale == 0.0:", "        if scale < 0.0:", "scale 0 not a stop"),
    ("logic/safety.py", "if silent > self.config.watchdog_timeout:", "if silent > 2 * self.config.watchdog_timeout:", "watchdog twice as slow"),
    ("logic/safety.py", "        self.last_proposal_time = None\n        self.last_proposal_stamp = None\n        self.waiting_reason", "        self.waiting_reason", "clock jump forgets nothing"),
    ("logic/safety.py", "if self.held is None and measured is not None:", "if measured is not None:", "trajectory hold follows a sagging arm"),
    ("logic/safety.py", "    if not np.all(np.isfinite(proposal.velocities)):", "    if False:", "NaN velocities mapped"),
    ("logic/safety.py", "if self.uncertainty_slowdown >= self.uncertainty_stop:", "if self.uncertainty_slowdown > self.uncertainty_stop:", "equal thresholds accepted"),
    ("logic/safety.py", "if not (math.isfinite(value) and value >= 0):", "if not math.isfinite(value):", "negative limits accepted"),
    ("logic/joints.py", "            if not math.isfinite(position):", "            if False:", "NaN positions accepted"),
    ("logic/joints.py", "        if len(set(names)) != len(names):", "        if False:", "duplicate joints accepted"),
    ("logic/commands.py", "    if _STOP_PATTERN.search(text):", "    if _STOP_PATTERN.fullmatch(text):", "a stop word in a sentence ignored"),
    ("logic/freshness.py", "    if age > max_age:", "    if age > 2 * max_age:", "stale input accepted"),
    ("logic/freshness.py", "    if age < -max_age:", "    if False:", "input from the future accepted"),
    ("logic/clock.py", "jumped = before is not None and now < before - self._tolerance", "jumped = False", "clock jumps unnoticed"),
    ("logic/images.py", "    if size != step * height:", "    if size < step * height:", "oversized image data accepted"),
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", nargs="+", default=["test/logic"], help="what to run per mutant")
    args = parser.parse_args()
    survivors = []
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch)
        shutil.copytree(REPO / "vla_ros", copy / "vla_ros")
        shutil.copytree(REPO / "test", copy / "test")
        shutil.copytree(REPO / "config", copy / "config")
        shutil.copy(REPO / "pyproject.toml", copy)
        for index, (path, original, mutated, meaning) in enumerate(MUTANTS, 1):
            target = copy / "vla_ros" / path
            source = (REPO / "vla_ros" / path).read_text()
            if source.count(original) != 1:
                print(f"{index:2d} {path}: the original text is not there once: {original!r}")
                return 2
            target.write_text(source.replace(original, mutated))
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *args.tests],
                cwd=copy,
                capture_output=True,
                text=True,
            )
            target.write_text(source)
            caught = result.returncode != 0
            print(
                f"{index:2d} {'caught  ' if caught else 'SURVIVED'} {path}: {meaning}", flush=True
            )
            if not caught:
                survivors.append(meaning)
    print(
        f"{len(MUTANTS) - len(survivors)} of {len(MUTANTS)} mutants caught; survivors: {survivors}"
    )
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
