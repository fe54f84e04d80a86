#!/usr/bin/python3
"""Kinds of work in a phase's profile (scripts/profile_phases.sh) and their table.

  profile_table.py --classify PHASE BENCHMARK < `perf report -n --sort dso,sym --stdio`
      prints CSV rows: PHASE,BENCHMARK,kind,share,samples (every kind, in a fixed order)
  profile_table.py --into FILE.md PHASES.csv    rewrites the table between the markers
  profile_table.py --check FILE.md PHASES.csv   fails when the table is stale
"""
import csv
import re
import sys

from markdown_blocks import rewrite_or_check

# (kind, test on the library and symbol a sample fell in); the first that matches wins.
# oneDNN's GEMM kernels are code it generates at run time: perf files them under "[JIT]".
KINDS = [
    ("GEMM kernel", lambda dso, sym: ("openblas" in dso and "gemm_kernel" in sym) or dso.startswith("[JIT]")),
    ("GEMM packing and C scaling", lambda dso, sym: "openblas" in dso),
    ("oneDNN's own code", lambda dso, sym: "libdnnl" in dso),
    ("SLEEF exp, log, tanh", lambda dso, sym: "sleef" in dso),
    ("LibTorch element-wise ops, reductions, dispatch", lambda dso, sym: "libtorch" in dso or "libc10" in dso),
    ("tom-rl's own loops (Adam, ...)", lambda dso, sym: dso.startswith("tom")),
    ("malloc, memcpy, memset", lambda dso, sym: dso.startswith("libc.") or dso.startswith("ld-linux")),
    ("MuJoCo", lambda dso, sym: "mujoco" in dso),
    ("operating system", lambda dso, sym: dso.startswith("[kernel")),
    ("other", lambda dso, sym: True),
]
LINE = re.compile(r"^\s*([0-9.]+)%\s+(\d+)\s+(\[JIT\] tid \d+|\S+)\s+\[.\]\s+(.*)$")
BEGIN, END = "<!-- profile_table phases: {} -->", "<!-- end of profile_table phases -->"


def fail(message):
    sys.exit(f"profile_table.py: {message}")


def classify(phase, benchmark):
    samples = {kind: 0 for kind, _ in KINDS}
    for line in sys.stdin:
        match = LINE.match(line)
        if not match:
            continue
        dso, sym = match.group(3), match.group(4)
        kind = next(name for name, test in KINDS if test(dso, sym))
        samples[kind] += int(match.group(2))
    total = sum(samples.values())
    if total == 0:
        fail(f"no samples in the profile of {phase} ({benchmark}): did the benchmark run?")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    for kind, count in samples.items():
        writer.writerow([phase, benchmark, kind, f"{count / total:.4f}", count])


def table(csv_path):
    with open(csv_path) as f:
        lines = f.read().splitlines()
    if not lines or not lines[0].startswith("# "):
        fail(f"{csv_path}: expected a first line '# cpu: ...' as profile_phases.sh writes it")
    rows = list(csv.DictReader(lines[1:]))
    if not rows or set(rows[0]) != {"phase", "benchmark", "kind", "share", "samples"}:
        fail(f"{csv_path}: expected the columns phase,benchmark,kind,share,samples")
    phases = list(dict.fromkeys(r["phase"] for r in rows))
    kinds = [k for k, _ in KINDS if any(r["kind"] == k and float(r["share"]) > 0 for r in rows)]
    share = {(r["phase"], r["kind"]): float(r["share"]) for r in rows}
    bench = {r["phase"]: r["benchmark"] for r in rows}
    out = [BEGIN.format(csv_path),
           f"Share of each phase's perf samples by kind of work, one thread ({lines[0][2:]}):", "",
           "| phase (benchmark) | " + " | ".join(kinds) + " |",
           "|---|" + "---:|" * len(kinds)]
    for phase in phases:
        cells = [f"{100 * share.get((phase, k), 0.0):.1f} %" for k in kinds]
        out.append(f"| {phase} (`{bench[phase].rstrip('$/')}`) | " + " | ".join(cells) + " |")
    out.append(END)
    return "\n".join(out)


def replace_block(md_path, csv_path, check):
    def transform(text):
        begin = BEGIN.format(csv_path)
        start, stop = text.find(begin), text.find(END)
        if start < 0 or stop < start:
            fail(f"{md_path}: no block between '{begin}' and '{END}'")
        return text[:start] + table(csv_path) + text[stop + len(END):]

    rewrite_or_check(md_path, transform, check, "profile_table.py",
                     f"the profile table is stale against {csv_path}; run scripts/profile_table.py --into")


def main(argv):
    if len(argv) == 4 and argv[1] == "--classify":
        classify(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] in ("--into", "--check"):
        replace_block(argv[2], argv[3], argv[1] == "--check")
    else:
        fail("usage: --classify PHASE BENCHMARK | --into FILE.md PHASES.csv | --check FILE.md PHASES.csv")


if __name__ == "__main__":
    main(sys.argv)
