"""Person attributes and descriptions with Gemini, through ``google-genai``.

Structured output against the pydantic schema, a thread pool with a
concurrency limit and a requests-per-minute cap, retries with exponential
backoff and jitter (``tenacity``, as google-genai itself uses) on 429, 5xx,
timeouts, refused connections and malformed answers (bad JSON in the answer,
or a 200 whose body is HTML, cut short or has a malformed usage block);
400 / 401 / 403 / 404 stop the run with a clear message. Every request has a
total deadline (``timeout_s``, the whole answer included) and a size cap
(``max_answer_bytes``): a larger answer becomes that sample's error. Only
files that decode as JPEG / PNG / WebP images are sent. Each sample ends with ``attributes`` or
``attributes_error``; results are written in chunks, re-runs only do the
missing samples, and the run (model, prompt version, tokens, failures) is
recorded on the dataset. The API key is never written or logged.

Example::

    from person_finder.core.attributes.gemini import generate_attributes
    generate_attributes(dataset, dry_run=True)            # {'calls': ..., 'estimated_input_tokens': ...}
    generate_attributes(dataset)                          # key from GEMINI_API_KEY
    dataset.load_run_results("person_attributes").prompt_tokens
"""

from __future__ import annotations

import collections
import io
import json
import logging
import math
import os
import sys
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed

from pydantic import BaseModel

from .. import contract, defaults
from ..progress import notify
from .schema import attribute_schema
from .store import ChunkWriter, check_attributes_field, pending, save_run, to_document

logger = logging.getLogger(__name__)

PROMPT = """You see {views} of one person, cropped from surveillance-style footage.
Fill in every field of the schema with what is visible. Use "unknown" for anything you cannot see clearly;
never guess. Colours come from the palette, main colour first. Set a bag or accessory to "yes" only if you
can see it, and give its colour. The description is one sentence about clothing, bags and accessories that
states only what is visible{avoid}."""
NOT_SENSITIVE = "; do not mention ethnicity, skin colour or anyone's identity"

#: HTTP codes that stop the run: the request itself is wrong, retrying cannot help.
FATAL_CODES = (400, 401, 403, 404)
#: Finish reasons meaning the answer was withheld.
BLOCKED_FINISH = ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY")


class GeminiRequestRefused(RuntimeError):
    """Gemini refused a request (400 / 401 / 403 / 404); the run stopped, finished samples were kept."""


#: Image formats (as PIL names them) sent to Gemini, with their MIME types.
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class _BadAnswer(Exception):
    """Malformed JSON, a body that is not the API's JSON, or no candidates: worth another attempt."""


class _Deadline(Exception):
    """The request ran past its total deadline (e.g. a server trickling bytes): worth another attempt."""


class _TooLarge(Exception):
    """The answer is larger than the cap: not retried, recorded on the sample."""


class _NotAnImage(Exception):
    """A sample's file is not an image Gemini takes: nothing is sent, recorded on the sample."""


class _Blocked(Exception):
    """A safety block: not retried, recorded on the sample."""


class _Cancelled(Exception):
    """The run stopped before this call was sent."""


def prompt_text(views=1, include_sensitive=False):
    """The instruction sent with the image(s)."""
    return PROMPT.format(views="one image" if views == 1 else f"{views} images",
                         avoid="" if include_sensitive else NOT_SENSITIVE)


def resolve_api_key(api_key=None):
    """``api_key`` if given, else the ``GEMINI_API_KEY`` environment variable; a clear error if neither."""
    key = api_key or os.environ.get(contract.GEMINI_SECRET)
    if not key:
        raise ValueError(
            f"No Gemini API key: set the plugin secret / environment variable {contract.GEMINI_SECRET}, "
            "pass api_key=..., or use the offline provider 'zero-shot'"
        )
    return key


