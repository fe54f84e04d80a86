#!/usr/bin/python3
"""Adds the [provenance] section to the committed config.toml of runs made before tom
recorded it (issue 33), from what their sweep recorded: the `tom` binary of each cell in
sweep.json, kept as ~/tom-experiments/bin/<revision>/tom. Runs that already have the
section, or whose binary path names no revision, are left as they are. The build type of
such a binary was not recorded, and the section says so.

    scripts/backfill_provenance.py [experiments root, default experiments/]
"""
import json
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "experiments")
changed = 0
for sweep_file in sorted(root.glob("*/sweep.json")):
    sweep = json.loads(sweep_file.read_text())
    for cell in sweep.get("cells", []):
        match = re.search(r"/bin/([0-9a-f]{7,40})[^/]*/tom$", cell["command"][0])
        config = sweep_file.parent / cell["dir"] / "config.toml"
        if not match or not config.exists():
            continue
        text = config.read_text()
        if "[provenance]" in text:
            continue
        config.write_text(
            text.rstrip("\n")
            + "\n\n[provenance]\n"
            + f"revision = '{match.group(1)}'  # backfilled from sweep.json: the binary its sweep ran\n"
            + "dirty = false  # not recorded then; the binaries were built from commits\n"
            + "build_type = 'unrecorded'\n"
            + "resumed_by = ''\n"
        )
        changed += 1
print(f"{changed} config.toml files given a provenance section")
