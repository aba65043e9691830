"""What the benchmark measures: a table of targets, each a server, a URL path and a request body.

To add a target, add one row to :data:`TARGETS`, for example ml-api with 4 threads per worker:

    Target("ml-api-flask-4t", MlApi("flask", env=(("ML_API_THREADS", "4"),)),
           "/predict", "seed", ALL_MODELS, "ml-api Flask, 4 threads per worker"),

Rows whose server is equal (same class, same fields) share one server process per model, so
``ml-api-flask`` and ``ml-api-flask-v2`` hit the same gunicorn. A row whose server does not start
(``ml-api serve --framework django`` before the Django adapter exists), whose endpoint answers
404 (``/v2/...`` before ml-api speaks V2), or that does not run the HTTP front it asks for
(``ML_API_SERVER=granian`` before ``ml-api serve`` reads it; checked before the start with
:func:`setting_support` and after it with :func:`detect_front`) shows as "not available" with
the reason. ml-api rows also report the front and the runtime (``/metadata``) that served them.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from bench.models import ALL_MODELS, NUMERIC_MODELS, BenchModel
from bench.procs import free_port, process_tree

if TYPE_CHECKING:
    from bench.servers import ServerProcess

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
        server_cpus: How many CPUs the servers are pinned to (``None``: not pinned, all CPUs);
            the bare Flask rows start one worker per CPU, as ``ml-api serve`` does.
    """

    workdir: Path
    python: str = sys.executable
    mlserver: str | None = None
    server_cpus: int | None = None


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


SERVER_SETTING = "ML_API_SERVER"
"""The setting that picks ``ml-api serve``'s HTTP front (issue 11; added on branch ``front``)."""
GTHREAD_VALUES = ("gunicorn", "gthread")
"""Values tried, in order, for "gunicorn with gthread workers" once ``ML_API_SERVER`` exists."""

_SETTING_PROBE = """
import json, os, sys
name, value = sys.argv[1], sys.argv[2]
from ml_api.settings import Settings
def dump():
    return Settings().model_dump(mode="json")
os.environ.pop(name, None)
base = dump()
os.environ[name] = "__bench_not_a_value__"
try:
    read = dump() != base
except Exception:
    read = True  # the invalid value was refused: the setting exists and checks its values
if not read:
    print(json.dumps({"status": "ignored"}))
    sys.exit(0)
os.environ[name] = value
try:
    dump()
except Exception as exc:
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    print(json.dumps({"status": "rejected", "reason": " ".join(lines[:3])[:300]}))
else:
    print(json.dumps({"status": "accepted"}))
"""


@functools.lru_cache(maxsize=32)
def setting_support(python: str, name: str, value: str) -> tuple[str, str]:
    """Whether ``ml-api``'s settings (in ``python``'s environment) read ``name`` and take ``value``.

    Settings ignore unknown ``ML_API_*`` variables, so "not supported yet" cannot be told from a
    failed start: this builds ``ml_api.settings.Settings`` in a subprocess with and without the
    variable (and with a value no setting takes) and compares.

    Args:
        python: The interpreter whose ``ml_api`` is asked.
        name: The environment variable (``ML_API_SERVER``).
        value: The value wanted (``granian``).

    Returns:
        ``(status, reason)``: ``accepted``; ``ignored`` (no setting reads the variable);
        ``rejected`` (the setting exists and refuses the value; ``reason`` has the message); or
        ``error`` (the settings could not be built; ``reason`` says why).
    """
    try:
        out = subprocess.run(
            [python, "-c", _SETTING_PROBE, name, value],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != name},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "error", f"could not ask ml_api.settings: {exc}"
    try:
        answer = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = " ".join(out.stderr.strip().splitlines()[-1:])[:300]
        return "error", f"could not ask ml_api.settings: {tail or out.returncode}"
    return answer["status"], answer.get("reason", "")


