"""The person index as saved while an indexing run goes, so an interrupted run loses none of it.

Example::

    from person_finder.core.search.checkpoint import Checkpoint, previous_embeddings
    previous = previous_embeddings(dataset, "person_index", matcher, overwrite=False)
    checkpoint = Checkpoint(dataset, "person_index", matcher, "persons", previous, backend=None)
    checkpoint.save({sample_id: vectors})
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .. import defaults

logger = logging.getLogger(__name__)


def _reusable(dataset, persons_field, previous, held=()):
    """``{owner id: vectors}`` of every frame (videos) or image whose persons all have a vector in ``previous``.

    Owners already in ``held`` (this run's embeddings) are skipped, so their vectors are not stacked twice.
    """
    video = dataset.media_type == "video"
    if not previous.vectors or not (dataset.has_frame_field if video else dataset.has_sample_field)(persons_field):
        return {}
    if video:
        frame_ids, label_ids = dataset.values(["frames.id", f"frames.{persons_field}.detections.id"])
        pairs = [(f, lids) for fids, lists in zip(frame_ids, label_ids) for f, lids in zip(fids, lists)]
    else:
        pairs = list(zip(*dataset.values(["id", f"{persons_field}.detections.id"])))
    kept = {owner: previous.get(lids) for owner, lids in pairs if lids and owner not in held}
    return {owner: vectors for owner, vectors in kept.items() if vectors is not None}


class Checkpoint:
    """Saves the index of what is embedded so far, so an interrupted run loses none of it.

    The index holds this run's embeddings plus every earlier one whose
    persons are still on the dataset (samples not reached yet, samples
    outside the view being indexed). Called after each video or batch of
    images, it saves at most every ``INDEX_CHECKPOINT_SECONDS``.
    """

    def __init__(self, dataset, brain_key, matcher, persons_field, previous, backend):
        self.dataset, self.brain_key, self.matcher = dataset, brain_key, matcher
        self.persons_field, self.previous, self.backend = persons_field, previous, backend
        self.saved_at = time.monotonic()

    def __call__(self, embeddings):
        if time.monotonic() - self.saved_at >= defaults.INDEX_CHECKPOINT_SECONDS:
            self.save(embeddings)

    def save(self, embeddings):
        """Write the index now; returns the embeddings it holds (``{owner id: vectors}``)."""
        everything = {**_reusable(self.dataset, self.persons_field, self.previous, held=embeddings), **embeddings}
        everything = {owner: vectors for owner, vectors in everything.items() if len(vectors)}
        _build_index(self.dataset, self.brain_key, self.matcher, self.persons_field, everything, self.backend)
        self.saved_at = time.monotonic()
        return everything


def _build_index(dataset, brain_key, matcher, persons_field, embeddings, backend):
    """(Re)build the brain index over the person patches that have embeddings (frames for videos)."""
    from fiftyone import ViewField as F

    from .index import build_text_index

    if not embeddings:
        if brain_key in dataset.list_brain_runs():
            dataset.delete_brain_run(brain_key)
        return
    base = dataset.to_frames(sample_frames="dynamic") if dataset.media_type == "video" else dataset
    view = base.match(F(f"{persons_field}.detections").length() > 0)
    if len(view) != len(embeddings):  # some people were never embedded (e.g. outside the view, other matcher)
        view = base.select(list(embeddings))
    build_text_index(view, brain_key, matcher=matcher, patches_field=persons_field, embeddings=embeddings,
                     backend=backend)
    logger.info("indexed %d person embeddings", sum(len(e) for e in embeddings.values()))


class PreviousEmbeddings:
    """Embeddings of an earlier run that can be reused: label id -> vector."""

    def __init__(self, vectors=None):
        self.vectors = vectors or {}

    def get(self, label_ids):
        if not label_ids or not all(lid in self.vectors for lid in label_ids):
            return None
        return np.stack([self.vectors[lid] for lid in label_ids])


def previous_embeddings(samples, brain_key, matcher, overwrite):
    dataset = samples._root_dataset
    if overwrite or brain_key not in dataset.list_brain_runs():
        return PreviousEmbeddings()
    results = dataset.load_brain_results(brain_key)
    if results.config.model_kwargs.get("name_or_path") != str(matcher):
        logger.info("index %r was built with another matcher; re-embedding everything", brain_key)
        return PreviousEmbeddings()
    vectors, _, label_ids = results.get_embeddings()
    return PreviousEmbeddings(dict(zip(label_ids, vectors)))
