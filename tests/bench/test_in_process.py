"""``python -m bench --in-process-only``: the in-process table, both runtimes, no server, no wrk.

Nothing here looks at a time: the run must finish, and print a row for every callable.
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
