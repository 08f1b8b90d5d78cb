"""Run every benchmark under bench/ and write one report: bench/REPORT.md and bench/report.json.

Each ``bench/<name>.py`` (files starting with ``_`` and this one excepted)
runs in a process of its own, one after another (they measure speed, so
never in parallel), and writes ``bench/results/<name>.json``. The report
lists the machine, the library versions and every figure with its target:
met, or missed by how much. Scripts that write ``figures`` (see
bench/_report.py) are reported figure by figure; for others, every number
in their JSON is listed and any ``targets_met`` they record.

    .venv/bin/python bench/run_all.py                    # run all, write the report
    .venv/bin/python bench/run_all.py --only gallery onnx_runtime
    .venv/bin/python bench/run_all.py --report-only      # rebuild the report from bench/results/
    .venv/bin/python bench/run_all.py --report-only --readme   # and README's performance table
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402

HERE = _report.HERE
REPO = os.path.dirname(HERE)
PACKAGES = ("fiftyone", "fiftyone-brain", "torch", "transformers", "ultralytics", "lancedb", "onnxruntime",
            "google-genai", "accelerate", "peft", "numpy", "scikit-learn")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false",
               "FIFTYONE_DO_NOT_TRACK": "true", "TOKENIZERS_PARALLELISM": "false"}
README_SECTION = "performance"


def scripts():
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(HERE, "*.py"))
                  if not os.path.basename(p).startswith("_") and os.path.basename(p) != "run_all.py")


def run(names, timeout):
    """Run each script; returns {name: {"seconds", "returncode", "tail"}}."""
    runs = {}
    env = {**OFFLINE_ENV, **os.environ}
    for name in names:
        print(f"=== bench/{name}.py", flush=True)
        t = time.time()
        try:
            proc = subprocess.run([sys.executable, os.path.join(HERE, f"{name}.py")], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=timeout)
            code, tail = proc.returncode, (proc.stdout + proc.stderr)[-1500:]
        except subprocess.TimeoutExpired as e:
            code, tail = "timeout", f"stopped after {timeout}s\n{(e.stdout or b'')[-1000:]!r}"
        runs[name] = {"seconds": round(time.time() - t, 1), "returncode": code, "tail": tail}
        print(f"    {'ok' if code == 0 else 'FAILED (' + str(code) + ')'} in {runs[name]['seconds']}s", flush=True)
    return runs


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, (int, float)):
        yield prefix, value


def figures_of(result):
    """A results JSON as report figures (its own ``figures`` when it has them)."""
    if isinstance(result.get("figures"), list):
        return result["figures"]
    met = result.get("targets_met")
    out = [_report.figure(name, value) for name, value in _flatten({k: v for k, v in result.items()
                                                                     if k != "targets_met"})]
    if isinstance(met, dict):
        out += [{"name": f"target: {k}", "value": "", "unit": "", "target": "see script", "met": bool(v),
                 "miss": None, "note": ""} for k, v in met.items()]
    elif isinstance(met, bool):
        out.append({"name": "targets met", "value": "", "unit": "", "target": "see script", "met": met, "miss": None,
                    "note": ""})
    return out


def versions():
    out = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def build_report(names, runs=None):
    runs = runs or {}
    sections = {}
    for name in names:
        path = os.path.join(_report.RESULTS, f"{name}.json")
        if not os.path.exists(path):
            sections[name] = {"missing": True, "run": runs.get(name), "figures": []}
            continue
        with open(path) as f:
            result = json.load(f)
        sections[name] = {"measured_at": result.get("measured_at", time.ctime(os.path.getmtime(path))),
                          "run": runs.get(name), "figures": figures_of(result)}
    report = {"generated_at": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": _report.machine(),
              "versions": versions(), "benchmarks": sections}
    with open(os.path.join(HERE, "report.json"), "w") as f:
        json.dump(report, f, indent=2, default=str)
    with open(os.path.join(HERE, "REPORT.md"), "w") as f:
        f.write(markdown(report))
    print("wrote bench/REPORT.md and bench/report.json")
    return report


def _cell(value):
    return str(value).replace("|", "\\|")


def _status(fig):
    if fig.get("met") is None:
        return ""
    return "met" if fig["met"] else (f"missed by {fig['miss']}" if fig.get("miss") is not None else "missed")


def targets_table(report):
    """Markdown table of the figures that have a target (the README's performance table)."""
    rows = ["| benchmark | figure | value | target | status |", "| --- | --- | --- | --- | --- |"]
    for name, section in report["benchmarks"].items():
        for fig in section["figures"]:
            if fig.get("target"):
                rows.append(f"| {name} | {_cell(fig['name'])} | {fig['value']} {fig.get('unit', '')} | "
                            f"{fig['target']} | {_status(fig)} |")
    return "\n".join(rows)


def markdown(report):
    m, v = report["machine"], report["versions"]
    lines = ["# Person Finder benchmark report", "", f"Generated {report['generated_at']} by `bench/run_all.py`.", "",
             f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores, {m.get('memory_gib', '?')} GiB, "
             f"load average {m.get('load_average', 0):.1f} at report time; {m.get('platform')}.", "",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), "", "## Targets", "",
             targets_table(report), ""]
    for name, section in report["benchmarks"].items():
        lines += [f"## {name}", ""]
        run = section.get("run") or {}
        if section.get("missing"):
            lines += [f"No results (bench/results/{name}.json missing)."
                      + (f" Run: exit {run.get('returncode')}.\n\n```\n{run.get('tail', '')}\n```" if run else ""), ""]
            continue
        lines += [f"Measured {section['measured_at']}" + (f", ran {run['seconds']} s (exit {run['returncode']})"
                                                           if run else "") + ".", "",
                  "| figure | value | target | status | note |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {_cell(f['name'])} | {f['value']} {f.get('unit', '')} | {f.get('target') or ''} | "
                  f"{_status(f)} | {_cell(f.get('note', ''))} |" for f in section["figures"]]
        lines.append("")
    return "\n".join(lines)


def update_readme(report):
    """Replace the README's performance section with the targets table."""
    path = os.path.join(REPO, "README.md")
    with open(path) as f:
        text = f.read()
    start, end = f"<!-- section:{README_SECTION} -->", f"<!-- /section:{README_SECTION} -->"
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    body = (f"\n## Performance\n\nMeasured by `.venv/bin/python bench/run_all.py` on {report['machine'].get('cpu')}"
            f" ({report['machine'].get('cores')} cores, no GPU), except the `gpu_check` rows: `bench/gpu_check.py` on a "
            f"lent GPU (named in bench/results/gpu_check.json). Full figures in bench/REPORT.md.\n\n"
            f"{targets_table(report)}\n")
    text = text[:text.index(start) + len(start)] + body + text[text.index(end):]
    with open(path, "w") as f:
        f.write(text)
    print("updated README.md's performance section")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", help="script names (without .py) to run")
    parser.add_argument("--report-only", action="store_true", help="do not run; report existing results")
    parser.add_argument("--readme", action="store_true", help="also regenerate README.md's performance table")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per script")
    args = parser.parse_args(argv)
    available = scripts()
    unknown = set(args.only or []) - set(available)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; available: {available}")
    runs = {} if args.report_only else run(args.only or available, args.timeout)
    report = build_report(available, runs)
    if args.readme:
        update_readme(report)
    failed = [n for n, r in runs.items() if r["returncode"] != 0]
    if failed:
        print(f"failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
