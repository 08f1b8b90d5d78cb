"""Shared by bench scripts: one figure = name, value, unit, target; written to bench/results/<name>.json.

A figure's ``target`` is ``("<", 100)`` or ``(">=", 0.95)`` (or None); ``met``
and ``miss`` (how far off, in the figure's unit) are filled in here, so
bench/run_all.py can report every script alike.
"""

from __future__ import annotations

import json
import os
import platform
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def figure(name, value, unit="", target=None, note=""):
    """One measured figure, with ``met`` / ``miss`` against ``target`` = (op, bound)."""
    out = {"name": name, "value": value, "unit": unit, "target": None, "met": None, "miss": None, "note": note}
    if target is not None:
        op, bound = target
        met = {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[op]
        out.update(target=f"{op} {bound}", met=bool(met), miss=None if met else round(abs(value - bound), 4))
    return out


def machine():
    """CPU, cores, memory and load: what the figures were measured on."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count(),
            "load_average": os.getloadavg()[0]}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return info


def write(name, figures, details=None):
    """Write bench/results/<name>.json and print the figures; returns the path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"name": name, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                   "figures": figures, "details": details or {}}, f, indent=2, default=float)
    for fig in figures:
        status = "" if fig["met"] is None else ("met" if fig["met"] else f"MISSED by {fig['miss']}")
        print(f"  {fig['name']:58s} {fig['value']!s:>12} {fig['unit']:6s} {fig['target'] or '':>10} {status}")
    print(f"wrote {os.path.relpath(path)}")
    return path
