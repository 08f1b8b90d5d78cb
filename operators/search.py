"""Operators over ``core.search``: index persons (delegated by default), search persons, build a text index."""

from __future__ import annotations

from ..core import contract, defaults
from .base import Param, PersonFinderOperator, backend_param, progress_reporter, warn_without_gemini_key



def _model_path_check(hub_ids):
    def check(value):
        from ..core.models.loading import missing_local_path

        return missing_local_path(value, hub_ids=hub_ids)

    return check


MATCHER_PARAM = Param("matcher", default=defaults.MATCHER_MODEL, required=True, label="Matcher",
                      description="Hugging Face id or local folder of a SigLIP / SigLIP 2 / CLIP model",
                      check=_model_path_check(hub_ids=True))


def _is_video(ctx):
    return ctx.dataset is not None and ctx.dataset.media_type == "video"


def _detections_fields(ctx):
    from ..core.search import detections_fields

    return detections_fields(ctx.dataset, exclude=[contract.PERSONS_FIELD]) if ctx.dataset else []


def _has_attributes(ctx):
    """Whether the persons carry merged attributes (attribute_indexed_persons ran): then constraints apply."""
    prefix = "frames." if _is_video(ctx) else ""
    return ctx.dataset is not None and ctx.dataset.has_field(
        f"{prefix}{contract.PERSONS_FIELD}.detections.{contract.MERGED_ATTRIBUTES_FIELD}")


def _parsed_query(params):
    from ..core.attributes.constraints import format_constraints, parse_offline

    query = str(params.get("query") or "").strip()
    return format_constraints(parse_offline(query)) if query else ""


def _constraints_check(text):
    from ..core.attributes.constraints import read_constraints

    try:
        read_constraints(text)
    except ValueError as e:
        return str(e)
    return None


def _cosine(params):
    return params.get("threshold_type", "cosine") == "cosine"


class IndexPersons(PersonFinderOperator):
    """Find the people in images / videos, track them, embed them once, and index the embeddings."""

    name, label = "index_persons", "index persons"
    description = ("Detect (or read) people, track them in videos and store their SigLIP embeddings "
                   "so text searches only embed the text")
    params = (
        MATCHER_PARAM,
        Param("detections_field", "enum", choices=_detections_fields, label="Existing detections",
              description="Use these boxes instead of running the detector (left empty: run YOLO)"),
        Param("detector", default=defaults.DETECTOR_MODEL, label="Detector",
              description="Ultralytics weights name, or a .pt / .onnx / .yaml file (class person only; "
                          ".pt is loaded with weights_only=True, so it cannot run code)",
              check=_model_path_check(hub_ids=False)),
        Param("confidence", "float", default=defaults.DETECTOR_CONFIDENCE, min=0.0, max=1.0,
              label="Detector confidence"),
        Param("detect_every", "int", default=defaults.VIDEO_DETECT_EVERY, min=1, label="Detect every k-th frame",
              when=_is_video),
        Param("refresh_frames", "int", default=defaults.TRACK_REFRESH_FRAMES, min=1,
              label="Re-embed a track every N frames", when=_is_video),
        Param("tracker", "enum", default=defaults.TRACKER, choices=defaults.TRACKERS, view="radio", label="Tracker",
              when=_is_video),
        Param("brain_key", default=contract.PERSON_INDEX_KEY, label="Index name (brain key)"),
        backend_param(),
        Param("runtime", "enum", default=defaults.INFERENCE_RUNTIME, choices=defaults.INFERENCE_RUNTIMES,
              label="Inference runtime", description="onnx: detector and image tower on ONNX Runtime (CPU)"),
        Param("overwrite", "bool", default=False, label="Redo everything",
              description="Off: only samples not yet indexed are processed"),
    )

    def run(self, ctx, **params):
        from ..core.search import index_persons

        return index_persons(ctx.target_view(), on_progress=progress_reporter(ctx), **params)

    def summarize(self, ctx, result):
        return index_summary(result, video=_is_video(ctx))


