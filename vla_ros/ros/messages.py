"""Conversions between ROS messages and the plain values the logic modules work on."""

from __future__ import annotations

import struct

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from vla_ros.logic.safety import Proposal


def seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(t: float) -> Time:
    nanoseconds = round(t * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def rgb_image(pixels: np.ndarray, header: Header) -> Image:
    height, width = pixels.shape[:2]
    return Image(
        header=header,
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(),
    )


def empty_image(header: Header) -> Image:
    """No usable picture as of this stamp (see docs/architecture.md)."""
    return Image(header=header, encoding="rgb8")


def image_pixels(msg: Image) -> np.ndarray:
    """The pixels of an rgb8 Image that this package published itself."""
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def proposal_message(proposal: Proposal, header: Header) -> JointState:
    values = [float(v) for v in proposal.velocities]
    return JointState(
        header=header,
        name=list(proposal.names),
        velocity=values,
        effort=[float(proposal.uncertainty)] * len(values),
    )


def proposal_from_message(msg: JointState) -> Proposal:
    """The proposal a JointState carries; a hold when it names no channels.

    Arrays of the wrong length are passed on as they are: the safety logic refuses them.
    """
    uncertainty = float(msg.effort[0]) if len(msg.effort) else float("inf")
    if len(msg.effort) and any(u != uncertainty for u in msg.effort):
        uncertainty = float("nan")
    return Proposal(
        stamp=seconds(msg.header.stamp),
        names=tuple(msg.name),
        velocities=np.asarray(msg.velocity, dtype=np.float64),
        uncertainty=uncertainty,
    )


def cdr_string_bytes(raw: bytes) -> bytes:
    """The undecoded text of a serialized std_msgs/String (so invalid UTF-8 can be refused).

    Layout: a 4-byte encapsulation header (byte 1 odd = little endian), a uint32 length that
    counts the closing NUL, then the bytes. ValueError if the buffer does not hold that.
    """
    if len(raw) < 8:
        raise ValueError(f"serialized string of {len(raw)} bytes is too short")
    order = "<" if raw[1] & 1 else ">"
    (length,) = struct.unpack_from(order + "I", raw, 4)
    if length == 0 or 8 + length > len(raw):
        raise ValueError(f"serialized string declares {length} bytes, buffer has {len(raw) - 8}")
    return bytes(raw[8 : 8 + length - 1])