class RateLimiter:
    """Spaces requests evenly below ``requests_per_minute`` (0 = no cap); :meth:`pause` holds every worker.

    Example::

        limiter = RateLimiter(120)
        limiter.acquire()      # returns when this request may be sent
    """

    def __init__(self, requests_per_minute, headroom=defaults.GEMINI_RPM_HEADROOM):
        self.interval = 60.0 / (requests_per_minute * headroom) if requests_per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self):
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)

    def pause(self, seconds):
        """No request starts in the next ``seconds`` (after a 429)."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


def _is_transient(exc):
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return exc.code in (408, 429) or (exc.code or 0) >= 500
    if isinstance(exc, (_BadAnswer, _Deadline)):
        return True
    # httpx / httpx2 timeouts, refused connections, dropped connections
    return any(c.__name__ == "TransportError" and c.__module__.split(".")[0].startswith("httpx")
               for c in type(exc).__mro__)


def _is_fatal(exc):
    from google.genai import errors

    return isinstance(exc, errors.APIError) and exc.code in FATAL_CODES


def _short(exc):
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return f"{exc.code} {exc.status or ''}".strip()
    if isinstance(exc, (_BadAnswer, _Blocked, _Deadline, _TooLarge, _NotAnImage)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:300]


def _guard_body(deadline_s, max_bytes):
    """httpx event hooks giving every request a total deadline and its answer a size cap.

    httpx's own timeout applies to each read, so a server sending one byte
    a second never trips it; these hooks check the clock and the size on
    every chunk of the body as it arrives and stop the download.
    """
    def on_request(request):
        request.extensions = {**request.extensions, "person_finder_deadline": time.monotonic() + deadline_s}

    def on_response(response):
        deadline = response.request.extensions.get("person_finder_deadline", time.monotonic() + deadline_s)
        base = sys.modules[type(response).__module__.partition(".")[0]].SyncByteStream  # httpx or httpx2

        class Guarded(base):
            def __init__(self, stream):
                self._stream = stream

            def __iter__(self):
                size = 0
                for chunk in self._stream:
                    size += len(chunk)
                    if size > max_bytes:
                        raise _TooLarge(f"answer too large (over {max_bytes} bytes); not stored")
                    if time.monotonic() > deadline:
                        raise _Deadline(f"no complete answer within {deadline_s:g} s")
                    yield chunk

            def close(self):
                self._stream.close()

        response.stream = Guarded(response.stream)

    return {"request": [on_request], "response": [on_response]}


class GeminiCaller:
    """One google-genai client plus the rate limiter, retries and usage counters of a run."""

    def __init__(self, api_key, model=defaults.GEMINI_MODEL, base_url=None, timeout_s=defaults.GEMINI_TIMEOUT_S,
                 temperature=defaults.GEMINI_TEMPERATURE, max_attempts=defaults.GEMINI_MAX_ATTEMPTS,
                 backoff_initial_s=defaults.GEMINI_BACKOFF_INITIAL_S, backoff_max_s=defaults.GEMINI_BACKOFF_MAX_S,
                 requests_per_minute=defaults.GEMINI_REQUESTS_PER_MINUTE, rpm_headroom=defaults.GEMINI_RPM_HEADROOM,
                 max_answer_bytes=defaults.GEMINI_MAX_ANSWER_BYTES):
        from google import genai
        from google.genai import types

        self._types = types
        self._key = api_key  # only to keep it out of messages
        self._client = genai.Client(api_key=api_key, http_options=types.HttpOptions(
            base_url=base_url, timeout=int(timeout_s * 1000),
            client_args={"event_hooks": _guard_body(float(timeout_s), int(max_answer_bytes))}))
        self.model = model
        self.temperature = temperature
        self.max_attempts = int(max_attempts)
        self.backoff = (float(backoff_initial_s), float(backoff_max_s))
        self.limiter = RateLimiter(requests_per_minute, rpm_headroom)
        self.stats = collections.Counter()
        self._lock = threading.Lock()

    def _count(self, **counts):
        with self._lock:
            self.stats.update({k: v for k, v in counts.items() if v})

    def generate(self, parts, schema):
        """Send ``parts`` and return the answer parsed into ``schema``, retrying transient failures."""
        import tenacity

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=tenacity.wait_exponential_jitter(initial=self.backoff[0], max=self.backoff[1], jitter=self.backoff[0]),
            retry=tenacity.retry_if_exception(_is_transient),
            before_sleep=self._before_retry,
            reraise=True,
        )
        self._count(calls=1)
        return retrying(self._once, parts, schema)

    def _once(self, parts, schema):
        self.limiter.acquire()
        self._count(attempts=1)
        config = self._types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema,
                                                   temperature=self.temperature, automatic_function_calling=(
                                                       self._types.AutomaticFunctionCallingConfig(disable=True)))
        from pydantic import ValidationError

        try:
            response = self._client.models.generate_content(model=self.model, contents=parts, config=config)
        except (json.JSONDecodeError, ValidationError) as exc:  # a 200 that is not the API's JSON
            raise _BadAnswer(f"malformed response body ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from exc
        usage = response.usage_metadata
        if usage is not None:
            self._count(prompt_tokens=usage.prompt_token_count or 0, output_tokens=usage.candidates_token_count or 0)
        return _parse(response, schema)

    def _before_retry(self, state):
        exc = state.outcome.exception()
        delay = state.next_action.sleep
        if getattr(exc, "code", None) == 429:
            self._count(rate_limited=1)
            self.limiter.pause(delay)  # every worker backs off, not just this one: no storm of 429s
        self._count(retries=1)
        logger.info("Gemini call failed (%s); attempt %d of %d, retrying in %.1f s", _short(exc),
                    state.attempt_number, self.max_attempts, delay)


def _parse(response, schema):
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        raise _Blocked(f"blocked by Gemini ({_name(feedback.block_reason)})")
    if not response.candidates:
        raise _BadAnswer("empty answer (no candidates)")
    finish = _name(response.candidates[0].finish_reason)
    if finish in BLOCKED_FINISH:
        raise _Blocked(f"answer withheld by Gemini ({finish})")
    if not isinstance(response.parsed, schema):
        raise _BadAnswer(f"answer does not follow the schema (finish reason {finish})")
    return response.parsed


def _name(enum_value):
    return getattr(enum_value, "value", None) or str(enum_value)


def run_calls(caller, jobs, make_parts, schema, concurrency, on_result, stop=None):
    """Run ``caller.generate(make_parts(job), schema)`` for every job on ``concurrency`` threads.

    ``on_result(job, answer, error)`` is called in this thread as calls finish
    (``error`` is a message for the sample). A 400 / 401 / 403 / 404 cancels
    what was not sent and is re-raised after the calls in flight finished.
    """
    stop = stop or threading.Event()

    def work(job):
        if stop.is_set():
            raise _Cancelled()
        try:
            return caller.generate(make_parts(job), schema)
        except Exception as exc:
            if _is_fatal(exc):
                stop.set()  # before this worker takes the next job
            raise

    fatal = None
    with ThreadPoolExecutor(max_workers=max(int(concurrency), 1)) as pool:
        futures = {pool.submit(work, job): job for job in jobs}
        try:
            for future in as_completed(futures):
                try:
                    on_result(futures[future], future.result(), None)
                except (CancelledError, _Cancelled):
                    continue
                except Exception as exc:  # noqa: BLE001 -- every failure ends on the sample or stops the run
                    if _is_fatal(exc):
                        if fatal is None:
                            fatal = exc
                            for f in futures:
                                f.cancel()
                        continue
                    attempts = f" after {caller.max_attempts} attempts" if _is_transient(exc) else ""
                    on_result(futures[future], None, f"{_short(exc)}{attempts}")
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            raise
    if fatal is not None:
        raise fatal


def calls_until_refused(caller, jobs, make_parts, schema, concurrency, on_result):
    """:func:`run_calls`, returning None, or the message of a refusal (400 / 401 / 403 / 404) that stopped it.

    The message names what to fix and never holds the key.

    Example::

        stopped = calls_until_refused(caller, jobs, make_parts, Verdict, 8, on_result)
        if stopped:
            raise GeminiRequestRefused(stopped)
    """
    try:
        run_calls(caller, jobs, make_parts, schema, concurrency, on_result)
    except Exception as exc:
        if not _is_fatal(exc):
            raise
        return _refusal(exc, caller.model, caller._key)
    return None


def image_bytes(path):
    """The bytes and MIME type of the image file at ``path``, checked by decoding it; raises if it is no image.

    Example::

        data, mime = image_bytes("crop.jpg")     # (b"\\xff\\xd8...", "image/jpeg")
    """
    from PIL import Image

    with open(path, "rb") as f:
        data = f.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except Exception as exc:  # noqa: BLE001 - any decoding failure means: not an image
        raise _NotAnImage(f"{os.path.basename(path)!r} is not a readable image; nothing was sent") from exc
    if kind not in IMAGE_TYPES:
        raise _NotAnImage(f"{os.path.basename(path)!r} is a {kind} image; only {sorted(IMAGE_TYPES)} are sent")
    return data, IMAGE_TYPES[kind]


def image_parts(filepaths, text):
    """google-genai parts: the image files (inline bytes, each checked by :func:`image_bytes`), then the text."""
    from google.genai import types

    parts = []
    for path in filepaths:
        data, mime = image_bytes(path)
        parts.append(types.Part.from_bytes(data=data, mime_type=mime))
    parts.append(text)
    return parts


def plan_jobs(samples, views_per_call=1, group_field=contract.PERSON_ID_FIELD):
    """Calls to make: lists of ``(sample_id, filepath)``; one view per call, or up to N views of one identity."""
    ids, paths = samples.values("id"), samples.values("filepath")
    if views_per_call <= 1:
        return [[(i, p)] for i, p in zip(ids, paths)]
    groups = collections.defaultdict(list)
    for i, p, g in zip(ids, paths, samples.values(group_field)):
        groups[("id", g) if g is not None else ("sample", i)].append((i, p))
    return [views[k:k + views_per_call] for views in groups.values() for k in range(0, len(views), views_per_call)]


def estimate_usage(jobs, include_sensitive=False):
    """Rough token counts of ``jobs``: images at 258 tokens, text and schema at 4 characters per token."""
    schema_chars = len(json.dumps(attribute_schema(include_sensitive).model_json_schema()))
    text = sum(math.ceil((len(prompt_text(len(j), include_sensitive)) + schema_chars) / 4) for j in jobs)
    images = sum(len(j) for j in jobs)
    return {"calls": len(jobs), "images": images,
            "estimated_input_tokens": text + images * defaults.GEMINI_IMAGE_TOKENS,
            "estimated_output_tokens": len(jobs) * defaults.GEMINI_OUTPUT_TOKENS_ESTIMATE}


def _validate(views_per_call, concurrency, requests_per_minute, chunk_size, samples, group_field):
    for name, value, low in (("views_per_call", views_per_call, 1), ("concurrency", concurrency, 1),
                             ("requests_per_minute", requests_per_minute, 0), ("chunk_size", chunk_size, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r}; use an integer >= {low}")
    if views_per_call > 1 and not samples.has_field(group_field):
        raise ValueError(f"views_per_call={views_per_call} groups views by {group_field!r}, which this dataset "
                         f"lacks; use views_per_call=1 or one of {sorted(samples.get_field_schema())}")


def _refusal(exc, model, key):
    hints = {400: "the request is invalid (check the model name and the images)",
             401: "the API key was not accepted",
             403: f"the API key was refused (check the {contract.GEMINI_SECRET} secret and that it may use Gemini)",
             404: f"model {model!r} was not found (use a current model such as {defaults.GEMINI_MODEL!r})"}
    detail = (exc.message or "").replace(key, "***")
    return (f"Gemini refused the request with {exc.code} {exc.status or ''}: {hints.get(exc.code, detail)} "
            f"[{detail}]. The run stopped; finished samples were saved; fix this and re-run to continue.")


def generate_attributes(samples, api_key=None, model=defaults.GEMINI_MODEL,
                        views_per_call=defaults.GEMINI_VIEWS_PER_CALL, group_field=contract.PERSON_ID_FIELD,
                        include_sensitive=defaults.INCLUDE_SENSITIVE_ATTRIBUTES, overwrite=False, dry_run=False,
                        concurrency=defaults.GEMINI_CONCURRENCY,
                        requests_per_minute=defaults.GEMINI_REQUESTS_PER_MINUTE,
                        max_attempts=defaults.GEMINI_MAX_ATTEMPTS, timeout_s=defaults.GEMINI_TIMEOUT_S,
                        backoff_initial_s=defaults.GEMINI_BACKOFF_INITIAL_S,
                        max_answer_bytes=defaults.GEMINI_MAX_ANSWER_BYTES,
                        chunk_size=defaults.ATTRIBUTES_CHUNK_SIZE, field=contract.ATTRIBUTES_FIELD,
                        error_field=contract.ATTRIBUTES_ERROR_FIELD, run_key=contract.ATTRIBUTES_RUN_KEY,
                        base_url=None, on_progress=None):
    """Generate ``field`` for every sample of ``samples`` that lacks it (all with ``overwrite``).

    Returns a summary dict; with ``dry_run`` only the planned calls and
    estimated tokens. Raises :class:`GeminiRequestRefused` (after saving the
    finished samples) when Gemini answers 400 / 401 / 403 / 404.

    Example::

        generate_attributes(dataset.match_tags("train"), views_per_call=4, concurrency=8)
    """
    _validate(views_per_call, concurrency, requests_per_minute, chunk_size, samples, group_field)
    check_attributes_field(samples, field)
    todo = pending(samples, field, overwrite)
    jobs = plan_jobs(todo, views_per_call, group_field)
    estimate = estimate_usage(jobs, include_sensitive)
    if dry_run:
        return {"dry_run": True, "samples": sum(len(j) for j in jobs), "model": model, **estimate}
    if not jobs:  # nothing to do: the last run's record stays the truth
        return {"todo": 0, "attributed": 0, "failed": 0, "calls": 0, "run_key": run_key}
    key = resolve_api_key(api_key)
    writer = ChunkWriter(samples, field=field, error_field=error_field, chunk_size=chunk_size)
    return attribute_calls(samples, jobs, writer, key, model=model, views_per_call=views_per_call,
                           include_sensitive=include_sensitive, concurrency=concurrency,
                           requests_per_minute=requests_per_minute, run_key=run_key, on_progress=on_progress,
                           base_url=base_url, timeout_s=timeout_s, max_attempts=max_attempts,
                           backoff_initial_s=backoff_initial_s, max_answer_bytes=max_answer_bytes)


def attribute_calls(samples, jobs, writer, api_key, model=defaults.GEMINI_MODEL,
                    views_per_call=defaults.GEMINI_VIEWS_PER_CALL,
                    include_sensitive=defaults.INCLUDE_SENSITIVE_ATTRIBUTES, concurrency=defaults.GEMINI_CONCURRENCY,
                    requests_per_minute=defaults.GEMINI_REQUESTS_PER_MINUTE, run_key=contract.ATTRIBUTES_RUN_KEY,
                    on_progress=None, **caller_kwargs):
    """Ask Gemini for the attributes of each job (a list of ``(key, image path)``); ``writer`` stores them.

    The shared engine of :func:`generate_attributes` (keys are sample ids,
    a :class:`~.store.ChunkWriter`) and of attributes for indexed persons
    (keys are label ids, a :class:`~.store.LabelChunkWriter`): retries, rate
    limit, chunked writes, the run record on ``samples`` under ``run_key``.
    Raises :class:`GeminiRequestRefused` after saving what finished.

    Example::

        attribute_calls(dataset, [[(sample.id, sample.filepath)]], ChunkWriter(dataset), api_key="...")
    """
    caller = GeminiCaller(api_key, model=model, requests_per_minute=requests_per_minute, **caller_kwargs)
    schema = attribute_schema(include_sensitive)
    texts = {n: prompt_text(n, include_sensitive) for n in {len(j) for j in jobs}}
    errors = collections.Counter()
    done = [0]
    started = time.time()

    def on_result(job, answer, error):
        for sample_id, _ in job:
            if answer is not None:
                writer.add(sample_id, to_document(answer, provider="gemini", model=model, views_in_call=len(job)))
            else:
                writer.add(sample_id, error=f"gemini: {error}")
        if error:
            errors[error] += len(job)
        done[0] += 1
        notify(on_progress, done[0] / max(len(jobs), 1), f"{done[0]}/{len(jobs)} Gemini calls")

    stopped = None
    try:
        stopped = calls_until_refused(caller, jobs, lambda job: image_parts([p for _, p in job], texts[len(job)]),
                                      schema, concurrency, on_result)
    finally:
        try:
            writer.close()
        finally:  # the run record is written whatever happened to the last chunk
            config = {"provider": "gemini", "model": model, "prompt_version": contract.ATTRIBUTES_PROMPT_VERSION,
                      "views_per_call": views_per_call, "include_sensitive": bool(include_sensitive),
                      "concurrency": concurrency, "requests_per_minute": requests_per_minute,
                      "field": writer.field}
            results = {"todo": sum(len(j) for j in jobs), "attributed": writer.written, "failed": writer.failed,
                       "unstored": writer.unstored, **usage_counts(caller),
                       "errors": dict(errors.most_common(20)), "stopped": stopped,
                       "duration_s": round(time.time() - started, 2)}
            save_run(samples, run_key, config, results)
    if stopped:
        raise GeminiRequestRefused(stopped)
    return {**results, "run_key": run_key}


def usage_counts(caller):
    """The calls, attempts, retries, 429s and tokens a :class:`GeminiCaller` counted, for a run record."""
    return {name: caller.stats[name] for name in ("calls", "attempts", "retries", "rate_limited", "prompt_tokens",
                                                  "output_tokens")}


class Rewrite(BaseModel):
    """Gemini's answer when rewriting a description."""

    description: str


