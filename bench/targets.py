"""What the benchmark measures: a table of targets, each a server, a URL path and a request body.

To add a target, add one row to :data:`TARGETS`, for example ml-api with 4 threads per worker:

    Target("ml-api-flask-4t", MlApi("flask", env=(("ML_API_THREADS", "4"),)),
           "/predict", "seed", ALL_MODELS, "ml-api Flask, 4 threads per worker"),

Rows whose server is equal (same class, same fields) share one server process per model, so
``ml-api-flask`` and ``ml-api-flask-v2`` hit the same gunicorn. A row whose server does not start
(``ml-api serve --framework django`` before the Django adapter exists) or whose endpoint answers
404 (``/v2/...`` before ml-api speaks V2) shows as "not available" with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.models import ALL_MODELS, NUMERIC_MODELS, BenchModel
from bench.procs import free_port

BENCH_DIR = Path(__file__).resolve().parent
V2_INFER = "/v2/models/{model}/infer"


@dataclass(frozen=True)
class Launch:
    """How to start one server process and how to tell it is ready.

    Attributes:
        argv: The command.
        env: Environment variables added to the harness's environment.
        cwd: Working directory.
        ready_path: ``GET`` this path until it answers 200; ``None``: until the port accepts.
    """

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    ready_path: str | None


@dataclass(frozen=True)
class Context:
    """What launchers need from the run.

    Attributes:
        workdir: Scratch directory for this run.
        python: The ml-api virtualenv's interpreter (runs ml-api, the seed app and gunicorn).
        mlserver: The ``mlserver`` executable in ``bench/.venv-mlserver``, or ``None``.
    """

    workdir: Path
    python: str = sys.executable
    mlserver: str | None = None


class Unavailable(RuntimeError):
    """A server cannot be started in this environment (the message says why)."""


@dataclass(frozen=True)
class SeedApp:
    """The seed app (``bench/seed_app.py``): ``app.run`` (Werkzeug) or, with ``workers``, gunicorn.

    Attributes:
        workers: 0 runs ``python seed_app.py`` (Flask's ``app.run``); N runs gunicorn with N
            workers.
        worker_class: gunicorn worker class (``sync`` or ``gthread``).
        threads: Threads per gunicorn worker (``gthread`` only).
    """

    workers: int = 0
    worker_class: str = "sync"
    threads: int = 1

    def launch(self, ctx: Context, model: BenchModel, port: int) -> Launch:
        """Build the command; the working directory is the tutorial's ``api/``."""
        if model.seed_dir is None:
            raise Unavailable(f"the seed app cannot serve {model.key} (string features)")
        env = {"HOST": "127.0.0.1", "PORT": str(port)}
        if not self.workers:
            argv = [ctx.python, str(BENCH_DIR / "seed_app.py")]
        else:
            argv = [
                *(ctx.python, "-m", "gunicorn", "--pythonpath", str(BENCH_DIR)),
                *("-b", f"127.0.0.1:{port}", "-w", str(self.workers), "-k", self.worker_class),
                *(("--threads", str(self.threads)) if self.worker_class == "gthread" else ()),
                "seed_app:app",
            ]
        return Launch(argv, env, model.seed_dir / "api", None)


@dataclass(frozen=True)
class MlApi:
    """``ml-api serve`` (gunicorn, model loaded in the master) on 127.0.0.1.

    Attributes:
        framework: ``flask`` or ``django``.
        workers: gunicorn workers; ``None`` keeps ml-api's default (one per CPU the process may
            use, so one when the servers are pinned to one CPU).
        env: Extra ``ML_API_*`` settings, as ``((name, value), ...)``.
    """

    framework: str = "flask"
    workers: int | None = None
    env: tuple[tuple[str, str], ...] = ()

    def launch(self, ctx: Context, model: BenchModel, port: int) -> Launch:
        """Build the ``ml-api serve`` command for one model.

        The drain period after SIGTERM is set to 0 (it only delays the stop between models);
        Django gets a random ``ML_API_SECRET_KEY``, which it requires.
        """
        argv = [
            *(ctx.python, "-m", "ml_api.cli", "serve", "--framework", self.framework),
            *("--host", "127.0.0.1", "--port", str(port)),
            *(("--workers", str(self.workers)) if self.workers else ()),
            *("--model-root", str(model.model_root), "--name", model.name),
        ]
        env = {"ML_API_DRAIN_SECONDS": "0", **dict(self.env)}
        if self.framework == "django":
            env.setdefault("ML_API_SECRET_KEY", secrets.token_urlsafe(50))
        return Launch(argv, env, ctx.workdir, "/ready")


@dataclass(frozen=True)
class MLServer:
    """MLServer with its scikit-learn runtime, from ``bench/.venv-mlserver``.

    Attributes:
        max_batch_size: Adaptive batching: most requests per batch (0: batching off).
        max_batch_time: Adaptive batching: longest wait for a batch to fill, in seconds.
        parallel_workers: Inference worker processes (MLServer's default is 1; 0 runs inference
            in the HTTP process).
    """

    max_batch_size: int = 0
    max_batch_time: float = 0.0
    parallel_workers: int = 1

    def launch(self, ctx: Context, model: BenchModel, port: int) -> Launch:
        """Write a model repository (``settings.json`` + ``model-settings.json``) and start it.

        MLServer binds 0.0.0.0 unless told otherwise: ``host`` is set to 127.0.0.1 for its
        HTTP, gRPC and metrics servers, each on its own free port.
        """
        if ctx.mlserver is None:
            raise Unavailable("bench/.venv-mlserver could not be created (see the log above)")
        if model.joblib_path is None:
            raise Unavailable(f"no numpy pipeline for {model.key} (string features)")
        repo = ctx.workdir / "mlserver" / f"{self.tag()}-{model.key}"
        shutil.rmtree(repo, ignore_errors=True)
        (repo / model.name).mkdir(parents=True)
        shutil.copy(model.joblib_path, repo / model.name / "model.joblib")
        settings = {
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": self.parallel_workers,
            "debug": False,  # no per-request access log
            "metrics_dir": str(repo / ".metrics"),
            "environments_dir": str(repo / ".envs"),
        }
        model_settings: dict[str, Any] = {
            "name": model.name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "1"},
        }
        if self.max_batch_size:
            model_settings["max_batch_size"] = self.max_batch_size
            model_settings["max_batch_time"] = self.max_batch_time
        (repo / "settings.json").write_text(json.dumps(settings, indent=2))
        (repo / model.name / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
        ready = f"/v2/models/{model.name}/ready"
        return Launch([ctx.mlserver, "start", str(repo)], {}, repo, ready)

    def tag(self) -> str:
        """A short name for directories: ``pw1``, ``pw1-b64-10ms``."""
        tag = f"pw{self.parallel_workers}"
        if self.max_batch_size:
            tag += f"-b{self.max_batch_size}-{round(self.max_batch_time * 1000)}ms"
        return tag


Server = SeedApp | MlApi | MLServer


@dataclass(frozen=True)
class Target:
    """One row of the benchmark.

    Attributes:
        name: Unique name, used on the command line and in the results.
        server: How to start the server (equal servers are shared between rows).
        path: URL path; ``{model}`` becomes the served model name.
        body: ``seed`` (``{"features": [...]}``) or ``v2`` (an Open Inference Protocol request).
        models: Model keys the row applies to.
        description: One line for the results.
        default: Run without ``--targets``; other rows run when named or with ``--targets all``.
    """

    name: str
    server: Server
    path: str
    body: str
    models: tuple[str, ...]
    description: str
    default: bool = True

    def url_path(self, model: BenchModel) -> str:
        """The path with the model name filled in."""
        return self.path.format(model=model.name)


MLSERVER_BATCHING = MLServer(max_batch_size=64, max_batch_time=0.01)
"""Adaptive batching on: up to 64 requests per batch, waiting at most 10 ms for it to fill."""

TARGETS: tuple[Target, ...] = (
    Target("seed-flask", SeedApp(), "/predict", "seed", NUMERIC_MODELS,
           "the seed guide's app as written: pickle, Flask app.run (Werkzeug, threaded)"),
    Target("seed-gunicorn", SeedApp(workers=2), "/predict", "seed", NUMERIC_MODELS,
           "the same app under gunicorn, 2 sync workers"),
    Target("seed-gunicorn-gthread", SeedApp(workers=2, worker_class="gthread", threads=4),
           "/predict", "seed", NUMERIC_MODELS,
           "the same app under gunicorn, 2 gthread workers x 4 threads (keep-alive)",
           default=False),
    Target("mlserver", MLServer(), V2_INFER, "v2", NUMERIC_MODELS,
           "MLServer 1.7.1 + mlserver-sklearn, V2 REST, batching off, 1 parallel worker"),
    Target("mlserver-batch", MLSERVER_BATCHING, V2_INFER, "v2", NUMERIC_MODELS,
           "MLServer with adaptive batching (max_batch_size 64, max_batch_time 10 ms)"),
    Target("mlserver-inline", MLServer(parallel_workers=0), V2_INFER, "v2", NUMERIC_MODELS,
           "MLServer, inference in the HTTP process (parallel_workers 0)", default=False),
    Target("ml-api-flask", MlApi("flask"), "/predict", "seed", ALL_MODELS,
           "ml-api serve --framework flask, its defaults (workers = usable CPUs, threads, "
           "adaptive batching), simple API"),
    Target("ml-api-flask-nobatch", MlApi("flask", env=(("ML_API_BATCHING", "false"),)),
           "/predict", "seed", ALL_MODELS, "the same with ML_API_BATCHING=false"),
    Target("ml-api-django", MlApi("django"), "/predict", "seed", ALL_MODELS,
           "ml-api serve --framework django, its defaults, simple API"),
    Target("ml-api-flask-v2", MlApi("flask"), V2_INFER, "v2", ALL_MODELS,
           "ml-api Flask, Open Inference Protocol (V2) infer endpoint"),
    Target("ml-api-django-v2", MlApi("django"), V2_INFER, "v2", ALL_MODELS,
           "ml-api Django, Open Inference Protocol (V2) infer endpoint"),
)  # fmt: skip


def select(names: str | None) -> list[Target]:
    """Targets by comma-separated names; ``None`` gives the default rows, ``all`` every row.

    Raises:
        ValueError: An unknown name (the message lists the known ones).
    """
    if names is None:
        return [t for t in TARGETS if t.default]
    if names.strip() == "all":
        return list(TARGETS)
    by_name = {t.name: t for t in TARGETS}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise ValueError(f"unknown target(s) {unknown}; known: {', '.join(by_name)}")
    return [by_name[n] for n in wanted]


def needs_mlserver(targets: list[Target]) -> bool:
    """Whether any selected row runs MLServer."""
    return any(isinstance(t.server, MLServer) for t in targets)


def server_env(launch: Launch) -> dict[str, str]:
    """The full environment for a launch: ours, unbuffered output, plus the launch's."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **launch.env}
