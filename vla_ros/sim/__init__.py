"""The embedded MuJoCo simulator, ROS-free: scenes, tasks, scripted experts, recording.

Rendering is headless only. MUJOCO_GL must be chosen before mujoco first loads, so it is set here
(EGL, unless the user chose otherwise) before any module of this package imports mujoco.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