REWRITE_PROMPT = """Rewrite this description of one person as one fluent sentence. Keep every fact, add none,
and do not mention ethnicity, skin colour or identity.
Facts: {template}
Descriptions of single views (may disagree; trust the facts): {views}"""


def rewrite_descriptions(items, api_key=None, model=defaults.GEMINI_MODEL, concurrency=defaults.GEMINI_CONCURRENCY,
                         requests_per_minute=defaults.GEMINI_REQUESTS_PER_MINUTE, base_url=None, **caller_kwargs):
    """Fluent descriptions from template ones: ``{key: (template, [view descriptions])}`` -> ``{key: text}``.

    Keys whose call failed are left out (the caller keeps the template).

    Example::

        rewrite_descriptions({7: ("a man in a red t-shirt", ["man, red shirt"])})
    """
    caller = GeminiCaller(resolve_api_key(api_key), model=model, base_url=base_url,
                          requests_per_minute=requests_per_minute, **caller_kwargs)
    out = {}

    def on_result(key, answer, error):
        if answer is not None and answer.description.strip():
            out[key] = answer.description.strip()
        else:
            logger.warning("description rewrite failed for %s: %s", key, error)

    run_calls(caller, list(items), lambda key: [REWRITE_PROMPT.format(template=items[key][0],
                                                                      views="; ".join(items[key][1]) or "none")],
              Rewrite, concurrency, on_result)
    return out
