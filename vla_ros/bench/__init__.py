"""Benchmarks of the control graph (the model's own are in vla_ros.model.benchmark)."""
