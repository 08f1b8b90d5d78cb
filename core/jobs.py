"""How the dataset's delegated jobs went: queued, running (with progress), completed (with its result) or failed.

A job scheduled from the App shows only "successfully scheduled"; this reads
FiftyOne's own delegated-operation records (MongoDB) so the panel can say
what became of it, including why it failed.

Example::

    from person_finder.core.jobs import recent_jobs
    recent_jobs(dataset, "@openset-reid/person-finder/index_persons")
    # [{"state": "failed", "error": "ModelLoadError: ...", "progress": None, "message": None, "at": "..."}]
"""

from __future__ import annotations

from . import defaults


def recent_jobs(samples, operator_uri, limit=defaults.PANEL_RECENT_JOBS):
    """The newest ``limit`` delegated runs of ``operator_uri`` on ``samples``' dataset, newest first.

    Each is ``{"id", "state", "progress", "message", "error", "at"}``:
    ``message`` is the operator's readable result (completed jobs), ``error``
    the last line of the failure (failed jobs), ``at`` when it last changed.

    Example::

        [j["state"] for j in recent_jobs(dataset, uri)]   # ["completed", "failed"]
    """
    from fiftyone.factory import DelegatedOperationPagingParams, SortByField
    from fiftyone.operators.delegated import DelegatedOperationService

    paging = DelegatedOperationPagingParams(sort_by=SortByField.QUEUED_AT, limit=int(limit))
    docs = DelegatedOperationService().list_operations(operator=operator_uri, dataset_name=samples._root_dataset.name,
                                                       paging=paging)
    jobs = []
    for doc in docs:
        result = doc.result
        error = (getattr(result, "error", None) or "").strip().splitlines() if result is not None else []
        outcome = getattr(result, "result", None) if result is not None else None
        progress = getattr(doc.status, "progress", None) if doc.status is not None else None
        jobs.append({"id": str(doc.id), "state": str(doc.run_state), "progress": progress,
                     "message": outcome.get("message") if isinstance(outcome, dict) else None,
                     "error": error[-1] if error else None,
                     "at": (doc.updated_at or doc.queued_at).isoformat(timespec="seconds")})
    return jobs
