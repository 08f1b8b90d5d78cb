"""Text-to-person retrieval metrics by identity, and threshold calibration.

The standard protocol: each query is a text describing a person of the
query split; the gallery is the images of the gallery split; a gallery
image matches a query when their person ids agree. Rank-k (CMC), mAP and
mINP are averaged over the queries that have at least one match in the
gallery (queries without one are counted and reported, as in Market-1501).

Example::

    from person_finder.core.training.evaluation import retrieval_metrics
    scores = text_emb @ image_emb.T                    # queries x gallery
    retrieval_metrics(scores, query_ids, gallery_ids)  # {'rank1': .., 'mAP': .., 'mINP': .., ...}
"""

from __future__ import annotations

import re

import numpy as np

from .. import contract, defaults


def retrieval_metrics(scores, query_ids, gallery_ids, ranks=defaults.EVAL_RANKS):
    """Rank-k, mAP and mINP of a (queries x gallery) score matrix, higher = more similar.

    Returns a dict with ``rank{k}`` for each k in ``ranks``, ``mAP``,
    ``mINP``, ``num_queries`` (scored) and ``num_queries_without_match``.
    Ties are broken by gallery order.

    Example::

        retrieval_metrics(np.array([[0.2, 0.9, 0.5]]), [7], [7, 3, 7])
        # matches at ranks 2 and 3: rank1 = 0, rank5 = 1, mAP = (1/2 + 2/3) / 2, mINP = 2/3
    """
    per_query = per_query_results(scores, query_ids, gallery_ids)
    scored = [q for q in per_query if q is not None]
    mean = lambda values: float(np.mean(values)) if values else 0.0  # noqa: E731
    out = {f"rank{k}": mean([q["rank"] <= k for q in scored]) for k in ranks}
    out.update(mAP=mean([q["ap"] for q in scored]), mINP=mean([q["inp"] for q in scored]), num_queries=len(scored),
               num_queries_without_match=len(per_query) - len(scored))
    return out


def per_query_results(scores, query_ids, gallery_ids):
    """Per query: ``{"rank": 1-based rank of its first true match, "ap": .., "inp": ..}``, None without a match.

    Example::

        per_query_results(np.array([[0.2, 0.9, 0.5]]), [7], [7, 3, 7])   # [{'rank': 2, 'ap': 0.583.., 'inp': 0.666..}]
    """
    scores = np.asarray(scores, dtype=np.float64)
    query_ids, gallery_ids = np.asarray(query_ids), np.asarray(gallery_ids)
    if scores.shape != (len(query_ids), len(gallery_ids)):
        raise ValueError(f"scores has shape {scores.shape}, expected ({len(query_ids)}, {len(gallery_ids)})")
    out = []
    for row, qid in zip(scores, query_ids):
        positions = np.flatnonzero(gallery_ids[np.argsort(-row, kind="stable")] == qid)  # 0-based match ranks
        out.append(None if positions.size == 0 else dict(
            rank=int(positions[0]) + 1, ap=float(np.mean(np.arange(1, positions.size + 1) / (positions + 1))),
            inp=float(positions.size / (positions[-1] + 1))))
    return out


def text_to_image_scores(matcher, query_texts, gallery_images):
    """Cosine similarity of each query text to each gallery image (queries x gallery)."""
    texts = matcher.embed_texts(list(query_texts))
    images = matcher.embed_images(list(gallery_images))
    return texts @ images.T


def calibrate_threshold(scores, query_ids, gallery_ids, target_precision=defaults.CALIBRATION_TARGET_PRECISION):
    """The lowest score at which (query, gallery) pairs scoring >= it reach ``target_precision``.

    Returns ``threshold``, the ``precision`` and ``recall`` there, and
    ``reached`` (False: no score reaches the target; the most precise one is
    returned). Calibrate on held-out data, then check with
    :func:`precision_recall_at`.

    Example::

        calibrate_threshold([[0.9, 0.8, 0.7, 0.6, 0.5]], [1], [1, 1, 2, 1, 3], 0.9)
        # threshold 0.8, precision 1.0, recall 2/3
    """
    from sklearn.metrics import precision_recall_curve

    labels, flat = _pairs(scores, query_ids, gallery_ids)
    if not labels.any():
        raise ValueError("calibration needs at least one matching (query, gallery) pair; none of the query ids is in the gallery")
    precision, recall, thresholds = precision_recall_curve(labels, flat)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    ok = np.flatnonzero(precision >= target_precision)
    best = ok[np.argmax(recall[ok])] if ok.size else int(np.argmax(precision))
    return dict(threshold=float(thresholds[best]), precision=float(precision[best]), recall=float(recall[best]),
                target_precision=float(target_precision), reached=bool(ok.size))


