"""What a query reads, loaded once per index version and process: the distinct vectors, persons, matcher, tracks.

Example::

    from person_finder.core.search.gallery import load_gallery
    gallery = load_gallery(dataset, "person_index")
    cosine, probability = gallery.score("red top and blue trousers")
    people = gallery.people(cosine)      # one ScoredPerson per image detection or video track
"""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np

from .. import contract, defaults

_CACHE = {}  # (dataset name, brain key, run timestamp, index version) -> Gallery
_CACHE_LOCK = threading.Lock()  # the App server runs operators and panel events on a thread pool


_MATCHERS = {}  # (name or path, device) -> ImageTextMatcher, shared by indexing and queries in one process
_MATCHERS_LOCK = threading.Lock()


_TEXT_CACHE_SIZE = 64  # recent query embeddings kept (threshold / k changes cost no forward pass)
_TEXTS = {}  # (text encoder id, query) -> embedding
_TEXTS_LOCK = threading.Lock()


def shared_matcher(name_or_path, device=None, batch_size=defaults.MATCHER_BATCH_SIZE):
    """The matcher, loaded once per process (an index's queries reuse the one that built it)."""
    from ..models.matcher import load_matcher

    folder = os.path.join(str(name_or_path), "config.json")
    key = (str(name_or_path), device, os.path.getmtime(folder) if os.path.exists(folder) else None)
    with _MATCHERS_LOCK:
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
    """Everything a query needs, read from the dataset: the distinct vectors and every person that uses one.

    ``vectors`` holds one row per distinct crop embedding; each person
    detection (``label_ids``, ``owner_ids``: its sample or frame) scores as
    the row it names in ``embedding_id`` (``rows``). ``sample_ids`` limits
    it to those samples (the candidates a vector backend returned).
    """

    def __init__(self, dataset, brain_key, sample_ids=None):
        from ..models import zoo
        from ..models.onnx import query_encoder

        zoo.register_model_source()  # so the App / sort_by_similarity can re-create the matcher by zoo name
        config = dataset.get_brain_info(brain_key).config
        self.patches_field = config.patches_field
        self.video = dataset.media_type == "video"
        self.matcher = shared_matcher(config.model_kwargs.get("name_or_path", defaults.MATCHER_MODEL))
        self.text_encoder = query_encoder(self.matcher)
        collection = dataset.select(sample_ids) if sample_ids is not None else dataset
        path = ("frames." if self.video else "") + self.patches_field + ".detections"
        fields = ["id", "filepath"] + (["frames.id", "frames.frame_number"] if self.video else []) + [
            path + "." + a
            for a in ("id", contract.EMBEDDING_ID_ATTR, contract.EMBEDDING_ATTR, "index", "bounding_box")]
        values = collection.values(fields) if (dataset.has_frame_field if self.video else dataset.has_sample_field)(
            self.patches_field) else [[] for _ in fields]
        people = []  # (sample id, filepath, owner id, frame number, label id, embedding id, vector, track, box)
        for sid, fp, *rest in zip(*values):
            owners = zip(rest[0], rest[1], *rest[2:]) if self.video else [(sid, 0, *rest)]
            for owner, number, lids, eids, vecs, tids, bbs in owners:
                for lid, eid, vec, tid, bb in zip(lids or [], eids or [], vecs or [], tids or [], bbs or []):
                    people.append((sid, fp, owner, number, lid, eid, vec, tid, bb))
        row_of, vectors = {}, []
        for person in people:
            if person[6] is not None:
                row_of[person[4]] = len(vectors)
                vectors.append(person[6])
        people = [p for p in people if p[5] in row_of]  # persons whose embedding is stored
        self.vectors = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32)
        self.rows = np.asarray([row_of[p[5]] for p in people], dtype=int)
        self.sample_ids = np.asarray([p[0] for p in people])
        self.filepaths = [p[1] for p in people]
        self.owner_ids = [str(p[2]) for p in people]  # the sample (images) or frame (videos) of each person
        self.frames = np.asarray([p[3] for p in people], dtype=int)
        self.label_ids = [p[4] for p in people]
        self.tracks = np.asarray([p[7] if p[7] is not None and self.video else -1 for p in people])
        self.boxes = [p[8] for p in people]
        self.groups = {}  # (video id, track id) -> indices of its detections
        if self.video:
            for j, (sid, track) in enumerate(zip(self.sample_ids, self.tracks)):
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
        """Cosine (and SigLIP probability, or None) of every indexed person to ``query``: a text or an embedding.

        An embedding (query by example, image to image) gets no probability:
        SigLIP's calibration holds for text-image pairs only.
        """
        vector = query_vector(self.text_encoder, query)
        cosine = (self.vectors @ vector)[self.rows] if len(self.rows) else np.zeros(0, np.float32)
        return cosine, self.matcher.probability(cosine) if isinstance(query, str) else None


