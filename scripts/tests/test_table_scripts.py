"""The generated-table scripts (profile_table.py, bench_table.py): what they write, and that
stale or malformed inputs are refused with a message naming the problem."""
import csv
import json
import os
import subprocess
import sys

import pytest

SCRIPTS = os.path.join(os.path.dirname(__file__), "..")
PERF_REPORT = """# Samples: 1K of event 'cycles'
#
    60.00%   600  libopenblasp-r0.3.21.so  [.] sgemm_kernel_ZEN
    10.00%   100  libopenblasp-r0.3.21.so  [.] sgemm_incopy_ZEN
    20.00%   200  libtorch_cpu.so.1.13.0   [.] 0x0000000004cdc32f
    10.00%   100  [kernel.kallsyms]        [k] clear_page_erms
"""
# oneDNN's run-time generated kernels, as perf files them.
PERF_REPORT_JIT = """    70.00%   700  [JIT] tid 4242           [.] 0x00007f0000001000
    10.00%   100  libdnnl.so.2.6           [.] dnnl::impl::cpu::matmul
    20.00%   200  tom_bench                [.] tom::nn::round_to_bf16
"""


def run(script, *args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *args], input=stdin, text=True,
                          capture_output=True, cwd=cwd)


def test_profile_kinds_follow_library_and_symbol():
    out = run("profile_table.py", "--classify", "phase", "BM_X", stdin=PERF_REPORT)
    assert out.returncode == 0, out.stderr
    shares = {row[2]: float(row[3]) for row in csv.reader(out.stdout.splitlines())}
    assert shares["GEMM kernel"] == pytest.approx(0.6)
    assert shares["GEMM packing and C scaling"] == pytest.approx(0.1)
    assert shares["operating system"] == pytest.approx(0.1)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_profile_without_samples_is_refused():
    out = run("profile_table.py", "--classify", "phase", "BM_X", stdin="# nothing\n")
    assert out.returncode != 0 and "no samples" in out.stderr


def test_profile_table_is_written_and_checked(tmp_path):
    rows = run("profile_table.py", "--classify", "phase", "BM_X", stdin=PERF_REPORT).stdout
    data = tmp_path / "phases.csv"
    data.write_text("# cpu: test\nphase,benchmark,kind,share,samples\n" + rows)
    doc = tmp_path / "doc.md"
    begin = f"<!-- profile_table phases: {data} -->"
    doc.write_text(f"text\n{begin}\n<!-- end of profile_table phases -->\nmore\n")
    assert run("profile_table.py", "--check", str(doc), str(data)).returncode != 0
    assert run("profile_table.py", "--into", str(doc), str(data)).returncode == 0
    assert "| phase (`BM_X`) | 60.0 % |" in doc.read_text()
    assert run("profile_table.py", "--check", str(doc), str(data)).returncode == 0


def bench_json(path, times):
    path.write_text(json.dumps({"context": {}, "benchmarks": [
        {"name": name, "run_type": "iteration", "real_time": t, "time_unit": "ms", "s_per_step": t / 10}
        for name, t in times.items()]}))


def test_bench_table_medians_and_ratio(tmp_path):
    for name, t in [("a1", 10.0), ("a2", 14.0), ("b1", 6.0), ("b2", 6.0)]:
        bench_json(tmp_path / f"{name}.json", {"BM_One": t})
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- bench_table t: before=a1.json,a2.json after=b1.json,b2.json -->\n"
                   "<!-- end of bench_table t -->\n")
    out = run("bench_table.py", "--into", str(doc), cwd=tmp_path)
    # The blocks' paths are relative to the repository, so give them absolute here.
    assert out.returncode != 0 and "cannot read" in out.stderr
    text = doc.read_text().replace("a1.json", str(tmp_path / "a1.json")).replace("a2.json", str(tmp_path / "a2.json"))
    text = text.replace("b1.json", str(tmp_path / "b1.json")).replace("b2.json", str(tmp_path / "b2.json"))
    doc.write_text(text)
    assert run("bench_table.py", "--check", str(doc)).returncode != 0
    assert run("bench_table.py", "--into", str(doc)).returncode == 0
    assert "| BM_One | 12 ms (n=2) | 6 ms (n=2) | 0.50 |" in doc.read_text()
    assert run("bench_table.py", "--check", str(doc)).returncode == 0


def test_bench_table_gives_each_later_label_its_ratio(tmp_path):
    for name, t in [("a", 10.0), ("b", 9.0), ("c", 5.0)]:
        bench_json(tmp_path / f"{name}.json", {"BM_One": t})
    doc = tmp_path / "doc.md"
    doc.write_text(f"<!-- bench_table r: fp32={tmp_path / 'a.json'} fused={tmp_path / 'b.json'} "
                   f"bf16={tmp_path / 'c.json'} -->\n<!-- end of bench_table r -->\n")
    assert run("bench_table.py", "--into", str(doc)).returncode == 0
    text = doc.read_text()
    assert "| fused / fp32 | bf16 / fp32 |" in text
    assert "| BM_One | 10 ms (n=1) | 9 ms (n=1) | 5 ms (n=1) | 0.90 | 0.50 |" in text


def test_bench_table_counter_and_bad_input(tmp_path):
    bench_json(tmp_path / "a.json", {"BM_One": 10.0})
    (tmp_path / "bad.json").write_text("{not json")
    doc = tmp_path / "doc.md"
    doc.write_text(f"<!-- bench_table c: one={tmp_path / 'a.json'} figure=s_per_step -->\n"
                   "<!-- end of bench_table c -->\n")
    assert run("bench_table.py", "--into", str(doc)).returncode == 0
    assert "| BM_One | 1 (n=1) |" in doc.read_text()
    doc.write_text(f"<!-- bench_table c: one={tmp_path / 'bad.json'} -->\n<!-- end of bench_table c -->\n")
    out = run("bench_table.py", "--into", str(doc))
    assert out.returncode != 0 and "bad.json" in out.stderr


def test_bench_table_only_keeps_the_matching_benchmarks(tmp_path):
    bench_json(tmp_path / "a.json", {"BM_Linear/1": 1.0, "BM_Sac": 3.0})
    doc = tmp_path / "doc.md"
    doc.write_text(f"<!-- bench_table o: one={tmp_path / 'a.json'} only=^BM_(?!Linear) -->\n"
                   "<!-- end of bench_table o -->\n")
    assert run("bench_table.py", "--into", str(doc)).returncode == 0
    assert "BM_Sac" in doc.read_text() and "BM_Linear" not in doc.read_text()
    doc.write_text(f"<!-- bench_table o: one={tmp_path / 'a.json'} only=^BM_Nothing -->\n"
                   "<!-- end of bench_table o -->\n")
    out = run("bench_table.py", "--into", str(doc))
    assert out.returncode != 0 and "matching only=^BM_Nothing" in out.stderr


def test_profile_counts_onednn_jit_kernels_as_gemm():
    out = run("profile_table.py", "--classify", "p", "BM_X", stdin=PERF_REPORT_JIT)
    shares = {row[2]: float(row[3]) for row in csv.reader(out.stdout.splitlines())}
    assert shares["GEMM kernel"] == pytest.approx(0.7)
    assert shares["oneDNN's own code"] == pytest.approx(0.1)
    assert shares["tom-rl's own loops (Adam, ...)"] == pytest.approx(0.2)
