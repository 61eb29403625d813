import io
import json

import torch

from vla_ros.model.benchmark import run_benchmark
from vla_ros.model.speed import native_bfloat16


def test_benchmark_writes_table_json_and_plot(tiny_config, tiny_clip, tmp_path):
    small = tiny_config({"uncertainty.ensemble": 3})
    large = tiny_config(
        {
            "vision.kind": "hf",
            "vision.pretrained": tiny_clip["vision"],
            "uncertainty.ensemble": 1,
            "uncertainty.mc_samples": 4,
        }
    )
    stream = io.StringIO()
    report = run_benchmark(tmp_path, quick=True, stream=stream, small=small, large=large)
    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert (
        saved["timings"].keys()
        == report["timings"].keys()
        >= {
            "default",
            "small_plain",
            "small_mc16",
            "small_mc16_textbook",
            "large_backbone",
            "large_plain",
            "large_mc4",
            "large_mc4_textbook",
            "large_mc4_chunked",
            "large_mc4_int8",
        }
    )
    bfloat16_rows = {"large_backbone_bf16", "large_mc4_bf16", "large_mc4_textbook_bf16"}
    if native_bfloat16(torch.device("cpu")):
        assert bfloat16_rows <= report["timings"].keys()
        assert "large_bf16_steps_per_s" in report["targets_met"]
    else:
        assert not bfloat16_rows & report["timings"].keys()
    for change in report["precision_action_change"].values():
        assert 0 <= change["max_action_change"] < change["tolerance"]
    assert all(t["p99_ms"] >= t["p50_ms"] > 0 for t in report["timings"].values())
    assert set(report["targets_met"]) == set(report["targets"])
    assert (tmp_path / "benchmark.png").stat().st_size > 0
    assert "textbook_over_batched_large" in stream.getvalue()
