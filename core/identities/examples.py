"""Query by example: "find this person elsewhere" from a person, a track, an identity or an image.

The example becomes one embedding in the index's image space (a person's
stored crop embedding, the mean of a track's or an identity's, or the
matcher's embedding of an uploaded crop) and is ranked through the same
index and per-track aggregation as a text query
(:func:`core.search.rank_persons`). The example's own track is left out.

Example::

    from person_finder.core.identities.examples import rank_like
    rows = rank_like(dataset, label_id=selected_label_id, k=10)       # a person patch of the App
    rows = rank_like(dataset, track=(video_id, 3))                    # a track
    rows = rank_like(dataset, identity=7)                             # an identity (after link_identities)
    rows = rank_like(dataset, image="/data/crops/suspect.jpg")        # an uploaded crop
    result = run_example(dataset, rows[0], k=10)                      # the panel's "more like this", with crops
"""

from __future__ import annotations

import os

import numpy as np

from .. import contract, defaults


def _persons_path(dataset, persons_field):
    return ("frames." if dataset.media_type == "video" else "") + persons_field


def _unit_mean(vectors):
    vectors = np.asarray([np.asarray(v, dtype=np.float32) for v in vectors])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    mean = vectors.mean(axis=0)
    return mean / np.linalg.norm(mean)


def _detections(samples, path, label_ids=None):
    """(sample id, label id, track id, embedding id, embedding) of the persons of ``samples``."""
    view = samples.select_labels(ids=label_ids, fields=path) if label_ids is not None else samples
    attrs = ("id", "index", contract.EMBEDDING_ID_ATTR, contract.EMBEDDING_ATTR)
    values = view.values(["id"] + [f"{path}.detections.{a}" for a in attrs])
    video = path.startswith("frames.")
    out = []
    for sample_id, *per_attr in zip(*values):
        frames = zip(*per_attr) if video else [per_attr]
        for ids, tracks, embedding_ids, vectors in frames:
            out += [(sample_id, *row) for row in zip(ids or [], tracks or [], embedding_ids or [], vectors or [])]
    return out


def example_vector(samples, brain_key=contract.PERSON_INDEX_KEY, label_id=None, track=None, identity=None,
                   image=None):
    """The example's embedding and the track it came from (``(sample id, track id)`` or None).

    Exactly one of ``label_id`` (a person detection), ``track`` (``(video
    sample id, track id)``), ``identity`` (an identity number) or ``image``
    (a path or PIL image of one person) must be given.

    Example::

        vector, own_track = example_vector(dataset, label_id="65a1...")
    """
    from ..models.images import open_rgb
    from ..search.gallery import checked_index, shared_matcher

    given = {name: value for name, value in (("label_id", label_id), ("track", track), ("identity", identity),
                                             ("image", image)) if value is not None}
    if len(given) != 1:
        raise ValueError(f"give exactly one example (label_id, track, identity or image), got {sorted(given) or 'none'}")
    dataset = checked_index(samples, brain_key)
    config = dataset.get_brain_info(brain_key).config
    path = _persons_path(dataset, config.patches_field)
    if image is not None:
        matcher = shared_matcher(config.model_kwargs.get("name_or_path", defaults.MATCHER_MODEL))
        return np.asarray(matcher.embed_images([open_rgb(image)])[0], dtype=np.float32), None
    if label_id is not None:
        found = _detections(dataset, path, [str(label_id)])
        if not found:
            raise ValueError(f"no person {label_id!r} in {dataset.name!r}'s {path!r}")
        sample_id, _, track_id, embedding_id, _ = found[0]
        own = [d for d in _detections(dataset.select(sample_id), path) if d[1] == embedding_id]
        if not own or own[0][4] is None:
            raise ValueError(f"person {label_id!r} has no embedding yet: run index_persons on its sample")
        video = dataset.media_type == "video"
        return np.asarray(own[0][4], dtype=np.float32), (sample_id, track_id) if video else (sample_id, label_id)
    if track is not None:
        sample_id, track_id = str(track[0]), int(track[1])
        vectors = [d[4] for d in _detections(dataset.select(sample_id), path) if d[2] == track_id and d[4] is not None]
        if not vectors:
            raise ValueError(f"no embedded track {track_id} in sample {sample_id!r} of {dataset.name!r}")
        return _unit_mean(vectors), (sample_id, track_id)
    from fiftyone import ViewField as F

    from .tracks import person_tracks

    members = dataset.filter_labels(path, F(contract.IDENTITY_ATTR) == int(identity))
    tracks = person_tracks(members, config.patches_field)
    vectors = [_unit_mean(v) for v in tracks.vectors if v]
    if not vectors:
        raise ValueError(f"no identity {identity!r} in {dataset.name!r}: run link_identities first, or pick one of "
                         f"{sorted(dataset.distinct(f'{path}.detections.{contract.IDENTITY_ATTR}'))[:20]}")
    return _unit_mean(vectors), None