def precision_recall_at(scores, query_ids, gallery_ids, threshold):
    """Precision and recall of the pairs scoring >= ``threshold`` (precision 1.0 when none does)."""
    labels, flat = _pairs(scores, query_ids, gallery_ids)
    kept = flat >= threshold
    tp = int((kept & labels).sum())
    return dict(precision=tp / kept.sum() if kept.any() else 1.0, recall=tp / max(int(labels.sum()), 1))


def _pairs(scores, query_ids, gallery_ids):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(query_ids)[:, None] == np.asarray(gallery_ids)[None, :]
    return labels.ravel(), scores.ravel()


def _gallery(samples, person_id_field):
    """Gallery file paths and ids, junk (id < 0) left out, distractors (id 0) kept."""
    from .data import check_person_ids

    paths, ids = samples.values("filepath"), samples.values(person_id_field)
    check_person_ids(ids, person_id_field)
    kept = [(p, i) for p, i in zip(paths, ids) if i is not None and i >= 0]
    return [p for p, _ in kept], np.array([i for _, i in kept])


def _load_images(paths):
    from ..models.images import open_rgb

    return [open_rgb(path) for path in paths]


def _calibration(matcher, calibration, test_scores, query_ids, gallery_ids, target_precision, seed):
    """Threshold from held-out data, then precision / recall on the test pairs.

    Held-out data is ``calibration`` (texts, images, ids) when given; otherwise
    half of the query identities (seeded) calibrate and the other half report.
    """
    if calibration is not None:
        texts, images, ids = calibration
        cal = calibrate_threshold(text_to_image_scores(matcher, texts, images), ids, ids, target_precision)
        report = precision_recall_at(test_scores, query_ids, gallery_ids, cal["threshold"])
        source = "val"
    else:
        ids = np.unique(query_ids)
        held = np.isin(query_ids, np.random.default_rng(seed).permutation(ids)[: max(len(ids) // 2, 1)])
        cal = calibrate_threshold(test_scores[held], query_ids[held], gallery_ids, target_precision)
        report = precision_recall_at(test_scores[~held], query_ids[~held], gallery_ids, cal["threshold"])
        source = "half of the query identities"
    probability = matcher.probability(cal["threshold"]) if matcher.is_siglip else None
    return dict(threshold=cal["threshold"], threshold_probability=None if probability is None else float(probability),
                target_precision=cal["target_precision"], target_reached=cal["reached"],
                calibrated_on=source, precision=float(report["precision"]), recall=float(report["recall"]))


def _labelled_images(samples, calibration_tag, gallery_tag, attributes_field, seed):
    """``(images, attribute records, where)`` to measure zero-shot reliability on: the calibration split's images
    with attributes, else the gallery's (at most ``ZERO_SHOT_RELIABILITY_MAX_IMAGES``); None when neither has any."""
    if not samples.has_field(attributes_field):
        return None
    for tag in (calibration_tag, gallery_tag):
        view = samples.match_tags(tag).exists(attributes_field) if tag else None
        if view is not None and len(view):
            if len(view) > defaults.ZERO_SHOT_RELIABILITY_MAX_IMAGES:
                view = view.take(defaults.ZERO_SHOT_RELIABILITY_MAX_IMAGES, seed=seed)
            paths, labels = view.values(["filepath", attributes_field])
            return _load_images(paths), labels, f"{len(paths)} {tag} images"
    return None


def _record_reliability(path, matcher, labelled):
    """Measure ``matcher``'s zero-shot attribute reliability on ``labelled`` images and store it in its folder
    (when too few images know any attribute, nothing is measured and an earlier measurement stays)."""
    from ..attributes.zero_shot import attribute_reliability
    from .card import record_attribute_reliability

    images, labels, where = labelled
    reliability = attribute_reliability(matcher, matcher.embed_images(images), labels)
    if reliability:
        record_attribute_reliability(path, reliability, where)


def evaluate_matchers(samples, models=None, query_tag="query", gallery_tag="gallery",
                      calibration_tag=contract.VAL_TAG, description_field=contract.DESCRIPTION_FIELD,
                      attributes_field=contract.MERGED_ATTRIBUTES_FIELD,
                      person_id_field=contract.PERSON_ID_FIELD, ranks=defaults.EVAL_RANKS,
                      target_precision=defaults.CALIBRATION_TARGET_PRECISION, run_key=contract.EVAL_RUN_KEY,
                      device=None, batch_size=defaults.MATCHER_BATCH_SIZE, seed=defaults.TRAIN_SEED, on_progress=None):
    """Text-to-person evaluation of one or more matchers, side by side, stored as a run.

    Queries are the descriptions of the ``query_tag`` samples, the gallery
    the ``gallery_tag`` images; a match shares the person id. ``models``
    maps a row name to a hub id or folder (a list uses the paths as names;
    default: the zero-shot ``MATCHER_MODEL``). Each row has Rank-k, mAP,
    mINP and a threshold calibrated to ``target_precision`` on held-out
    data (the ``calibration_tag`` samples, else half of the query
    identities) with the precision and recall it reaches on the rest. The
    rows (with ``target_reached``: whether the target precision was met)
    and PR curves are saved as run ``run_key`` on the dataset (read back
    with :func:`load_evaluation`), merged with the stored rows of other
    models scored on the same splits; each query sample gets one field
    per model (:func:`query_field`: rank of the first true match, AP,
    INP); a folder Person Finder fine-tuned stores its metrics and
    calibrated threshold (search's default) and updates its model card,
    and, where images have ``attributes_field`` (the calibration split's,
    else the gallery's), how reliable its zero-shot attributes are (read by
    every later zero-shot run, see :mod:`core.attributes.zero_shot`).

    Example::

        rows = evaluate_matchers(dataset, {"zero-shot": "google/siglip-base-patch16-224",
                                           "fine-tuned": "runs/people"})
    """
    from ..models.matcher import load_matcher
    from ..progress import notify
    from .data import items_from_samples

    if models is None:
        models = {"zero-shot": defaults.MATCHER_MODEL}
    elif isinstance(models, str):
        models = {models: models}
    elif not isinstance(models, dict):
        models = {str(m): str(m) for m in models}
    if not models:
        raise ValueError("give at least one model to evaluate")
    names_now = set(models)
    query, gallery = samples.match_tags(query_tag), samples.match_tags(gallery_tag)
    if len(gallery) == 0:
        raise ValueError(f"no samples tagged {gallery_tag!r}: the gallery is empty (tags found: {sorted(samples.distinct('tags'))})")
    if len(query) == 0:
        raise ValueError(f"no samples tagged {query_tag!r}: there are no queries (tags found: {sorted(samples.distinct('tags'))})")
    queries = items_from_samples(query, description_field, None, person_id_field)
    query_texts, query_ids = [it.texts[0] for it in queries], np.array([it.person_id for it in queries])
    gallery_paths, gallery_ids = _gallery(gallery, person_id_field)
    calibration = None
    held_out = samples.match_tags(calibration_tag) if calibration_tag else None
    if held_out is not None and len(held_out) and len(set(held_out.values(person_id_field))) >= 2:
        cal_items = items_from_samples(held_out, description_field, None, person_id_field)
        calibration = ([it.texts[0] for it in cal_items], [it.load() for it in cal_items],
                       np.array([it.person_id for it in cal_items]))
    gallery_images = _load_images(gallery_paths)
    labelled = None
    if any(_is_person_finder_model(path) for path in models.values()):
        labelled = _labelled_images(samples, calibration_tag, gallery_tag, attributes_field, seed)

    rows, curves, per_query = [], {}, {}
    for n, (name, path) in enumerate(models.items()):
        notify(on_progress, n / len(models), f"evaluating {name}")
        matcher = load_matcher(path, device=device, batch_size=batch_size)
        scores = text_to_image_scores(matcher, query_texts, gallery_images)
        row = dict(model=name, path=str(path), **retrieval_metrics(scores, query_ids, gallery_ids, ranks))
        row.update(_calibration(matcher, calibration, scores, query_ids, gallery_ids, target_precision, seed))
        rows.append(row)
        curves[name] = pr_curve(scores, query_ids, gallery_ids)
        per_query[name] = per_query_results(scores, query_ids, gallery_ids)
        if labelled is not None and _is_person_finder_model(path):
            _record_reliability(path, matcher, labelled)
    dataset = samples._root_dataset
    for name, results in per_query.items():  # written once every model was scored
        _write_per_query(dataset, queries, results, query_field(run_key, name))
    settings = dict(query_tag=query_tag, gallery_tag=gallery_tag, calibration_tag=calibration_tag, ranks=list(ranks),
                    target_precision=target_precision, num_queries=len(query_texts), num_gallery=len(gallery_paths))
    rows, curves, models = _with_earlier_rows(dataset, run_key, settings, rows, curves, models)
    dataset.register_run(run_key, dataset.init_run(models=dict(models), **settings), overwrite=True)
    dataset.save_run_results(run_key, dataset.init_run_results(run_key, rows=rows, pr_curves=curves))
    for row in rows:
        if row["model"] in names_now and _is_person_finder_model(row["path"]):
            from .card import record_evaluation

            record_evaluation(row["path"], row, dataset_name=dataset.name)
    notify(on_progress, 1.0, "evaluated")
    return rows


def query_field(run_key, model_name):
    """Name of the query-sample field holding one model's per-query result, e.g. ``matcher_eval_fine_tuned``.

    Example::

        dataset.match_tags("query").sort_by("matcher_eval_fine_tuned.rank", reverse=True)  # worst queries first
    """
    return f"{run_key}_" + re.sub(r"[^0-9a-zA-Z]+", "_", model_name).strip("_").lower()


def _write_per_query(dataset, queries, results, field):
    """Each query sample gets ``field``: rank of its first true match, AP and INP (None: no match in gallery)."""
    import fiftyone as fo

    values = {it.sample_id: (fo.DynamicEmbeddedDocument(**r) if r else None) for it, r in zip(queries, results)}
    dataset.set_values(field, values, key_field="id", dynamic=True)


def pr_curve(scores, query_ids, gallery_ids, points=defaults.EVAL_PR_CURVE_POINTS):
    """Precision and recall of the (query, gallery) pairs, at most ``points`` points (for the App's plot).

    Example::

        pr_curve([[0.9, 0.1]], [1], [1, 2])   # {'precision': [...], 'recall': [...]}
    """
    from sklearn.metrics import precision_recall_curve

    labels, flat = _pairs(scores, query_ids, gallery_ids)
    if not labels.any():
        return {"precision": [], "recall": []}
    precision, recall, _ = precision_recall_curve(labels, flat)
    keep = np.unique(np.linspace(0, len(precision) - 1, min(points, len(precision))).astype(int))
    return {"precision": precision[keep].round(4).tolist(), "recall": recall[keep].round(4).tolist()}


def _with_earlier_rows(dataset, run_key, settings, rows, curves, models):
    """Keep the stored rows of models not evaluated now when they were scored on the same queries and gallery."""
    if not dataset.has_run(run_key):
        return rows, curves, models
    old = dataset.get_run_info(run_key).config
    if any(getattr(old, k, None) != v for k, v in settings.items()):
        return rows, curves, models
    stored = dataset.load_run_results(run_key)
    names = {r["model"] for r in rows}
    kept = [r for r in stored.rows if r["model"] not in names]
    old_curves = getattr(stored, "pr_curves", None) or {}
    return (kept + rows, {**{r["model"]: old_curves.get(r["model"]) for r in kept}, **curves},
            {**{r["model"]: r["path"] for r in kept}, **models})


def _is_person_finder_model(path):
    """A folder Person Finder fine-tuned (it has ``person_finder.json``): its calibration is stored with it."""
    import os

    return os.path.isfile(os.path.join(str(path), contract.MATCHER_INFO_FILE))


def load_evaluation(dataset, run_key=contract.EVAL_RUN_KEY):
    """The rows saved by :func:`evaluate_matchers` under ``run_key``."""
    return list(dataset.load_run_results(run_key).rows)


def load_pr_curves(dataset, run_key=contract.EVAL_RUN_KEY):
    """``{model name: {"precision": [...], "recall": [...]}}`` saved by :func:`evaluate_matchers`.

    Example::

        load_pr_curves(dataset)["fine-tuned"]["precision"][:3]
    """
    return dict(getattr(dataset.load_run_results(run_key), "pr_curves", None) or {})
