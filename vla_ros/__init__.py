"""vla_ros: Vision-Language-Action control for ROS 2 with an uncertainty-aware safety layer."""

__version__ = "0.1.0"
