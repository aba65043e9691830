"""``python -m bench --in-process-only`` and ``--invariance``: in-process tables, both runtimes.

No server, no wrk. Nothing here looks at a time: the run must finish, and print a row for every
callable (and, for ``--invariance``, a ratio that is the row's two times divided).
"""

from tests.bench.run import run_bench


def test_in_process_only_prints_both_runtimes(tmp_path):
    proc = run_bench(
        *("--in-process-only", "--models", "lr", "--no-pin"),
        *("--inprocess-budget", "0.01", "--batching-seconds", "0.1"),
        *("--workdir", str(tmp_path / "work")),
        timeout=600,
    )
    out = proc.stdout
    assert out.startswith("## In-process limit (no HTTP)")
    for callable_, rows in [
        ("ml-api pipeline", 1),
        ("ml-api pipeline", 64),
        ("onnxruntime session", 1),
        ("onnxruntime session", 64),
        ("ml-api service, scikit-learn", 64),
        ("ml-api service, onnxruntime", 64),
        ("64 threads, batching on, scikit-learn", 1),
        ("64 threads, batching off, onnxruntime", 1),
    ]:
        assert f"| lr | {callable_} | {rows} |" in out, callable_


def test_invariance_prints_both_runtimes_per_model(tmp_path):
    proc = run_bench(
        *("--invariance", "--models", "lr,rf", "--no-pin", "--inprocess-budget", "0.01"),
        *("--workdir", str(tmp_path / "work")),
        timeout=600,
    )
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("## Batch invariance: 1 row evaluated as 2")
    rows = [line.split(" | ") for line in lines if line.startswith(("| lr |", "| rf |"))]
    assert [(r[0], r[1]) for r in rows] == [
        ("| lr", "scikit-learn"),
        ("| lr", "onnxruntime"),
        ("| rf", "scikit-learn"),
        ("| rf", "onnxruntime"),
    ]
    for r in rows:
        as_2, alone, ratio = (float(v) for v in r[2:5])
        assert as_2 > 0 and alone > 0
        assert abs(ratio - as_2 / alone) < 0.05 * ratio, r  # the times are rounded to 0.1 us
        assert r[5] in ("yes |", "no |")
    # tree models work row by row: the served first row is the lone row's answer, bit for bit
    assert all(r[5] == "yes |" for r in rows if r[0] == "| rf")
