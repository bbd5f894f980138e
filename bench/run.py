"""make bench: gsat side by side with task-spooler and nq, in one run.

    python bench/run.py [--quick] [--out bench/results.json]

Prints a table of medians and p95 per metric and system, gsat's ratio to
each peer, the SPEC §9 bars met or not, and writes the same as JSON.
`--quick` shrinks every count so that the run takes seconds (CI runs it as
a test that the bench works, never as a timed test).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics  # noqa: E402
from systems import Gsat, Nq, TaskSpooler, install_peers, peers_available  # noqa: E402

FULL = {"calls": 50, "samples": 30, "jobs": 1000, "history": (1000, 10000), "idle": 60.0}
QUICK = {"calls": 5, "samples": 3, "jobs": 20, "history": (50, 200), "idle": 1.0}


def compile_gsat() -> None:
    """Bytecode for every gsat module as it is now, as pip leaves an install
    (SPEC §9): with PYTHONDONTWRITEBYTECODE set, a module edited since the
    last compile would be compiled again by every command the bench times."""
    import compileall
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "gsat"), quiet=1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny counts: checks the bench works")
    p.add_argument("--out", default=str(Path(__file__).parent / "results.json"))
    p.add_argument("--no-install", action="store_true", help="do not apt-get install the peers")
    p.add_argument("--markdown", metavar="JSON", help="print an earlier run's report as a Markdown table")
    args = p.parse_args()
    if args.markdown:
        report = json.loads(Path(args.markdown).read_text())
        print(markdown(report))
        return 0
    if not args.no_install:
        install_peers()
    compile_gsat()
    n = QUICK if args.quick else FULL
    tmp = Path(tempfile.mkdtemp(prefix="gsat-bench-"))
    try:
        results = run_all(tmp, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {"machine": machine(), "quick": args.quick, "counts": n, "results": results}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(table(results))
    print(f"\nwritten to {args.out}")
    return 0


def run_all(tmp: Path, n: dict) -> dict:
    systems = [Gsat(tmp / "gsat")]
    peers = peers_available()
    if "task-spooler" in peers:
        systems.append(TaskSpooler(tmp / "tsp"))
    if "nq" in peers:
        systems.append(Nq(tmp / "nq"))
    out: dict[str, dict] = {}
    floor = metrics.python_floor(n["calls"])
    out["python3 -c pass (floor)"] = {"python": summary(floor)}
    for system in systems:
        system.start()
        try:
            for metric, samples in metrics.per_system(system, tmp / f"jobs-{system.name}", n).items():
                out.setdefault(metric, {})[system.name] = summary(samples)
        finally:
            system.stop()
    for metric, values in metrics.gsat_only(tmp, n).items():
        out.setdefault(metric, {}).update({k: summary(v) for k, v in values.items()})
    return out


def summary(samples) -> dict:
    if isinstance(samples, dict):
        return samples
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median": statistics.median(ordered), "p95": p95, "n": len(ordered)}


def table(results: dict) -> str:
    rows = [("metric", "system", "median", "p95", "n", "gsat ÷ system")]
    for metric, by_system in results.items():
        gsat = by_system.get("gsat", {}).get("median")
        for name, s in by_system.items():
            ratio = f"{gsat / s['median']:.2f}" if name != "gsat" and gsat and s.get("median") else ""
            rows.append((metric, name, fmt(metric, s.get("median")), fmt(metric, s.get("p95")),
                         str(s.get("n", "")), ratio))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:])


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Measured {m['date']} on {m['cpus']} × {m['cpu']}, Linux {m['kernel']}, Python {m['python']}"
             f"{' (quick mode)' if report.get('quick') else ''}.", "",
             "| metric | system | median | p95 | n | gsat ÷ system |", "|---|---|---|---|---|---|"]
    for metric, by_system in report["results"].items():
        gsat = by_system.get("gsat", {}).get("median")
        for name, s in by_system.items():
            ratio = f"{gsat / s['median']:.2f}" if name != "gsat" and gsat and s.get("median") else ""
            lines.append(f"| {metric} | {name} | {fmt(metric, s.get('median'))} | {fmt(metric, s.get('p95'))} "
                         f"| {s.get('n', '')} | {ratio} |")
    return "\n".join(lines)


def fmt(metric: str, value) -> str:
    if value is None:
        return "-"
    if "jobs/s" in metric:
        return f"{value:.0f}/s"
    if "MB" in metric:
        return f"{value:.1f} MB"
    if "CPU s" in metric:
        return f"{value:.3f} s"
    return f"{value * 1000:.2f} ms"


def machine() -> dict:
    return {"python": platform.python_version(), "kernel": platform.release(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "cpu": _cpu_model()}


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
