"""Inference precision: bf16 autocast where the hardware runs it fast, fp32 elsewhere.

On CPUs bf16 only pays where ``/proc/cpuinfo`` lists ``avx512_bf16`` (or
``amx_bf16``): measured 1.7x faster than fp32 for the SigLIP-B image tower
on such a CPU, and 6-7x slower on one without. ``"auto"`` picks bf16 there
(and on a GPU), fp32 elsewhere, and says why.

Example::

    from person_finder.core.models.precision import resolve_precision, autocast
    precision, why = resolve_precision("auto", "cpu")   # ("bf16", "CPU has avx512_bf16: bf16 autocast")
    with autocast(precision, "cpu"):
        vectors = matcher.embed_images(crops)
"""

from __future__ import annotations

import contextlib
import logging

from .. import defaults

logger = logging.getLogger(__name__)

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo="/proc/cpuinfo"):
    """The bf16 instruction flags this CPU lists (empty where none, or no /proc/cpuinfo)."""
    try:
        with open(cpuinfo) as f:
            flags = set(f.read().split())
    except OSError:
        return []
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def resolve_precision(precision=defaults.LIVE_PRECISION, device="cpu", cpuinfo="/proc/cpuinfo"):
    """``(precision, reason)``: "bf16" or "fp32" for ``device``, and a sentence saying why.

    Raises ``ValueError`` for a precision not in ``LIVE_PRECISIONS``. A
    request for bf16 on a CPU without bf16 instructions runs fp32 (bf16 is
    emulated there, several times slower) and the reason says so.
    """
    if precision not in defaults.LIVE_PRECISIONS:
        raise ValueError(f"precision must be one of {list(defaults.LIVE_PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return "fp32", "fp32 as asked"
    if not str(device).startswith("cpu"):
        return "bf16", f"bf16 autocast on {device}"
    flags = cpu_bf16_flags(cpuinfo)
    if flags:
        return "bf16", f"CPU has {flags[0]}: bf16 autocast"
    reason = ("fp32: this CPU lists no avx512_bf16 / amx_bf16 in /proc/cpuinfo, where bf16 is emulated and "
              "several times slower than fp32")
    if precision == "bf16":
        logger.warning("bf16 asked for, running %s", reason)
    return "fp32", reason


def autocast(precision, device="cpu"):
    """A context running torch ops in ``precision`` ("bf16": autocast; "fp32": nothing changes)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type="cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16)