def detect_front(pid: int, server_header: str | None) -> str:
    """Which HTTP front serves a process tree: ``granian``, ``gunicorn`` or ``unknown``.

    granian is a native extension: a process of the tree mapping granian's ``_granian`` library
    runs it. gunicorn is pure Python; it names itself in the ``Server`` response header.

    Args:
        pid: The server's main process.
        server_header: The ``Server`` header of one of its responses (``None``: none sent).
    """
    for proc in process_tree(pid):
        try:
            if any("_granian" in Path(m.path).name for m in proc.memory_maps(grouped=True)):
                return "granian"
        except (OSError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    if server_header and server_header.lower().startswith("gunicorn"):
        return "gunicorn"
    return "unknown"


def front_mismatch(wanted: str | None, found: str) -> str | None:
    """Why a server is not on the front its row asks for (``None``: it is, or nothing asked)."""
    if wanted is None or wanted == found:
        return None
    return f"asked for {wanted}, but the server runs {found}"


RUNTIME_NAMES = {"scikit-learn": "sklearn", "onnxruntime": "onnx"}
"""``/metadata``'s ``runtime`` in ``ML_API_RUNTIME``'s words."""


@dataclass(frozen=True)
class MlApi:
    """``ml-api serve`` on 127.0.0.1, model loaded before the server is ready.

    Attributes:
        framework: ``flask`` or ``django``.
        workers: worker processes; ``None`` keeps ml-api's default (one per CPU the process may
            use, so one when the servers are pinned to one CPU).
        env: Extra ``ML_API_*`` settings, as ``((name, value), ...)``.
        server: The HTTP front to ask for with ``ML_API_SERVER``: ``granian``; ``gthread``
            (gunicorn with threads, today's front: passed as the value ``ml-api`` takes for it,
            or not at all while ``ML_API_SERVER`` does not exist); ``None`` keeps ml-api's
            default. The row is unavailable, with the reason, when ``ml-api serve`` does not
            support the front asked for, and when the started server runs another one.
    """

    framework: str = "flask"
    workers: int | None = None
    env: tuple[tuple[str, str], ...] = ()
    server: str | None = None

    def launch(self, ctx: Context, model: BenchModel, port: int) -> Launch:
        """Build the ``ml-api serve`` command for one model.

        The drain period after SIGTERM is set to 0 (it only delays the stop between models);
        Django gets a random ``ML_API_SECRET_KEY``, which it requires.

        Raises:
            Unavailable: ``server`` is asked for and ``ml-api serve`` cannot run it.
        """
        argv = [
            *(ctx.python, "-m", "ml_api.cli", "serve", "--framework", self.framework),
            *("--host", "127.0.0.1", "--port", str(port)),
            *(("--workers", str(self.workers)) if self.workers else ()),
            *("--model-root", str(model.model_root), "--name", model.name),
        ]
        env = {"ML_API_DRAIN_SECONDS": "0", **dict(self.env), **self._server_env(ctx)}
        if self.framework == "django":
            env.setdefault("ML_API_SECRET_KEY", secrets.token_urlsafe(50))
        return Launch(argv, env, ctx.workdir, "/ready")

    def _server_env(self, ctx: Context) -> dict[str, str]:
        if self.server is None:
            return {}
        values = GTHREAD_VALUES if self.server == "gthread" else (self.server,)
        refused = []
        for value in values:
            status, reason = setting_support(ctx.python, SERVER_SETTING, value)
            if status == "accepted":
                return {SERVER_SETTING: value}
            if status == "ignored":
                if self.server == "gthread":
                    return {}  # no choice of front yet: gunicorn gthread is the only one
                raise Unavailable(
                    f"ml-api serve does not support {SERVER_SETTING} yet (no setting reads it)"
                )
            if status == "error":
                raise Unavailable(reason)
            refused.append(f"{SERVER_SETTING}={value}: {reason}")
        raise Unavailable(f"ml-api serve refuses {'; '.join(refused)}")

    def inspect(self, proc: ServerProcess) -> tuple[str | None, dict[str, str]]:
        """After ready: which front and runtime serve (``/metadata``), and whether as asked.

        Returns:
            ``(reason, info)``: ``reason`` is ``None`` when the server is what the row asks for;
            ``info`` has ``front`` and ``runtime`` (``onnx`` or ``sklearn``).
        """
        info = {"front": "unknown", "runtime": "unknown"}
        try:
            status, headers, raw = proc.request_full("GET", "/metadata")
        except (OSError, http.client.HTTPException) as exc:
            return f"GET /metadata failed: {exc}", info
        info["front"] = detect_front(proc.pid, headers.get("Server"))
        if status == 200:
            try:
                runtime = json.loads(raw).get("runtime") or "unknown"
            except (ValueError, AttributeError):
                runtime = "unknown"
            info["runtime"] = RUNTIME_NAMES.get(runtime, runtime)
        wanted = {"granian": "granian", "gthread": "gunicorn"}.get(self.server or "")
        return front_mismatch(wanted, info["front"]), info


@dataclass(frozen=True)
class BareFlask:
    """The HTTP ceiling: ``bench/bare_flask.py`` (parse JSON, answer JSON) on one front.

    One worker per server CPU, like ``ml-api serve``.

    Attributes:
        front: ``gthread`` (plain gunicorn, ``threads`` threads per worker, keep-alive 75 s:
            ``ml-api serve``'s gunicorn settings), ``ml-api`` (ml-api's own gunicorn front:
            its head-reading worker, the wire's checks and every setting ``ml-api serve`` gives
            gunicorn, run by ``bench/bare_front.py``) or ``granian`` (granian's WSGI interface
            with ``threads`` blocking threads and a backpressure of twice that per worker, the
            settings ``ml-api serve`` gives granian).
        threads: Request threads per worker (ml-api's ``ML_API_THREADS`` default, 64).
    """

    front: str = "gthread"
    threads: int = 64

    def launch(self, ctx: Context, model: BenchModel, port: int) -> Launch:
        """Build the command (working directory ``bench/``, app ``bare_flask:app``).

        Raises:
            Unavailable: ``granian`` is not installed in the ml-api environment.
        """
        workers = str(ctx.server_cpus or os.cpu_count() or 1)
        if self.front == "granian":
            exe = Path(ctx.python).parent / "granian"
            if not exe.is_file():
                raise Unavailable(f"granian is not installed ({exe}): make bench-deps")
            argv = [
                *(str(exe), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)),
                *("--workers", workers, "--blocking-threads", str(self.threads)),
                *("--backpressure", str(self.threads * 2), "bare_flask:app"),
            ]
        elif self.front == "ml-api":
            argv = [ctx.python, str(BENCH_DIR / "bare_front.py"), "--port", str(port)]
            env = {"WEB_CONCURRENCY": workers, "ML_API_THREADS": str(self.threads)}
            return Launch(argv, {**env, "ML_API_DRAIN_SECONDS": "0"}, BENCH_DIR, None)
        else:
            argv = [
                *(ctx.python, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", workers),
                *("-k", "gthread", "--threads", str(self.threads), "--keep-alive", "75"),
                "bare_flask:app",
            ]
        return Launch(argv, {}, BENCH_DIR, None)

    def inspect(self, proc: ServerProcess) -> tuple[str | None, dict[str, str]]:
        """After ready: check the front is the one asked for."""
        try:
            _, headers, _ = proc.request_full("GET", "/")
        except (OSError, http.client.HTTPException) as exc:
            return f"GET / failed: {exc}", {"front": "unknown"}
        found = detect_front(proc.pid, headers.get("Server"))
        wanted = "granian" if self.front == "granian" else "gunicorn"
        return front_mismatch(wanted, found), {"front": found}


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


Server = SeedApp | MlApi | MLServer | BareFlask


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


ML_API = "ml-api-flask"
"""The row that counts as "ml-api" in the targets: ``ml-api serve --framework flask`` with every
setting at its default (the default front and runtime, whatever they are when the run happens;
the results name both)."""
ML_API_DJANGO = "ml-api-django"
"""The same with ``--framework django``."""
ML_API_NODRIFT = "ml-api-flask-nodrift"
"""ml-api Flask with drift counting off: what counting costs, against :data:`ML_API`."""
ML_API_LOG10 = "ml-api-flask-log10"
"""ml-api Flask with the prediction log at a 10 % sample: what the log costs."""
ML_API_TODAY = "ml-api-today"
"""ml-api as issue 11 found it: scikit-learn on gunicorn gthread, set explicitly so the ratio
against it survives a change of default."""
ML_API_TODAY_SERVER = MlApi(
    "flask",
    env=(("ML_API_RUNTIME", "sklearn"), ("ML_API_THREADS", "64"), ("ML_API_BATCHING", "true")),
    server="gthread",
)
BARE_FLASK = {
    "gunicorn": "bare-flask-gthread",
    "ml-api": "bare-flask-ml-api-front",
    "granian": "bare-flask-granian",
}
"""The HTTP-ceiling row of each front: plain gunicorn gthread, ml-api's own gunicorn front (its
head-reading worker and wire checks, what ``ml-api serve`` runs), granian."""

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
           "adaptive batching), simple API; 'ml-api' in the targets"),
    Target("ml-api-flask-nobatch", MlApi("flask", env=(("ML_API_BATCHING", "false"),)),
           "/predict", "seed", ALL_MODELS, "the same with ML_API_BATCHING=false"),
    Target("ml-api-django", MlApi("django"), "/predict", "seed", ALL_MODELS,
           "ml-api serve --framework django, its defaults, simple API"),
    Target(ML_API_NODRIFT, MlApi("flask", env=(("ML_API_DRIFT", "false"),)), "/predict",
           "seed", ALL_MODELS, "the same with drift counting off (ML_API_DRIFT=false): what "
           "counting every instance into its reference bins costs", default=False),
    Target(ML_API_LOG10, MlApi("flask", env=(("ML_API_PREDICTION_LOG_RATE", "0.1"),)),
           "/predict", "seed", ALL_MODELS, "the same with the prediction log on at a 10 % sample "
           "(records on stdout, as in Kubernetes)", default=False),
    Target("ml-api-flask-v2", MlApi("flask"), V2_INFER, "v2", ALL_MODELS,
           "ml-api Flask, Open Inference Protocol (V2) infer endpoint"),
    Target("ml-api-django-v2", MlApi("django"), V2_INFER, "v2", ALL_MODELS,
           "ml-api Django, Open Inference Protocol (V2) infer endpoint"),
    Target(ML_API_TODAY, ML_API_TODAY_SERVER, "/predict", "seed", ALL_MODELS,
           "ml-api before the speed work (the baseline): Flask, ML_API_RUNTIME=sklearn on "
           "gunicorn gthread (64 threads, batching on), all set explicitly"),
    Target("ml-api-flask-granian", MlApi("flask", server="granian"), "/predict", "seed",
           ALL_MODELS, "ml-api Flask with ML_API_SERVER=granian, other settings default"),
    Target("ml-api-django-granian", MlApi("django", server="granian"), "/predict", "seed",
           ALL_MODELS, "ml-api Django with ML_API_SERVER=granian, other settings default"),
    Target(BARE_FLASK["gunicorn"], BareFlask("gthread"), "/predict", "seed", ALL_MODELS,
           "HTTP ceiling: bare Flask (parse JSON, answer JSON) on gunicorn gthread, 64 threads "
           "per worker, one worker per server CPU"),
    Target(BARE_FLASK["ml-api"], BareFlask("ml-api"), "/predict", "seed", ALL_MODELS,
           "HTTP ceiling: the same bare Flask app on ml-api's own front (gunicorn with its "
           "head-reading worker and wire checks, ml-api serve's settings), one worker per server "
           "CPU"),
    Target(BARE_FLASK["granian"], BareFlask("granian"), "/predict", "seed", ALL_MODELS,
           "HTTP ceiling: the same bare Flask app on granian's WSGI interface, 64 blocking "
           "threads per worker, one worker per server CPU"),
)  # fmt: skip
"""Every row. Rows whose server is equal share one server process per model."""


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