class SearchPersons(PersonFinderOperator):
    """Score every indexed person against a text query, mark matches and show the best first."""

    name, label = "search_persons", "search persons"
    description = "Find people by description, e.g. 'a woman in a white t-shirt with a brown shoulder bag'"
    execution = "immediate"
    params = (
        Param("query", required=True, label="Describe the person", description="e.g. 'red top and blue trousers'",
              check=lambda query: None if str(query or "").strip() else "type a description of the person"),
        Param("threshold_type", "enum", default="cosine", choices=defaults.THRESHOLD_TYPES, view="radio",
              label="Threshold in", description="cosine: raw, in [-1, 1]; probability: SigLIP's calibrated, in (0, 1)"),
        Param("threshold", "float",
              min=lambda p: -1.0 if _cosine(p) else 0.0, max=1.0, label="Match threshold",
              description="People at or above it are labelled 'match'; empty: the threshold calibrated for the "
                          f"index's matcher (evaluate matchers), else {defaults.MATCH_THRESHOLD} cosine / "
                          f"{defaults.MATCH_PROBABILITY} probability"),
        Param("k", "int", min=1, label="Show only the best k samples", description="Empty: every sample, best first"),
        Param("brain_key", default=contract.PERSON_INDEX_KEY, label="Index name (brain key)"),
        Param("constraints", default=_parsed_query, label="Attribute constraints (parsed from the query; edit freely)",
              description="attribute=value pairs, e.g. 'upper_colors=red, backpack=no'; empty: similarity only",
              when=_has_attributes, check=_constraints_check),
        Param("attribute_weight", "float", default=defaults.ATTRIBUTE_WEIGHT, min=0.0, max=1.0,
              label="Weight of the attributes", description="0: similarity only; 1: attributes only",
              when=_has_attributes),
        Param("hard", "bool", default=False, label="Hard filters",
              description="Leave out people whose known attributes contradict a constraint (unknown never does)",
              when=_has_attributes),
    )

    def run(self, ctx, query, **params):
        from ..core.attributes.constraints import read_constraints
        from ..core.search import saved_color_scheme, search_persons

        if "constraints" in params:
            params["constraints"] = read_constraints(params["constraints"])
        view = search_persons(ctx.target_view(), query, on_progress=progress_reporter(ctx), **params)
        ctx.ops.reload_dataset()  # the score fields are new to the App's schema (sidebar filters)
        ctx.trigger("set_color_scheme", params=saved_color_scheme(ctx.dataset))  # match colours now
        ctx.ops.set_view(view)
        best = view.first()[contract.SAMPLE_SIMILARITY_FIELD] if len(view) else None
        return {"samples": len(view), "best_similarity": best, "query": query, **params}

    reloads_dataset = False  # run() reloads before it sets the sorted view

    def summarize(self, ctx, result):
        from ..core.search import last_search

        record = last_search(ctx.dataset)
        return f"{record['matches']} people labelled `{contract.MATCH_LABEL}` for *{result['query']}*" \
               f" ({record['threshold_type']} >= {record['threshold']:g}); samples sorted best first" if record else None


