"""Delegated-operation workers for tests: a real `fiftyone delegated launch` process, its log, its jobs.

Example::

    from person_finder.testing.workers import start_worker, stop_worker, wait_for_states
    worker = start_worker("/tmp/worker.log")
    queued = foo.execute_operator(uri, ctx=dict(view=view, request_delegation=True, params={...}))
    wait_for_states([queued.result["id"]], timeout=240)
    log = stop_worker(worker)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def start_worker(log_path, env=None):
    """A `fiftyone delegated launch` worker (a process of its own), logging to ``log_path``."""
    log = open(log_path, "w")
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "fiftyone"), "delegated", "launch"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    proc.log_path, proc.log = log_path, log
    return proc


def wait_for_log(proc, text, timeout=120):
    """Wait until the worker's log shows ``text``; fails with the log if the worker exits or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(proc.log_path) as f:
            if text in f.read():
                return
        assert proc.poll() is None, open(proc.log_path).read()
        time.sleep(0.5)
    raise AssertionError(f"worker never printed {text!r}:\n{open(proc.log_path).read()}")


def stop_worker(proc):
    """Stop the worker (SIGINT, then SIGKILL after 30 s); returns its log."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the worker's loop exits on KeyboardInterrupt
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.log.close()
    with open(proc.log_path) as f:
        return f.read()


def wait_for_states(op_ids, timeout):
    """Wait until every delegated operation completed or failed; fails on any failure; returns their docs."""
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionRunState

    service = DelegatedOperationService()
    deadline = time.time() + timeout
    states = []
    while time.time() < deadline:
        docs = [service.get(i) for i in op_ids]
        states = [d.run_state for d in docs]
        if all(s in (ExecutionRunState.COMPLETED, ExecutionRunState.FAILED) for s in states):
            failed = [d.result.error for d in docs if d.run_state == ExecutionRunState.FAILED]
            assert not failed, failed
            return docs
        time.sleep(1)
    raise AssertionError(f"operations not finished after {timeout}s: {states}")
