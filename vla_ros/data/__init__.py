"""Demonstration data outside the simulator: rosbag2 recordings, LeRobot datasets, conversions.

Everything here is ROS-free (rosbags reads and writes bags without a ROS install), so it runs and
is tested anywhere; `vla-ros record` is the only part that needs rclpy. docs/data.md describes
the formats.
"""