def query_vector(text_encoder, query):
    """A text query's embedding (cached), or a given embedding (query by example) made unit length."""
    if isinstance(query, str):
        return text_vector(text_encoder, query)
    vector = np.asarray(query, dtype=np.float32).ravel()
    return vector / np.linalg.norm(vector)


def text_vector(text_encoder, query):
    """The query's text embedding, cached per encoder (a new threshold or k costs no forward pass)."""
    key = (id(text_encoder), query)
    with _TEXTS_LOCK:
        if key not in _TEXTS:
            if len(_TEXTS) >= _TEXT_CACHE_SIZE:
                _TEXTS.pop(next(iter(_TEXTS)))
            _TEXTS[key] = text_encoder.embed_texts([query])[0]
        return _TEXTS[key]


def candidate_gallery(samples, brain_key, query, k):
    """A :class:`Gallery` of only the samples holding the vector backend's nearest ``k`` x a margin persons.

    The backend (LanceDB, Qdrant, Milvus, pgvector) answers the nearest
    crop embeddings; their samples (videos: whole tracks) are then scored
    exactly, so memory grows with ``k``, not with the gallery.

    Example::

        gallery = candidate_gallery(dataset, "person_index", "red top and blue trousers", k=25)
    """
    from ..models.onnx import query_encoder
    from .backends import load_index

    dataset = checked_index(samples, brain_key)
    config = dataset.get_brain_info(brain_key).config
    encoder = query_encoder(shared_matcher(config.model_kwargs.get("name_or_path", defaults.MATCHER_MODEL)))
    results = load_index(dataset, brain_key, fresh=True)
    n = min(max(int(k) * defaults.RANK_CANDIDATES_PER_RESULT, defaults.RANK_MIN_CANDIDATES), results.total_index_size)
    _, label_ids = results._kneighbors(query=query_vector(encoder, query), k=n) if n else (None, [])
    path = ("frames." if dataset.media_type == "video" else "") + config.patches_field
    ids = samples.match_labels(ids=[str(x) for x in label_ids], fields=path).values("id") if len(label_ids) else []
    return Gallery(dataset, brain_key, sample_ids=ids)


def checked_index(samples, brain_key):
    """``samples``' dataset, reloaded, after checking that ``brain_key`` is a person index there."""
    from .store import check_person_index

    dataset = samples._root_dataset
    dataset.reload()  # brain runs added by another process
    if brain_key not in dataset.list_brain_runs():
        raise ValueError(f"no person index {brain_key!r} on {dataset.name!r}: run index_persons first "
                         f"(existing brain runs: {dataset.list_brain_runs()})")
    check_person_index(dataset, brain_key)
    return dataset


def load_gallery(samples, brain_key):
    """The :class:`Gallery` of ``brain_key``, re-read when the index changed (a worker added vectors).

    Example::

        gallery = load_gallery(dataset, "person_index")
    """
    from .store import index_version

    dataset = checked_index(samples, brain_key)
    key = (dataset.name, brain_key, str(dataset.get_brain_info(brain_key).timestamp), index_version(dataset, brain_key))
    with _CACHE_LOCK:
        if key not in _CACHE:
            for stale in [c for c in _CACHE if c[:2] == key[:2]]:
                del _CACHE[stale]
            _CACHE[key] = Gallery(dataset, brain_key)
        return _CACHE[key]
