"""`vla-ros run`: every node but the simulator, as processes, until Ctrl-C, SIGTERM or SIGHUP."""

from __future__ import annotations

import argparse
import time

from vla_ros import graph
from vla_ros.ros.launcher import NodeProcesses, handle_stop_signals


def run(args: argparse.Namespace) -> int:
    files = [graph.scene_config(args.robot), *args.params_file]
    parameters = {spec.executable: {"use_sim_time": True} for spec in graph.CONTROL_NODES}
    started = [spec for spec in graph.CONTROL_NODES if spec.executable not in args.skip]
    nodes = NodeProcesses(
        started,
        files,
        parameters=parameters if args.use_sim_time else None,
        log_level=args.log_level,
        namespace=args.namespace or "",
    )
    where = f" in namespace {args.namespace}" if args.namespace else ""
    print(
        f"vla-ros run: starting {', '.join(s.executable for s in nodes.specs)}{where} with "
        f"{', '.join(str(f) for f in files)}; Ctrl-C stops them",
        flush=True,
    )
    status = 0
    with handle_stop_signals(), nodes:
        try:
            while not (exited := nodes.exited()):
                time.sleep(0.5)
            print(f"vla-ros run: node(s) ended: {exited}; stopping the others", flush=True)
            status = 1
        except KeyboardInterrupt as stop:
            print(f"vla-ros run: {stop.args[0] if stop.args else 'SIGINT'}: stopping", flush=True)
    return status
