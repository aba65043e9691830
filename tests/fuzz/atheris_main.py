"""Coverage-guided fuzzing of one target with atheris (libFuzzer), from the command line.

Usage::

    python -m tests.fuzz.atheris_main TARGET [libFuzzer options] [CORPUS_DIR ...]

``TARGET`` is one of ``flask``, ``django``, ``csv``, ``parquet`` (:mod:`tests.fuzz.harness`).
ml-api's own code is instrumented for coverage, so inputs that reach new branches are kept and
mutated further. libFuzzer options: ``-max_total_time=S`` (seconds), ``-runs=N``, ``-seed=N``,
``-artifact_prefix=DIR/`` (where a crashing input is written). The first corpus folder receives
the new inputs; ``make fuzz`` passes a scratch folder first and the committed seeds
(``tests/fuzz/corpus/<wsgi|csv|parquet>``) second. A broken invariant or an exception is a crash:
libFuzzer prints it, writes the input to ``<artifact_prefix>crash-<sha1>`` and exits non-zero.
"""

from __future__ import annotations

import logging
import sys
import warnings

import atheris


def main(argv: list[str]) -> None:
    """Fuzz ``argv[1]`` with the libFuzzer arguments that follow it."""
    name = argv[1]
    logging.disable(logging.CRITICAL)  # the access log of a million requests helps no one
    warnings.simplefilter("ignore")
    with atheris.instrument_imports(include=["ml_api"]):
        from tests.fuzz import harness

        run = harness.target(name)  # imports (so instruments) what the target reaches
        for seed in sorted(harness.corpus_of(name).iterdir())[:1]:
            run(seed.read_bytes())  # and what the first request imports lazily

    def one_input(data: bytes) -> None:
        run(data)

    atheris.Setup([argv[0], *argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
