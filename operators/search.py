"""Operators: index persons (detect, track, embed; delegated by default) and search persons (immediate)."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import contract, defaults
from . import common


class IndexPersons(foo.Operator):
    """Find the people in images / videos, track them, embed them once, and index the embeddings."""

    @property
    def config(self):
        return common.long_running_config(
            "index_persons", "index persons",
            "Detect (or read) people, track them in videos and store their SigLIP embeddings "
            "so text searches only embed the text",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        inputs.str("matcher", default=defaults.MATCHER_MODEL, label="Matcher",
                   description="Hugging Face id or local folder of a SigLIP / SigLIP 2 / CLIP model")
        from ..core.search import detections_fields

        choices = types.Dropdown()
        for name in (detections_fields(ctx.dataset, exclude=[contract.PERSONS_FIELD]) if ctx.dataset else []):
            choices.add_choice(name, label=name)
        inputs.enum("detections_field", choices.values(), default=None, view=choices, label="Existing detections",
                    description="Use these boxes instead of running the detector (left empty: run YOLO)")
        inputs.str("detector", default=defaults.DETECTOR_MODEL, label="Detector",
                   description="Ultralytics weights name or .pt / .onnx file (class person only)")
        inputs.float("confidence", default=defaults.DETECTOR_CONFIDENCE, min=0.0, max=1.0,
                     label="Detector confidence")
        if ctx.dataset is not None and ctx.dataset.media_type == "video":
            inputs.int("detect_every", default=defaults.VIDEO_DETECT_EVERY, min=1, label="Detect every k-th frame")
            inputs.int("refresh_frames", default=defaults.TRACK_REFRESH_FRAMES, min=1,
                       label="Re-embed a track every N frames")
            trackers = types.RadioGroup()
            for name in defaults.TRACKERS:
                trackers.add_choice(name, label=name)
            inputs.enum("tracker", trackers.values(), default=defaults.TRACKER, view=trackers, label="Tracker")
        inputs.str("brain_key", default=contract.PERSON_INDEX_KEY, label="Index name (brain key)")
        common.add_backend_choice(inputs)
        inputs.enum("runtime", list(defaults.INFERENCE_RUNTIMES), default=defaults.INFERENCE_RUNTIME,
                    label="Inference runtime", description="onnx: detector and image tower on ONNX Runtime (CPU)")
        inputs.bool("overwrite", default=False, label="Redo everything",
                    description="Off: only samples not yet indexed are processed")
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Index persons"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.search import index_persons

        p = ctx.params
        return index_persons(
            ctx.target_view(), matcher=p.get("matcher", defaults.MATCHER_MODEL),
            detector=p.get("detector", defaults.DETECTOR_MODEL), detections_field=p.get("detections_field"),
            brain_key=p.get("brain_key", contract.PERSON_INDEX_KEY),
            confidence=p.get("confidence", defaults.DETECTOR_CONFIDENCE),
            detect_every=p.get("detect_every", defaults.VIDEO_DETECT_EVERY),
            refresh_frames=p.get("refresh_frames", defaults.TRACK_REFRESH_FRAMES),
            tracker=p.get("tracker", defaults.TRACKER), overwrite=p.get("overwrite", False),
            backend=p.get("backend"), runtime=p.get("runtime", defaults.INFERENCE_RUNTIME),
            on_progress=common.progress_reporter(ctx),
        )


class SearchPersons(foo.Operator):
    """Score every indexed person against a text query, mark matches and show the best first."""

    @property
    def config(self):
        return foo.OperatorConfig(
            name="search_persons", label="Person Finder: search persons",
            description="Find people by description, e.g. 'a woman in a white t-shirt with a brown shoulder bag'",
            dynamic=True, allow_immediate_execution=True, allow_delegated_execution=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        prop = inputs.str("query", required=True, label="Describe the person",
                          description="e.g. 'red top and blue trousers'")
        if "query" in ctx.params and not str(ctx.params.get("query") or "").strip():
            prop.invalid = True
            prop.error_message = "type a description of the person"
        kinds = types.RadioGroup()
        kinds.add_choice("cosine", label="cosine similarity", description="raw cosine in [-1, 1]")
        kinds.add_choice("probability", label="SigLIP probability", description="calibrated, in (0, 1)")
        inputs.enum("threshold_type", kinds.values(), default="cosine", view=kinds, label="Threshold in")
        kind = ctx.params.get("threshold_type", "cosine")
        default = defaults.MATCH_THRESHOLD if kind == "cosine" else defaults.MATCH_PROBABILITY
        inputs.float("threshold", default=default, min=-1.0 if kind == "cosine" else 0.0, max=1.0,
                     label="Match threshold", description="People at or above it are labelled 'match'")
        inputs.int("k", default=defaults.TOP_K, min=1, label="Show the best k samples")
        inputs.str("brain_key", default=contract.PERSON_INDEX_KEY, label="Index name (brain key)")
        return types.Property(inputs, view=types.View(label="Search persons"))

    def execute(self, ctx):
        from ..core.search import search_persons

        p = ctx.params
        kind = p.get("threshold_type", "cosine")
        threshold = p.get("threshold", defaults.MATCH_THRESHOLD if kind == "cosine" else defaults.MATCH_PROBABILITY)
        view = search_persons(ctx.target_view(), p.get("query"), brain_key=p.get("brain_key", contract.PERSON_INDEX_KEY),
                              threshold=threshold, threshold_type=kind, k=p.get("k", defaults.TOP_K),
                              on_progress=common.progress_reporter(ctx))
        ctx.ops.set_view(view)
        best = view.first()[contract.SAMPLE_SIMILARITY_FIELD] if len(view) else None
        return {"samples": len(view), "best_similarity": best}
