#!/usr/bin/python3
"""Before/after tables from committed Google Benchmark JSON files (issue 40's figures).

A block in a Markdown file records its own arguments:
  <!-- bench_table NAME: LABEL=a.json,b.json LABEL=c.json,d.json -->
  ...generated table...
  <!-- end of bench_table NAME -->
Each LABEL is one setting, measured in one or more invocations (interleave the settings'
invocations so the machine's noise falls on both); a benchmark's figure under a label is the
median real time over its invocations, and with two labels or more a column per later
label gives its time over the first label's. An argument figure=COUNTER shows that user counter (or
another numeric field, such as cpu_time) of the benchmarks instead of their real time; only=REGEX keeps the benchmarks whose names it
matches (re.search).
  bench_table.py --into [FILE.md ...]    rewrites every block from its JSON files
  bench_table.py --check [FILE.md ...]   fails when a block is stale
(the files default to README.md and docs/*.md)
"""
import glob
import json
import os
import re
import statistics
import sys

from markdown_blocks import rewrite_or_check

BLOCK = re.compile(r"<!-- bench_table (\S+): (.*?) -->\n.*?<!-- end of bench_table \1 -->", re.S)


def fail(message):
    sys.exit(f"bench_table.py: {message}")


def read_times(path, figure, only):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        fail(f"{path}: cannot read benchmark JSON ({error})")
    times = {}
    for run in data.get("benchmarks", []):
        if run.get("run_type", "iteration") != "iteration" or not only.search(run["name"]):
            continue
        if figure:
            if figure not in run:
                fail(f"{path}: {run['name']} has no counter {figure}")
            unit = run.get("time_unit", "ns") if figure in ("cpu_time", "real_time") else ""
            times.setdefault(run["name"], []).append((float(run[figure]), unit))
        elif "real_time" in run:
            times.setdefault(run["name"], []).append((float(run["real_time"]), run.get("time_unit", "ns")))
    if not times:
        fail(f"{path}: no benchmark results in it" + (f" matching only={only.pattern}" if only.pattern else ""))
    return times


def table(name, args):
    sides, words = [], args.split()
    figure = next((w.partition("=")[2] for w in words if w.startswith("figure=")), "")
    only = re.compile(next((w.partition("=")[2] for w in words if w.startswith("only=")), ""))
    for arg in words:
        label, _, files = arg.partition("=")
        if label in ("figure", "only"):
            continue
        if not label or not files:
            fail(f"block {name}: expected LABEL=file.json[,file.json...], got '{arg}'")
        merged = {}
        for path in files.split(","):
            for bench, values in read_times(path, figure, only).items():
                merged.setdefault(bench, []).extend(values)
        sides.append((label, merged))
    if not sides:
        fail(f"block {name}: no LABEL=file.json given")
    names = [b for b in sides[0][1] if all(b in side for _, side in sides)]
    if not names:
        fail(f"block {name}: no benchmark is in every label's files")
    what = figure or "real time"
    head = [f"<!-- bench_table {name}: {args} -->",
            "| benchmark | " + " | ".join([f"{label}: {what} (median)" for label, _ in sides] +
                                        [f"{label} / {sides[0][0]}" for label, _ in sides[1:]]) + " |",
            "|---|" + "---:|" * (2 * len(sides) - 1)]
    for bench in names:
        medians = [statistics.median(t for t, _ in side[bench]) for _, side in sides]
        unit = sides[0][1][bench][0][1]
        cells = [f"{m:.4g}{' ' + unit if unit else ''} (n={len(side[bench])})" for m, (_, side) in zip(medians, sides)]
        cells += [f"{m / medians[0]:.2f}" for m in medians[1:]]
        head.append(f"| {bench} | " + " | ".join(cells) + " |")
    head.append(f"<!-- end of bench_table {name} -->")
    return "\n".join(head)


def main(argv):
    if len(argv) < 2 or argv[1] not in ("--into", "--check"):
        fail("usage: --into|--check [FILE.md ...] (default: README.md and docs/*.md)")
    root = os.path.dirname(os.path.abspath(__file__)) + "/.."
    paths = [os.path.abspath(p) for p in argv[2:]]
    os.chdir(root)  # the blocks' paths are relative to the repository
    paths = paths or [os.path.abspath(p) for p in ["README.md", *sorted(glob.glob("docs/*.md"))]]
    for path in paths:
        rewrite_or_check(path, lambda text: BLOCK.sub(lambda m: table(m.group(1), m.group(2)), text),
                         argv[1] == "--check", "bench_table.py",
                         f"a bench_table block is stale; run scripts/bench_table.py --into {path}")


if __name__ == "__main__":
    main(sys.argv)
