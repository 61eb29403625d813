"""`vla-ros bench`: the model family's latency (vla_ros.model.benchmark), then the control graph's:
the safety node's proposal-to-command time and the fusion loop's real rate."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_ros.bench.control import Measurement, fusion_loop, safety_latency

SAFETY_TARGET_MS = 1.0
LOOP_TARGET_HZ = 10.0


def run(args: argparse.Namespace) -> int:
    if args.speech:
        return speech(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.partition:
        return _partition(args.partition, out)
    if args.soak:
        return _soak(args.soak, args.soak_window, out)
    if args.record:
        from vla_ros.bench.record import run_all

        results = run_all(duration=5.0 if args.quick else 20.0)
        (out / "record.json").write_text(json.dumps(results, indent=2))
        print(f"wrote {out / 'record.json'}")
        return 0
    from vla_ros.model.benchmark import run_benchmark

    run_benchmark(out, quick=args.quick)
    print("\ncontrol graph (every node a process, fed by a synthetic robot)", flush=True)
    safety = safety_latency(samples=300 if args.quick else 2000)
    loop = fusion_loop(duration=5.0 if args.quick else 20.0, rate_hz=LOOP_TARGET_HZ)
    node = safety.summary["node_proposal_to_command"]
    dds = safety.summary["round_trip_through_dds"]
    rows = [
        (
            "safety node: proposal in -> command out",
            node["p50_ms"],
            node["p99_ms"],
            f"p99 < {SAFETY_TARGET_MS:g} ms",
            node["p99_ms"] < SAFETY_TARGET_MS,
        ),
        ("probe -> safety node -> probe (2 DDS hops)", dds["p50_ms"], dds["p99_ms"], "", None),
        (
            "fusion step (default model, in the node)",
            loop.summary["fusion_step_p50_ms"],
            loop.summary["fusion_step_p99_ms"],
            "",
            None,
        ),
        (
            "fusion loop period",
            loop.summary["period"]["p50_ms"],
            loop.summary["period"]["p99_ms"],
            f"{loop.summary['achieved_rate_hz']:.2f} Hz >= {0.98 * LOOP_TARGET_HZ:g} Hz",
            loop.summary["achieved_rate_hz"] >= 0.98 * LOOP_TARGET_HZ,
        ),
    ]
    print(f"{'case':<46}{'p50 ms':>9}{'p99 ms':>9}  target")
    for name, p50, p99, target, met in rows:
        verdict = "" if met is None else (" met" if met else " MISSED")
        print(f"{name:<46}{p50:>9.2f}{p99:>9.2f}  {target}{verdict}")
    report = {"safety_latency": safety.summary, "fusion_loop": loop.summary}
    (out / "control.json").write_text(json.dumps(report, indent=2))
    _plot([safety, loop], out / "control.png")
    print(f"wrote {out / 'control.json'} and {out / 'control.png'}")
    return 0


SPEECH_COLUMNS = (
    ("right_target_pct", "right %", ">= 95"),
    ("wrong_target_pct", "wrong %", "<= 1"),
    ("false_stop_pct", "false stop %", "<= 5"),
    ("stop_recall_pct", "stop recall %", ">= 99"),
    ("stop_within_300ms_pct", "stop <= 300 ms %", ">= 99"),
    ("stop_latency_p50_ms", "stop p50 ms", ""),
    ("stop_latency_max_ms", "stop max ms", ""),
    ("command_latency_p50_ms", "command p50 ms", ""),
)


def speech(args: argparse.Namespace) -> int:
    """Spoken commands and stops, per noise level, against the targets of the speech issue."""
    from vla_ros.bench import speech_corpus
    from vla_ros.bench.speech import evaluate

    if not (args.corpus / speech_corpus.MANIFEST).is_file():
        print(f"making the speech corpus in {args.corpus} (espeak-ng, sox)", flush=True)
        speech_corpus.build(args.corpus)
    results = evaluate(args.corpus)
    print(f"\nspeech: {args.corpus} (targets apply at 20 dB SNR)")
    print(
        f"{'noise':<8}{'commands':>9}{'stops':>7}"
        + "".join(f"{h:>18}" for _, h, _ in SPEECH_COLUMNS)
    )
    print(f"{'target':<24}" + "".join(f"{t:>18}" for _, _, t in SPEECH_COLUMNS))
    for level, summary in results.items():
        cells = "".join(f"{summary[key]:>18}" for key, _, _ in SPEECH_COLUMNS)
        print(f"{level:<8}{summary['commands']:>9}{summary['stops']:>7}{cells}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "speech.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path} (with every miss and why)")
    return 0


def _plot(measurements: list[Measurement], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = {k: v for m in measurements for k, v in m.samples_ms.items()}
    figure = plt.figure(figsize=(5 * len(samples), 3.5))
    figure.subplots(1, len(samples))
    for axis, (name, values) in zip(figure.axes, samples.items(), strict=True):
        axis.hist(values, bins=50, color="tab:blue")
        axis.set_title(name)
        axis.set_xlabel("ms")
        axis.set_ylabel("count")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _partition(cuts: int, out: Path) -> int:
    from vla_ros.bench.partition import HostsUnavailable, measure_partitions

    print(f"two hosts, {cuts} cuts of the link between them (node logs in {out / 'partition'})")
    try:
        result = measure_partitions(cuts, log_dir=out / "partition", progress=True)
    except HostsUnavailable as reason:
        print(f"vla-ros bench: cannot make two hosts here: {reason}")
        return 1
    summary = result.summary()
    print(
        f"stop latency after a cut, robot's ROS time: median "
        f"{summary['stop_latency_median_s'] * 1e3:.0f} ms, max "
        f"{summary['stop_latency_max_s'] * 1e3:.0f} ms (bound: watchdog_timeout + one period = "
        f"{summary['bound_s'] * 1e3:.0f} ms); wall clock: median "
        f"{summary['wall_stop_latency_median_s'] * 1e3:.0f} ms, max "
        f"{summary['wall_stop_latency_max_s'] * 1e3:.0f} ms; stayed stopped while cut: "
        f"{summary['stayed_stopped_while_cut']}; moving again after healing: median "
        f"{summary['resume_median_s']:.2f} s"
    )
    (out / "partition.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'partition.json'}")
    return 0


def _soak(duration: float, window: float, out: Path) -> int:
    from vla_ros.bench.soak import soak

    print(f"soak: {duration / 60:g} min of the simulated stack, a report every {window / 60:g} min")
    report = soak(duration, window=window, out=out)
    summary = report.summary()
    growth = ", ".join(f"{k} {v:+.1f} MB" for k, v in summary["rss_growth_mb"].items())
    print(
        f"RSS growth first -> last window: {growth}\n"
        f"loop rate drift {summary['rate_drift_hz']:.2f} Hz, dropped proposals "
        f"{summary['dropped_total']}, worst window period p99 "
        f"{summary['period_p99_ms_worst']:.0f} ms"
    )
    print(f"wrote {out / 'soak.json'}")
    return 0
