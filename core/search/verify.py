"""Gemini checks the top results of a query: one structured verdict per candidate, cached, costed, re-ranked.

:func:`verify_persons` ranks the query (:func:`core.search.rank_persons`,
with its constraints), sends each of the top ``k`` candidates' crop with the
query to Gemini (structured output :class:`Verdict`: match yes / no /
unsure, and which constraint failed), writes the verdict on the candidate's
detection (``verification``: query, match, failed_constraint, model, or an
error) and returns the rows re-ranked: yes before unsure before no, the
ranking kept within each. Verdicts are cached per (model, query, crop) in
the dataset's execution store, so a re-run (or a panel refresh) sends only
the candidates without one; failures are not cached and end on the
detection as an error. Calls go through :mod:`core.attributes.gemini`
(retries, rate limit, refusals, key handling). ``dry_run`` returns the
estimate (calls, tokens, dollars) without sending anything.

Example::

    from person_finder.core.search.verify import verify_persons
    verify_persons(dataset, "a woman in a white t-shirt with a brown shoulder bag", k=10, dry_run=True)
    rows = verify_persons(dataset, "a woman in a white t-shirt", k=10)["rows"]
    rows[0]["verification"]      # {"match": "yes", "failed_constraint": None, ...}
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import typing

from pydantic import BaseModel, Field

from .. import contract, defaults
from ..progress import notify


class Verdict(BaseModel):
    """Gemini's answer for one candidate."""

    match: typing.Literal["yes", "no", "unsure"] = Field(description="does the person match the whole description")
    failed_constraint: typing.Optional[str] = Field(
        default=None, description="with match 'no': the attribute that differs (e.g. upper_colors), else null")


PROMPT = """A user searches surveillance footage for: "{query}".{constraints}
Does the person in this image match? Answer "yes" only if everything stated is visibly true, "no" if something
stated is visibly different (name that attribute in failed_constraint), "unsure" if the image does not show it."""


def prompt_text(query, constraints):
    """The instruction sent with a candidate's crop."""
    from ..attributes.constraints import format_constraints

    listed = f"\nStated attributes: {format_constraints(constraints)}." if constraints else ""
    return PROMPT.format(query=query.replace('"', "'"), constraints=listed)


def estimate_cost(calls, query, constraints, model=defaults.GEMINI_MODEL):
    """Calls, tokens and dollars of verifying ``calls`` candidates (images at 258 tokens; list prices in defaults).

    Example::

        estimate_cost(10, "red top", {"upper_colors": "red"})["estimated_cost_usd"]
    """
    text = math.ceil((len(prompt_text(query, constraints)) + len(json.dumps(Verdict.model_json_schema()))) / 4)
    tokens_in = calls * (text + defaults.GEMINI_IMAGE_TOKENS)
    tokens_out = calls * defaults.VERIFY_OUTPUT_TOKENS_ESTIMATE
    price = defaults.GEMINI_PRICE_PER_MILLION
    return {"calls": calls, "model": model, "estimated_input_tokens": tokens_in,
            "estimated_output_tokens": tokens_out,
            "estimated_cost_usd": round((tokens_in * price["input"] + tokens_out * price["output"]) / 1e6, 6)}


def _cache(dataset):
    from fiftyone.operators.store import ExecutionStore

    return ExecutionStore.create(contract.VERIFY_CACHE_STORE, dataset._doc.id)


def cache_key(model, query, constraints, label_id):
    """The cache key of one verdict: the model, the query and its constraints, and the crop's label id."""
    text = json.dumps([model, query, sorted((constraints or {}).items())])
    return f"{hashlib.sha1(text.encode()).hexdigest()[:20]}-{label_id}"


def cached_verdicts(samples, query, constraints, label_ids, model=defaults.GEMINI_MODEL):
    """``{label id: verdict}`` already cached for ``query`` (and its constraints); sends nothing.

    Example::

        cached_verdicts(dataset, "red top", {"upper_colors": "red"}, [row["label_id"] for row in rows])
    """
    cache = _cache(samples._root_dataset)
    found = {label_id: cache.get(cache_key(model, query, constraints or {}, label_id)) for label_id in label_ids}
    return {label_id: verdict for label_id, verdict in found.items() if verdict is not None}


def _write(dataset, path, verdicts):
    if verdicts:
        dataset.set_label_values(f"{path}.{contract.VERIFICATION_ATTR}", verdicts, dynamic=True)


def _reranked(rows, verdicts):
    bonus = defaults.VERIFY_BONUS
    for row in rows:
        row[contract.VERIFICATION_ATTR] = verdicts.get(row["label_id"])
    # stable: the ranking is kept within yes / unsure (or error, or not verified) / no
    return sorted(rows, key=lambda r: -bonus.get((r[contract.VERIFICATION_ATTR] or {}).get("match"), 0.0))