class VerifyPersons(PersonFinderOperator):
    """Gemini checks the top results of a query (cost shown first); verdicts re-rank them and stay on the persons."""

    name, label = "verify_persons", "verify top results with Gemini"
    description = ("Send the best k people of a query to Gemini with the description; each gets match yes / no / "
                   "unsure (and the failed attribute), cached per query and crop")
    execution = "choose"
    params = (
        Param("query", required=True, label="Describe the person",
              check=lambda query: None if str(query or "").strip() else "type a description of the person"),
        Param("constraints", default=_parsed_query, label="Attribute constraints (parsed from the query; edit freely)",
              when=_has_attributes, check=_constraints_check),
        Param("k", "int", default=defaults.VERIFY_TOP_K, min=1, label="Candidates to verify"),
        Param("model", default=defaults.GEMINI_MODEL, label="Gemini model"),
        Param("concurrency", "int", default=defaults.GEMINI_CONCURRENCY, min=1, label="Concurrent requests"),
        Param("requests_per_minute", "int", default=defaults.GEMINI_REQUESTS_PER_MINUTE, min=0,
              label="Requests per minute (0 = no cap)"),
        Param("brain_key", default=contract.PERSON_INDEX_KEY, label="Index name (brain key)"),
        Param("dry_run", "bool", default=False, label="Only estimate the cost"),
    )
    reloads_dataset = False  # run() reloads before it shows the results

    def extend_form(self, ctx, inputs):
        import fiftyone.operators.types as types

        from ..core.attributes.constraints import read_constraints
        from ..core.search.verify import estimate_cost

        query, k = str(ctx.params.get("query") or "").strip(), ctx.params.get("k") or defaults.VERIFY_TOP_K
        if query and _constraints_check(ctx.params.get("constraints")) is None:
            cost = estimate_cost(int(k), query, read_constraints(ctx.params.get("constraints")),
                                 ctx.params.get("model") or defaults.GEMINI_MODEL)
            inputs.view("estimate", types.Notice(label=(
                f"At most {cost['calls']} Gemini calls (cached verdicts are free): about "
                f"{cost['estimated_input_tokens']} input and {cost['estimated_output_tokens']} output tokens, "
                f"${cost['estimated_cost_usd']:.4f} at list prices")))
        warn_without_gemini_key(ctx, inputs)

    def run(self, ctx, query, constraints=None, **params):
        from ..core.attributes.constraints import read_constraints
        from ..core.search import panel_data
        from ..core.search.verify import verify_persons

        out = verify_persons(ctx.target_view(), query, constraints=read_constraints(constraints),
                             api_key=ctx.secrets.get(contract.GEMINI_SECRET), on_progress=progress_reporter(ctx),
                             **params)
        rows = out.pop("rows", [])
        if rows and not ctx.delegated:
            ctx.ops.reload_dataset()  # the verdicts are new to the App's schema
            field = ctx.dataset.get_brain_info(params["brain_key"]).config.patches_field
            ctx.ops.set_view(view=panel_data.results_view(ctx.dataset, rows, field))
        matches = [(r.get(contract.VERIFICATION_ATTR) or {}).get("match") for r in rows]
        return {**out, "query": query, "yes": matches.count("yes"), "no": matches.count("no"),
                "unsure": matches.count("unsure")}

    def summarize(self, ctx, result):
        if result.get("dry_run"):
            return f"{result['calls']} calls to make ({result['cached']} cached): about " \
                   f"${result['estimated_cost_usd']:.4f}"
        return f"{result['candidates']} candidates for *{result['query']}*: {result['yes']} yes, " \
               f"{result['unsure']} unsure, {result['no']} no ({result['failed']} failed, {result['cached']} cached)"


def _is_detections(dataset, field):
    import fiftyone.core.labels as fol

    return getattr(dataset.get_field(field), "document_type", None) is fol.Detections


def _patch_fields(ctx):
    if ctx.dataset is None:
        return []
    return [f for f in ctx.dataset.get_field_schema(embedded_doc_type=None) if _is_detections(ctx.dataset, f)]


class BuildTextIndex(PersonFinderOperator):
    """Embed images (or the patches of a detections field) with the matcher and index them."""

    name, label = "build_text_index", "build text index"
    description = "Index images or person patches with SigLIP so they can be searched by text"
    params = (
        Param("brain_key", default=contract.TEXT_INDEX_KEY, required=True, label="Index name (brain key)"),
        MATCHER_PARAM,
        Param("patches_field", "enum", choices=_patch_fields, label="Patches field",
              description="Index the boxes of this Detections field instead of whole images"),
        Param("batch_size", "int", default=defaults.MATCHER_BATCH_SIZE, min=1, label="Batch size"),
        backend_param(),
        Param("replace", "bool", default=False, label="Replace another kind of index",
              description="Delete a brain run of another kind (e.g. the person index) stored under this key"),
    )

    def run(self, ctx, **params):
        from ..core.search.index import build_text_index

        results = build_text_index(ctx.target_view(), on_progress=progress_reporter(ctx), **params)
        return {"brain_key": results.key, "indexed": int(results.index_size)}

    def summarize(self, ctx, result):
        return f"{result['indexed']} embeddings indexed in `{result['brain_key']}`"


def index_summary(result, video):
    """One line for an ``index_persons`` summary, e.g. "28 people in 8 of 8 images indexed (person_index)".

    Example::

        index_summary({"samples": 8, "processed": 8, "persons": 28, "tracks": 0, "errors": 0,
                       "brain_key": "person_index"}, video=False)
    """
    media = "videos" if video else "images"
    if not result["processed"]:
        return f"Nothing to index: all {result['samples']} {media} were already indexed"
    if result.get("message"):  # the run found nobody
        return f"Nobody indexed: {result['message']}"
    people = f"{result['tracks']} tracks ({result['persons']} boxes)" if video else f"{result['persons']} people"
    line = f"{people} in {result['processed']} of {result['samples']} {media} indexed"
    if result.get("brain_key"):
        line += f" (index `{result['brain_key']}`)"
    if result.get("errors"):
        line += f"; {result['errors']} unreadable, see `{contract.PERSON_ERROR_FIELD}`"
    return line
