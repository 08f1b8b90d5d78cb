"""What a query reads, loaded once per index and process: embeddings, ids, the matcher, track ids.

Example::

    from person_finder.core.search.gallery import load_gallery
    gallery = load_gallery(dataset, "person_index")
    cosine, probability = gallery.score("red top and blue trousers")
    people = gallery.people(cosine)      # one ScoredPerson per image detection or video track
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from .. import defaults

_CACHE = {}  # (dataset name, brain key, run timestamp) -> Gallery


_MATCHERS = {}  # (name or path, device) -> ImageTextMatcher, shared by indexing and queries in one process


_TEXT_CACHE_SIZE = 64  # recent query embeddings kept per index (threshold / k changes cost no forward pass)


def shared_matcher(name_or_path, device=None, batch_size=defaults.MATCHER_BATCH_SIZE):
    """The matcher, loaded once per process (an index's queries reuse the one that built it)."""
    from ..models.matcher import load_matcher

    folder = os.path.join(str(name_or_path), "config.json")
    key = (str(name_or_path), device, os.path.getmtime(folder) if os.path.exists(folder) else None)
    if key not in _MATCHERS:
        _MATCHERS.clear()  # one matcher at a time: they are large
        _MATCHERS[key] = load_matcher(name_or_path, device=device, batch_size=batch_size)
    matcher = _MATCHERS[key]
    matcher.batch_size = int(batch_size)
    return matcher


@dataclasses.dataclass
class ScoredPerson:
    """A scored person: one image detection, or one video track."""

    score: float
    best: int  # index (in the gallery) of its best-scoring detection
    sample_id: str
    track: int  # track id (videos) or None
    first: int  # first / last frame number (videos) or None
    last: int
    members: np.ndarray  # indices of its detections in the gallery


class Gallery:
    """Everything a query needs, loaded once per index: embeddings, ids, model, track ids."""

    def __init__(self, dataset, brain_key):
        from ..models import zoo
        from ..models.onnx import query_encoder

        zoo.register_model_source()  # so the App / sort_by_similarity can re-create the matcher by zoo name
        results = dataset.load_brain_results(brain_key)
        self.results = results
        self.patches_field = results.config.patches_field
        self.vectors, sample_ids, self.label_ids = results.get_embeddings()
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.owner_ids = [str(x) for x in sample_ids]  # the sample (images) or frame (videos) of each label
        self.video = dataset.media_type == "video"
        self.matcher = shared_matcher(results.config.model_kwargs.get("name_or_path", defaults.MATCHER_MODEL))
        self.text_encoder = query_encoder(self.matcher)
        self._texts = {}
        if self.video:
            self._video_layout(dataset, sample_ids)
        else:
            self.sample_ids = np.asarray(sample_ids)
            self.frames = np.zeros(len(sample_ids), dtype=int)
            self.tracks = np.full(len(sample_ids), -1)
            by_id = {}
            ids, paths, dets = dataset.values(["id", "filepath", f"{self.patches_field}.detections"])
            for sid, path, ds in zip(ids, paths, dets):
                for d in ds or []:
                    by_id[d.id] = (path, d.bounding_box)
            self.filepaths = [by_id.get(lid, (None, None))[0] for lid in self.label_ids]
            self.boxes = [by_id.get(lid, (None, None))[1] for lid in self.label_ids]

    def _video_layout(self, dataset, frame_ids):
        path = f"frames.{self.patches_field}.detections"
        ids, paths, numbers, label_ids, track_ids, boxes = dataset.values(  # plain values: no Label objects built
            ["id", "filepath", "frames.frame_number", path + ".id", path + ".index", path + ".bounding_box"])
        by_label = {}
        for sid, fp, *per_frame in zip(ids, paths, numbers, label_ids, track_ids, boxes):
            for number, lids, tids, bbs in zip(*per_frame):
                for lid, tid, bb in zip(lids or [], tids or [], bbs or []):
                    by_label[lid] = (sid, fp, number, tid, bb)
        info = [by_label.get(lid, (None, None, 0, -1, None)) for lid in self.label_ids]
        self.sample_ids = np.asarray([x[0] for x in info])
        self.filepaths = [x[1] for x in info]
        self.frames = np.asarray([x[2] for x in info], dtype=int)
        self.tracks = np.asarray([x[3] if x[3] is not None else -1 for x in info])
        self.boxes = [x[4] for x in info]
        self.groups = {}  # (video id, track id) -> indices of its detections
        for j, (sid, track) in enumerate(zip(self.sample_ids, self.tracks)):
            if sid is not None:
                self.groups.setdefault((sid, int(track)), []).append(j)
        self.groups = {key: np.asarray(members) for key, members in self.groups.items()}

    def people(self, cosine):
        """One :class:`ScoredPerson` per image detection, or per track in videos (scored by its mean)."""
        if not self.video:
            return [ScoredPerson(float(c), j, sid, None, None, None, np.asarray([j]))
                    for j, (sid, c) in enumerate(zip(self.sample_ids, cosine)) if sid is not None]
        out = []
        for (sid, track), members in self.groups.items():
            scores = cosine[members]
            out.append(ScoredPerson(float(scores.mean()), int(members[np.argmax(scores)]), sid, track,
                               int(self.frames[members].min()), int(self.frames[members].max()), members))
        return out

    def score(self, query):
        """Cosine (and SigLIP probability or None) of every indexed person to ``query``."""
        if query not in self._texts:
            if len(self._texts) >= _TEXT_CACHE_SIZE:
                self._texts.pop(next(iter(self._texts)))
            self._texts[query] = self.text_encoder.embed_texts([query])[0]
        cosine = self.vectors @ self._texts[query]
        return cosine, self.matcher.probability(cosine)


def load_gallery(samples, brain_key):
    dataset = samples._root_dataset
    if brain_key not in dataset.list_brain_runs():
        raise ValueError(f"no person index {brain_key!r} on {dataset.name!r}: run index_persons first "
                         f"(existing brain runs: {dataset.list_brain_runs()})")
    key = (dataset.name, brain_key, str(dataset.get_brain_info(brain_key).timestamp))
    if key not in _CACHE:
        for stale in [c for c in _CACHE if c[:2] == key[:2]]:
            del _CACHE[stale]
        _CACHE[key] = Gallery(dataset, brain_key)
    return _CACHE[key]
