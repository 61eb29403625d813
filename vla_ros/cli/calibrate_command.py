"""`vla-ros calibrate`: fit the error model and re-measure the conformal quantiles of a trained
checkpoint on recorded episodes."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from vla_ros.learn.calibration import recalibrate

    out = recalibrate(args.checkpoint, args.data, args.out, args.error_model, args.seed)
    print(f"vla-ros calibrate: wrote {out}; try it with vla-ros sim --checkpoint {out}")
    return 0