def verify_persons(samples, query, k=defaults.VERIFY_TOP_K, constraints=None,
                   attribute_weight=defaults.ATTRIBUTE_WEIGHT,
                   brain_key=contract.PERSON_INDEX_KEY, api_key=None, model=defaults.GEMINI_MODEL,
                   concurrency=defaults.GEMINI_CONCURRENCY, requests_per_minute=defaults.GEMINI_REQUESTS_PER_MINUTE,
                   crop_folder=None, dry_run=False, run_key=contract.VERIFY_RUN_KEY, on_progress=None,
                   **caller_kwargs):
    """Verify the top ``k`` results of ``query`` with Gemini; returns ``{"rows": re-ranked rows, ...counts}``.

    ``constraints`` / ``attribute_weight`` rank the candidates as
    :func:`core.search.rank_persons` does and are stated in the prompt.
    ``caller_kwargs`` go to :class:`core.attributes.gemini.GeminiCaller`
    (base_url, timeout_s, max_attempts, backoff_initial_s, ...). With
    ``dry_run`` only the estimate of the uncached calls is returned. Raises
    :class:`core.attributes.gemini.GeminiRequestRefused` on 400 / 401 / 403 /
    404, after writing the finished verdicts.

    Example::

        out = verify_persons(dataset, "red top and blue trousers", k=10, constraints={"upper_colors": "red"})
        out["verified"], out["failed"], out["cached"], out["rows"][0]["verification"]["match"]
    """
    from ..attributes.gemini import (GeminiCaller, GeminiRequestRefused, calls_until_refused, image_parts,
                                     resolve_api_key, usage_counts)
    from ..attributes.store import save_run
    from .crops import crop_files, default_crop_folder
    from .fusion import check_fusion
    from .query import rank_persons

    if int(k) < 1:
        raise ValueError(f"k={k!r}; verify at least 1 candidate")
    constraints, weight, _ = check_fusion(constraints, attribute_weight, False)
    rows = rank_persons(samples, query, brain_key=brain_key, k=int(k), constraints=constraints or None,
                        attribute_weight=weight)
    dataset = samples._root_dataset
    cache = _cache(dataset)
    keys = {r["label_id"]: cache_key(model, query, constraints, r["label_id"]) for r in rows}
    verdicts = {label_id: cache.get(key) for label_id, key in keys.items()}
    todo = [r for r in rows if verdicts[r["label_id"]] is None]
    estimate = estimate_cost(len(todo), query, constraints, model)
    if dry_run:
        return {"dry_run": True, "candidates": len(rows), "cached": len(rows) - len(todo), **estimate}
    config = dataset.get_brain_info(brain_key).config
    path = ("frames." if dataset.media_type == "video" else "") + f"{config.patches_field}.detections"
    cached = {label_id: v for label_id, v in verdicts.items() if v is not None}
    _write(dataset, path, cached)
    stopped, started, caller, fresh = None, time.time(), None, {}
    if todo:
        key = resolve_api_key(api_key)
        caller = GeminiCaller(key, model=model, requests_per_minute=requests_per_minute, **caller_kwargs)
        folder = crop_folder or default_crop_folder(dataset)
        crops = crop_files([{"label_id": r["label_id"], "filepath": r["filepath"], "frame_number": r["frame_number"],
                             "box": r["bounding_box"]} for r in todo], folder)
        text = prompt_text(query, constraints)

        def on_result(row, answer, error):
            if answer is not None:
                fresh[row["label_id"]] = {"query": query, "model": model, **answer.model_dump()}
                cache.set(keys[row["label_id"]], fresh[row["label_id"]])
            else:
                fresh[row["label_id"]] = {"query": query, "model": model, "error": f"gemini: {error}"}
            notify(on_progress, len(fresh) / len(todo), f"{len(fresh)}/{len(todo)} candidates verified")

        for row in todo:
            if row["label_id"] not in crops:
                on_result(row, None, "cannot read the image or frame of this person")
        try:
            stopped = calls_until_refused(caller, [r for r in todo if r["label_id"] in crops],
                                          lambda r: image_parts([crops[r["label_id"]]], text), Verdict,
                                          concurrency, on_result)
        finally:
            _write(dataset, path, fresh)
            verdicts.update(fresh)
    failed = sum(1 for v in fresh.values() if "error" in v)
    results = {"candidates": len(rows), "cached": len(cached), "verified": len(fresh) - failed, "failed": failed,
               **(usage_counts(caller) if caller else {}), **{n: v for n, v in estimate.items() if n != "model"},
               "stopped": stopped, "duration_s": round(time.time() - started, 2)}
    save_run(samples, run_key, {"query": query, "constraints": constraints, "model": model, "k": int(k),
                                "concurrency": concurrency, "requests_per_minute": requests_per_minute}, results)
    if stopped:
        raise GeminiRequestRefused(stopped)
    return {**results, "rows": _reranked(rows, {i: v for i, v in verdicts.items() if v is not None})}
