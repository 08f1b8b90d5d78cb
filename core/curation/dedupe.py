"""Near-duplicate removal and split-leakage checks with DINOv2 embeddings.

The DINOv2 embeddings live in a FiftyOne brain similarity index (sklearn
backend), so they are computed once, re-used by every run, browsable with
``sort_by_similarity`` and extended (not recomputed) when samples are added.

Why not ``index.find_duplicates`` / ``compute_leaky_splits`` directly:
FiftyOne's sklearn backend centres the embeddings on the mean of the indexed
(sub)set before measuring distances, so a threshold means different things
per identity and per dataset; up to 15,000 vectors it materialises the dense
N x N matrix (about 400 MB at 10k); its greedy pass keeps the first sample
in index order rather than the largest / sharpest; and leaky splits would
count query vs gallery matches (same identities by design) as leaks. Here
the search runs sklearn's ``pairwise_distances_chunked`` on the raw unit
vectors: exact cosine distances, memory bounded by
``defaults.DEDUPE_WORKING_MEMORY_MB`` whatever N is (see bench/dedupe.py).

Workflow::

    from person_finder.core.curation import dedupe
    report = dedupe.find_near_duplicates(dataset, threshold=0.05, scope="identity")   # dry run: tags + views
    print(report.histogram)                  # nearest-neighbour distances: is the threshold in the gap?
    dedupe.remove_near_duplicates(dataset, threshold=0.05, scope="identity")          # deletes from the dataset only
    dedupe.check_split_leakage(dataset, threshold=0.05)                               # tags + view "split_leaks"
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
from PIL import Image

from .. import contract, defaults
from ..models.images import open_rgb
from ..progress import notify

_RUN_INFO_KEY = "person_finder_dedupe_run"
_MODELS_INFO_KEY = "person_finder_dedupe_models"


@dataclasses.dataclass
class DedupeReport:
    """Outcome of a dry run or a removal (JSON-able through :meth:`summary`)."""

    threshold: float
    scope: str
    num_samples: int = 0
    num_groups: int = 0
    num_duplicates: int = 0
    num_removed: int = 0
    histogram: dict = dataclasses.field(default_factory=dict)
    views: list = dataclasses.field(default_factory=list)

    def summary(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class LeakageReport:
    """Near-duplicate pairs that cross split groups."""

    threshold: float
    num_pairs: int = 0
    num_samples: int = 0
    samples_per_split: dict = dataclasses.field(default_factory=dict)
    person_ids: list = dataclasses.field(default_factory=list)
    #: Samples tagged with two split groups at once (e.g. ``train`` and ``val``): leaks by themselves.
    num_in_several_splits: int = 0
    view: str = contract.LEAKS_VIEW

    def summary(self):
        return dataclasses.asdict(self)


def validate_settings(samples, threshold, scope):
    """Raise ValueError naming the bad setting and what is allowed (called before any work)."""
    if scope not in defaults.DEDUPE_SCOPES:
        raise ValueError(f"scope={scope!r}; use one of {defaults.DEDUPE_SCOPES}")
    if not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) < 2.0:
        raise ValueError(f"threshold={threshold!r}; use a cosine distance in (0, 2), e.g. {defaults.DEDUPE_THRESHOLD}")
    if scope == "identity" and not samples.has_field(contract.PERSON_ID_FIELD):
        raise ValueError(f"scope='identity' needs an int field {contract.PERSON_ID_FIELD!r} on the samples; "
                         f"import Market-1501 first or use scope='global'")
    if len(samples) == 0:
        raise ValueError("the collection is empty")


def ensure_dedupe_index(samples, brain_key=contract.DEDUPE_BRAIN_KEY, model=defaults.DEDUPE_MODEL,
                        batch_size=defaults.DEDUPE_BATCH_SIZE, on_progress=None):
    """Return the DINOv2 similarity index of ``samples``, embedding only the samples it lacks.

    Example::

        index = ensure_dedupe_index(dataset, model="facebook/dinov2-small")
        dataset.sort_by_similarity(dataset.first().id, brain_key=index.key, k=5)
    """
    import fiftyone.brain as fob

    dataset = samples._root_dataset
    models = dict(dataset.info.get(_MODELS_INFO_KEY, {}))
    if brain_key in dataset.list_brain_runs():
        if models.get(brain_key) not in (None, str(model)):
            raise ValueError(f"brain key {brain_key!r} holds {models[brain_key]!r} embeddings, not {str(model)!r}; "
                             f"pick another brain_key or delete that run")
        index = dataset.load_brain_results(brain_key)
        have = set(index.sample_ids)
        ids, paths = samples.values(["id", "filepath"])
        missing = [(i, p) for i, p in zip(ids, paths) if i not in have]
    else:
        index = None
        missing = list(zip(*samples.values(["id", "filepath"])))
    if missing:
        embeddings = _embed_files([p for _, p in missing], model, batch_size, on_progress)
        ids = [i for i, _ in missing]
        if index is None:
            index = fob.compute_similarity(samples.select(ids, ordered=True), embeddings=embeddings,
                                           brain_key=brain_key, backend="sklearn", metric="cosine")
        else:
            index.add_to_index(embeddings, ids)
            index.save()
    models[brain_key] = str(model)
    dataset.info[_MODELS_INFO_KEY] = models
    dataset.save()
    return index


def _embed_files(paths, model, batch_size, on_progress):
    from ..models.dinov2 import load_dinov2

    embedder = load_dinov2(model, batch_size=batch_size)
    out = []
    for start in range(0, len(paths), batch_size):
        images = [open_rgb(path) for path in paths[start:start + batch_size]]
        out.append(embedder.embed_images(images, batch_size=batch_size))
        notify(on_progress, 0.8 * (start + len(images)) / len(paths), f"DINOv2: embedded {start + len(images)} crops")
    return np.concatenate(out)


def radius_pairs(embeddings, threshold, groups=None, working_memory=defaults.DEDUPE_WORKING_MEMORY_MB):
    """Pairs of rows within ``threshold`` cosine distance (within the same group) and each row's NN distance.

    Uses sklearn's ``pairwise_distances_chunked``: memory stays around
    ``working_memory`` MB however many rows there are. Returns ``(pairs,
    nn_dist)``: an (M, 2) int array with i < j, and per-row nearest-neighbour
    distances (inf for rows alone in their group).

    Example::

        pairs, nn = radius_pairs(unit_vectors, 0.05, groups=person_ids)
    """
    from sklearn.metrics import pairwise_distances_chunked

    embeddings = np.asarray(embeddings, dtype=np.float32)
    n = len(embeddings)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    nn_dist = np.full(n, np.inf, dtype=np.float32)
    pairs = []
    for value in np.unique(groups):
        rows = np.flatnonzero(groups == value)
        if len(rows) < 2:
            continue
        x = embeddings[rows]
        start = 0
        for block in pairwise_distances_chunked(x, metric="cosine", working_memory=working_memory):
            local = np.arange(len(block))
            block[local, start + local] = np.inf
            nn_dist[rows[start:start + len(block)]] = block.min(axis=1)
            i, j = np.nonzero(block <= threshold)
            i = i + start
            keep = i < j
            pairs.append(np.stack([rows[i[keep]], rows[j[keep]]], axis=1))
            start += len(block)
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    return pairs, nn_dist


def group_duplicates(pairs, quality):
    """Greedy grouping: the best-quality sample claims its ungrouped neighbours, and so on.

    ``quality`` maps row -> sortable key (higher is better). Every member
    is within the threshold of its representative. Returns ``{row:
    representative row}`` for grouped rows (representatives map to themselves).

    Example::

        group_duplicates(np.array([[0, 1]]), {0: (10, 1.0), 1: (12, 0.5)})   # {1: 1, 0: 1}
    """
    neighbors = {}
    for i, j in np.asarray(pairs).tolist():
        neighbors.setdefault(i, []).append(j)
        neighbors.setdefault(j, []).append(i)
    rep_of = {}
    for row in sorted(neighbors, key=lambda r: (quality[r], -r), reverse=True):
        if row in rep_of:
            continue
        members = [j for j in neighbors[row] if j not in rep_of]
        if members:
            rep_of[row] = row
            rep_of.update({j: row for j in members})
    return rep_of


def sharpness(image):
    """Variance of the Laplacian of the grey image: higher is sharper.

    Example::

        sharpness(Image.open("crop.jpg"))
    """
    g = np.asarray(image.convert("L"), dtype=np.float32)
    if min(g.shape) < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def image_quality(filepath):
    """``(pixel area, sharpness)``: how a representative is chosen (largest, then sharpest)."""
    with Image.open(filepath) as img:
        return img.width * img.height, sharpness(img)


def distance_histogram(nn_dist, threshold, max_distance=defaults.DISTANCE_HISTOGRAM_MAX,
                       bins=defaults.DISTANCE_HISTOGRAM_BINS):
    """Histogram of nearest-neighbour distances, with quantiles and the count at or under ``threshold``.

    Near-duplicates form a spike near 0; the threshold belongs in the gap
    after it.

    Example::

        distance_histogram(np.array([0.001, 0.2, 0.3]), 0.05)["at_or_under_threshold"]   # 1
    """
    d = np.asarray(nn_dist, dtype=np.float64)
    d = d[np.isfinite(d)]
    counts, edges = np.histogram(np.clip(d, 0, None), bins=bins, range=(0.0, max_distance))
    quantiles = {f"p{q}": round(float(np.percentile(d, q)), 5) for q in (1, 5, 25, 50)} if len(d) else {}
    return {
        "bin_edges": [round(float(e), 5) for e in edges],
        "counts": [int(c) for c in counts],
        "over_max": int((d > max_distance).sum()),
        "threshold": float(threshold),
        "at_or_under_threshold": int((d <= threshold).sum()),
        "quantiles": quantiles,
    }


def histogram_text(histogram, width=40):
    """The histogram as monospace bars (for operator output and logs)."""
    counts, edges = histogram["counts"], histogram["bin_edges"]
    top = max(counts + [histogram["over_max"], 1])
    lines = []
    for c, lo, hi in zip(counts, edges[:-1], edges[1:]):
        mark = " <- threshold" if lo <= histogram["threshold"] < hi else ""
        lines.append(f"{lo:5.3f}-{hi:5.3f} {c:7d} {'#' * round(width * c / top)}{mark}")
    lines.append(f">{edges[-1]:9.3f} {histogram['over_max']:7d} {'#' * round(width * histogram['over_max'] / top)}")
    return "\n".join(lines)


def _fingerprint(ids):
    return hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()


def _settings(threshold, scope, brain_key, model):
    return {"threshold": float(threshold), "scope": scope, "brain_key": brain_key, "model": str(model)}


def _search(samples, threshold, scope, brain_key, model, batch_size, on_progress):
    index = ensure_dedupe_index(samples, brain_key, model, batch_size, on_progress)
    ids = samples.values("id")
    embeddings, found_ids, _ = index.get_embeddings(sample_ids=ids)
    order = {i: k for k, i in enumerate(found_ids)}
    embeddings = embeddings[[order[i] for i in ids]]
    groups = samples.values(contract.PERSON_ID_FIELD) if scope == "identity" else None
    if groups is not None:
        groups = [-2 if g is None else g for g in groups]
    notify(on_progress, 0.85, "searching near-duplicates")
    pairs, nn_dist = radius_pairs(embeddings, threshold, groups)
    return ids, pairs, nn_dist


def find_near_duplicates(samples, threshold=defaults.DEDUPE_THRESHOLD, scope=defaults.DEDUPE_SCOPE,
                         brain_key=contract.DEDUPE_BRAIN_KEY, model=defaults.DEDUPE_MODEL,
                         batch_size=defaults.DEDUPE_BATCH_SIZE, on_progress=None):
    """Dry run: tag near-duplicates and their representatives, save two views, report the distances.

    Representatives (largest, then sharpest crop of each group) get
    ``contract.REPRESENTATIVE_TAG``, the others ``contract.DUPLICATE_TAG``;
    both get ``contract.DUPLICATE_GROUP_FIELD`` = the representative's id.
    Saved views: ``contract.DUPLICATES_VIEW`` and ``contract.REPRESENTATIVES_VIEW``.
    Nothing is deleted. Re-running replaces the previous dry run's tags.

    Example::

        report = find_near_duplicates(dataset, threshold=0.05, scope="identity")
        print(histogram_text(report.histogram))
    """
    validate_settings(samples, threshold, scope)
    ids, pairs, nn_dist = _search(samples, threshold, scope, brain_key, model, batch_size, on_progress)
    paths = samples.values("filepath")
    rows = np.unique(pairs)
    quality = {int(r): image_quality(paths[r]) for r in rows}
    rep_of = group_duplicates(pairs, quality)

    dataset = samples._root_dataset
    samples.untag_samples([contract.DUPLICATE_TAG, contract.REPRESENTATIVE_TAG])
    group_values = {ids[r]: ids[rep] for r, rep in rep_of.items()}
    if not samples.has_field(contract.DUPLICATE_GROUP_FIELD):
        import fiftyone.core.fields as fof

        dataset.add_sample_field(contract.DUPLICATE_GROUP_FIELD, fof.StringField)
    samples.set_values(contract.DUPLICATE_GROUP_FIELD, [group_values.get(i) for i in ids])
    duplicates = [ids[r] for r, rep in rep_of.items() if r != rep]
    representatives = [ids[r] for r, rep in rep_of.items() if r == rep]
    dataset.select(duplicates).tag_samples(contract.DUPLICATE_TAG)
    dataset.select(representatives).tag_samples(contract.REPRESENTATIVE_TAG)
    _save_view(dataset, contract.DUPLICATES_VIEW, samples.match_tags(contract.DUPLICATE_TAG),
               "near-duplicates the removal step would delete")
    _save_view(dataset, contract.REPRESENTATIVES_VIEW, samples.match_tags(contract.REPRESENTATIVE_TAG),
               "the kept representative of each near-duplicate group")

    dataset.info[_RUN_INFO_KEY] = {**_settings(threshold, scope, brain_key, model),
                                   "collection": _fingerprint(ids), "removed": False}
    dataset.save()
    notify(on_progress, 1.0, f"{len(duplicates)} near-duplicates in {len(representatives)} groups")
    return DedupeReport(threshold=float(threshold), scope=scope, num_samples=len(ids),
                        num_groups=len(representatives), num_duplicates=len(duplicates),
                        histogram=distance_histogram(nn_dist, threshold),
                        views=[contract.DUPLICATES_VIEW, contract.REPRESENTATIVES_VIEW])


def remove_near_duplicates(samples, threshold=defaults.DEDUPE_THRESHOLD, scope=defaults.DEDUPE_SCOPE,
                           brain_key=contract.DEDUPE_BRAIN_KEY, model=defaults.DEDUPE_MODEL, force=False,
                           batch_size=defaults.DEDUPE_BATCH_SIZE, on_progress=None):
    """Delete the near-duplicates found by the matching dry run from the dataset (files stay on disk).

    Refuses unless :func:`find_near_duplicates` ran on this same collection
    with the same settings; ``force=True`` runs the dry run itself first
    instead. Representatives are kept (untagged: they represent no group
    any more, as a new dry run would find); the index forgets removed
    samples and ``dataset.info`` remembers their files (a re-import skips them).

    Example::

        find_near_duplicates(dataset, 0.05)
        report = remove_near_duplicates(dataset, 0.05)
        report.num_removed
    """
    validate_settings(samples, threshold, scope)
    dataset = samples._root_dataset
    wanted = _settings(threshold, scope, brain_key, model)
    run = dataset.info.get(_RUN_INFO_KEY) or {}
    problem = _dry_run_mismatch(run, wanted, samples)
    if problem and not force:
        raise ValueError(f"refusing to remove near-duplicates: {problem}. Run the dry run "
                         f"(find_near_duplicates) with {wanted} on this collection first, or pass force=True")
    report = (find_near_duplicates(samples, threshold, scope, brain_key, model, batch_size, on_progress)
              if problem else DedupeReport(threshold=float(threshold), scope=scope, num_samples=len(samples)))
    doomed = samples.match_tags(contract.DUPLICATE_TAG)
    ids = doomed.values("id")
    report.num_groups = len(samples.match_tags(contract.REPRESENTATIVE_TAG))
    if ids:
        index = dataset.load_brain_results(brain_key)
        index.remove_from_index(sample_ids=ids)
        index.save()
        removed = set(dataset.info.get(contract.REMOVED_FILES_INFO) or []) | set(doomed.values("filepath"))
        dataset.info[contract.REMOVED_FILES_INFO] = sorted(removed)  # a re-import keeps them out
        dataset.delete_samples(ids)
    kept = samples.match_tags(contract.REPRESENTATIVE_TAG)  # no group remains: as a new dry run would find it
    kept.set_values(contract.DUPLICATE_GROUP_FIELD, [None] * len(kept))
    kept.untag_samples(contract.REPRESENTATIVE_TAG)
    report.num_removed = len(ids)
    report.num_duplicates = len(ids)
    dataset.info[_RUN_INFO_KEY] = {**wanted, "collection": _fingerprint(samples.values("id")), "removed": True}
    dataset.save()
    notify(on_progress, 1.0, f"removed {len(ids)} near-duplicates")
    return report


def _dry_run_mismatch(run, wanted, samples):
    if not run:
        return "no dry run was recorded"
    changed = {k: run.get(k) for k in wanted if run.get(k) != wanted[k]}
    if changed:
        return f"the dry run used different settings {changed}"
    if run.get("collection") != _fingerprint(samples.values("id")):
        return "the dry run was made on a different set of samples"
    return None


def check_split_leakage(samples, threshold=defaults.DEDUPE_THRESHOLD, split_groups=defaults.LEAKAGE_SPLIT_GROUPS,
                        brain_key=contract.DEDUPE_BRAIN_KEY, model=defaults.DEDUPE_MODEL,
                        batch_size=defaults.DEDUPE_BATCH_SIZE, on_progress=None):
    """Flag near-duplicates that cross split groups (default: train | val | query+gallery).

    Both members of each leaky pair get ``contract.LEAK_TAG``; so does a
    sample tagged with two groups at once (``train`` and ``val``: it is in
    both splits, with or without a near-duplicate). A pair leaks when its
    members' groups differ. The saved view ``contract.LEAKS_VIEW`` shows
    them sorted by person. Samples in no group are ignored.

    Example::

        report = check_split_leakage(dataset, threshold=0.05)
        report.num_pairs, report.samples_per_split
    """
    validate_settings(samples, threshold, "global")
    split_groups = [tuple(g) for g in split_groups]
    if len(split_groups) < 2 or not all(split_groups):
        raise ValueError(f"split_groups={split_groups!r}; give at least two non-empty groups of split tags")
    tagged = samples.match_tags([t for g in split_groups for t in g])
    if len(tagged) == 0:
        raise ValueError(f"no sample carries any of the split tags {split_groups}")
    ids, pairs, _ = _search(tagged, threshold, "global", brain_key, model, batch_size, on_progress)
    tags = tagged.values("tags")
    member = np.array([[bool(set(g) & set(t)) for g in split_groups] for t in tags])  # samples x groups
    several = np.flatnonzero(member.sum(axis=1) > 1)
    leaky = pairs[(member[pairs[:, 0]] != member[pairs[:, 1]]).any(axis=1)] if len(pairs) else pairs
    rows = np.union1d(np.unique(leaky), several).astype(int)
    leak_ids = [ids[r] for r in rows]

    dataset = samples._root_dataset
    samples.untag_samples(contract.LEAK_TAG)
    dataset.select(leak_ids).tag_samples(contract.LEAK_TAG)
    view = samples.match_tags(contract.LEAK_TAG)
    if samples.has_field(contract.PERSON_ID_FIELD):
        view = view.sort_by(contract.PERSON_ID_FIELD)
    _save_view(dataset, contract.LEAKS_VIEW, view, "near-duplicates that cross train / val / test")
    per_split = {"+".join(g): int(member[rows, k].sum()) for k, g in enumerate(split_groups)}
    person_ids = sorted(set(view.values(contract.PERSON_ID_FIELD))) if samples.has_field(
        contract.PERSON_ID_FIELD) else []
    notify(on_progress, 1.0, f"{len(leaky)} leaky pairs")
    return LeakageReport(threshold=float(threshold), num_pairs=len(leaky), num_samples=len(leak_ids),
                         samples_per_split=per_split, person_ids=[int(p) for p in person_ids if p is not None],
                         num_in_several_splits=len(several))


def _save_view(dataset, name, view, description):
    dataset.save_view(name, view, description=description, overwrite=True)