def rank_like(samples, brain_key=contract.PERSON_INDEX_KEY, k=defaults.TOP_K, label_id=None, track=None,
              identity=None, image=None):
    """People of ``samples`` ranked by similarity to an example, one row per track (videos) or person (images).

    Rows are :func:`core.search.rank_persons`'s (``probability`` is None:
    image-to-image cosines have no SigLIP calibration); ``match`` means a
    cosine of at least ``defaults.IDENTITY_LINK_THRESHOLD``, the link
    threshold of identities. The example's own track is not returned.

    Example::

        rows = rank_like(dataset, label_id=session.selected_labels[0]["label_id"], k=10)
    """
    from ..search import rank_persons

    vector, own = example_vector(samples, brain_key, label_id=label_id, track=track, identity=identity, image=image)
    rows = rank_persons(samples, vector, brain_key=brain_key, k=None if k is None else int(k) + 1)
    video = samples.media_type == "video"
    rows = [r for r in rows if own is None or (r["sample_id"], r["track_id"] if video else r["label_id"]) != own]
    for row in rows:
        row["match"] = row["similarity"] >= defaults.IDENTITY_LINK_THRESHOLD
    return rows if k is None else rows[:int(k)]


def run_example(samples, row, brain_key=contract.PERSON_INDEX_KEY, k=defaults.TOP_K, label=False):
    """The panel's "more like this": everyone ranked against the person of a result ``row``, with crops.

    As :func:`core.search.panel_data.run_query` does for a text: returns
    ``{"rows", "histogram", "above", "total"}`` (rows through :func:`rank_like`,
    the row's own track left out; ``match`` and ``above`` at the link threshold
    ``defaults.IDENTITY_LINK_THRESHOLD``) plus ``query``, the example's name.
    With ``label`` the dataset's ``match`` labels become this example's
    (:func:`core.search.search_persons`, recorded under that name).

    Example::

        rows = panel_data.run_query(dataset, "red top", "person_index")["rows"]
        result = run_example(dataset, rows[0], k=5)
        result["query"]                                  # "more like track 3 of walk.mp4"
    """
    from ..search import panel_data, search_persons

    panel_data.check_k(k)
    threshold = defaults.IDENTITY_LINK_THRESHOLD
    everyone = rank_like(samples, brain_key, k=None, label_id=row["label_id"])
    name = example_name(row)
    if label:
        vector, _ = example_vector(samples, brain_key, label_id=row["label_id"])
        search_persons(samples, vector, brain_key=brain_key, threshold=threshold, query_name=name)
    return dict(panel_data.ranked_result(everyone, k, threshold), query=name)


def example_name(row):
    """How the panel and the search record name a "more like this" example: its track or person, and its file.

    Example::

        example_name({"track_id": 3, "filepath": "/data/walk.mp4"})   # "more like track 3 of walk.mp4"
    """
    who = f"track {row['track_id']}" if row.get("track_id") is not None else "the person"
    return f"more like {who} of {os.path.basename(row['filepath'])}"
