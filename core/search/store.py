"""The person index as a store that grows: vectors kept on the dataset, added to the brain index per batch.

The truth is on the dataset: each distinct crop embedding (a track's
refreshes in videos, every person in images) is stored on the detection it
was cut from (``embedding``), and every detection names the one whose
embedding it uses (``embedding_id``). The brain index holds exactly those
vectors, keyed by that label id, and is only ever added to
(``add_to_index``) or repaired from the dataset (:func:`sync_index`),
never deleted and rebuilt. Writers serialise on a lock document in
MongoDB (a stale lock is taken over), and each add bumps a version that
long-lived processes compare to refresh what they cached.

Example::

    from person_finder.core.search import store
    results = store.open_index(dataset, "person_index", matcher="google/siglip-base-patch16-224")
    store.add_vectors(dataset, "person_index", vectors, owner_ids, label_ids)
    store.index_version(dataset, "person_index")     # changes after every add
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid

import numpy as np

from .. import contract, defaults
from .backends import index_label_ids, update_index

logger = logging.getLogger(__name__)


def _state():
    from fiftyone.core.odm import get_db_conn

    return get_db_conn()[defaults.INDEX_STATE_COLLECTION]


def _doc_id(dataset, brain_key, kind):
    return f"{kind}:{dataset._doc.id}:{brain_key}"


@contextlib.contextmanager
def index_lock(dataset, brain_key, timeout=defaults.INDEX_LOCK_TIMEOUT_SECONDS):
    """Hold the writers' lock of ``brain_key`` on ``dataset`` (a MongoDB document) while the block runs.

    A lock whose holder is a dead process of this machine, or that was taken
    more than ``INDEX_LOCK_STALE_SECONDS`` ago (a holder killed elsewhere),
    is taken over. Raises ``TimeoutError`` after ``timeout``.

    Example::

        with index_lock(dataset, "person_index"):
            ...  # create the brain run, add vectors
    """
    import pymongo.errors

    coll, key = _state(), _doc_id(dataset, brain_key, "lock")
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    deadline = time.monotonic() + timeout
    while True:
        now = time.time()
        try:
            coll.insert_one({"_id": key, "owner": owner, "at": now})
            break
        except pymongo.errors.DuplicateKeyError:
            held = coll.find_one({"_id": key}) or {}
            stale = {"_id": key, "owner": held.get("owner")} if _holder_is_dead(held.get("owner")) else \
                {"_id": key, "at": {"$lt": now - defaults.INDEX_LOCK_STALE_SECONDS}}
            stale = coll.find_one_and_update(stale, {"$set": {"owner": owner, "at": now}})
            if stale is not None:
                logger.warning("took over the index lock of %r left by %s", brain_key, stale.get("owner"))
                break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the person index {brain_key!r} stayed locked for {timeout:.0f} s by another writer")
        time.sleep(defaults.INDEX_LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        coll.delete_one({"_id": key, "owner": owner})


def _holder_is_dead(owner):
    """True when the lock's holder was a process of this machine that no longer runs (killed)."""
    host, _, rest = str(owner or "").partition(":")
    return is_dead_local_process(host, rest.partition(":")[0])


def is_dead_local_process(host, pid):
    """True when ``pid`` on ``host`` is a process of this machine that no longer runs (another host: False).

    Example::

        is_dead_local_process(socket.gethostname(), 12345)
    """
    pid = str(pid)
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def index_version(dataset, brain_key):
    """A number that changes whenever vectors are added to (or removed from) ``brain_key``."""
    doc = _state().find_one({"_id": _doc_id(dataset, brain_key, "version")})
    return doc["n"] if doc else 0


def _bump(dataset, brain_key):
    _state().update_one({"_id": _doc_id(dataset, brain_key, "version")}, {"$inc": {"n": 1}}, upsert=True)


def index_base(dataset):
    """The collection a person index is built over: the dataset, or its frames for videos."""
    return dataset.to_frames(sample_frames="dynamic") if dataset.media_type == "video" else dataset


def is_person_index(dataset, brain_key):
    """True when ``brain_key`` is a person index made by ``index_persons`` (not any other brain run)."""
    if brain_key not in dataset.list_brain_runs():
        return False
    info = dataset.get_brain_info(brain_key)
    kwargs = getattr(info.config, "model_kwargs", None) or {}
    if getattr(info.config, "model", None) != contract.MATCHER_ZOO_MODEL or not kwargs.get("name_or_path"):
        return False
    doc = _state().find_one({"_id": _doc_id(dataset, brain_key, "kind")})
    return bool(doc) and doc.get("run") == _run_stamp(info)


def _run_stamp(info):
    """The brain run's creation time as MongoDB keeps it (milliseconds), telling apart runs under one key."""
    stamp = info.timestamp
    return stamp.replace(microsecond=stamp.microsecond // 1000 * 1000, tzinfo=None).isoformat()


def person_index_keys(dataset):
    """Brain keys of ``dataset`` that are person indexes (made by ``index_persons``).

    Example::

        person_index_keys(dataset)   # ['person_index']
    """
    return [key for key in sorted(dataset.list_brain_runs()) if is_person_index(dataset, key)]


def check_person_index(dataset, brain_key, persons_field=None):
    """Raise unless ``brain_key`` is absent or a person index (over ``persons_field`` when given).

    Example::

        check_person_index(dataset, "person_index")
    """
    if brain_key not in dataset.list_brain_runs():
        return
    config = dataset.get_brain_info(brain_key).config
    if not is_person_index(dataset, brain_key):
        raise ValueError(f"brain key {brain_key!r} on {dataset.name!r} is not a person index "
                         f"({type(config).__name__}, patches {getattr(config, 'patches_field', None)!r}); "
                         f"person indexes there: {person_index_keys(dataset)}")
    if persons_field is not None and config.patches_field != persons_field:
        raise ValueError(f"person index {brain_key!r} is over {config.patches_field!r}, not {persons_field!r}; "
                         "use another brain_key for another persons field")


def matcher_model_kwargs(matcher):
    """How a brain index records the matcher, so any process can re-create it."""
    return {"name_or_path": str(matcher)}


def _create(dataset, brain_key, matcher, persons_field, backend):
    import fiftyone.brain as fob

    from ..models import zoo
    from . import backends

    zoo.register_model_source()
    results = fob.compute_similarity(index_base(dataset), patches_field=persons_field, embeddings=False,
                                     brain_key=brain_key, model=contract.MATCHER_ZOO_MODEL,
                                     model_kwargs=matcher_model_kwargs(matcher), **backends.similarity_kwargs(backend))
    _state().update_one({"_id": _doc_id(dataset, brain_key, "kind")},  # what marks it a person index
                        {"$set": {"run": _run_stamp(dataset.get_brain_info(brain_key))}}, upsert=True)
    return results


def _load(dataset, brain_key):
    """The index's brain results, read now (call under the lock).

    A writer killed while the brain saved its results (sklearn rewrites
    them whole) leaves them unreadable; the index is then made again, empty,
    with the same settings, and refilled from the vectors on the dataset.
    """
    dataset.reload()  # the run document as other writers left it (a stale copy cannot be saved)
    try:
        return dataset.load_brain_results(brain_key, cache=False)
    except Exception as e:  # noqa: BLE001 - any unreadable results: the dataset holds the truth
        config = dataset.get_brain_info(brain_key).config
        logger.warning("person index %r could not be read (%s: %s); refilling it from the dataset", brain_key,
                       type(e).__name__, e)
        dataset.delete_brain_run(brain_key)
        results = _create(dataset, brain_key, config.model_kwargs["name_or_path"], config.patches_field,
                          config.method)
        update_index(results, *dataset_vectors(dataset, config.patches_field))
        _bump(dataset, brain_key)
        return results


def open_index(dataset, brain_key, matcher, persons_field=contract.PERSONS_FIELD, backend=None):
    """The person index ``brain_key`` (created empty, once, under the lock, if missing); its brain results.

    An index made with another matcher or over another field is refused:
    its vectors could not be compared with this run's.

    Example::

        results = open_index(dataset, "person_index", matcher="google/siglip-base-patch16-224")
    """
    check_person_index(dataset, brain_key, persons_field)
    with index_lock(dataset, brain_key):
        dataset.reload()
        if brain_key not in dataset.list_brain_runs():
            _create(dataset, brain_key, matcher, persons_field, backend)
        results = _load(dataset, brain_key)
    built_with = results.config.model_kwargs.get("name_or_path")
    if built_with != str(matcher):
        raise ValueError(f"person index {brain_key!r} was built with matcher {built_with!r}, not {str(matcher)!r}: "
                         "use that matcher, another brain_key, or delete the index to start over")
    return results


def built_with(dataset, brain_key):
    """The matcher ``brain_key`` was built with (None when there is no such index)."""
    if brain_key not in dataset.list_brain_runs():
        return None
    return dataset.get_brain_info(brain_key).config.model_kwargs.get("name_or_path")


def switch_matcher(dataset, brain_key, persons_field=contract.PERSONS_FIELD):
    """Before re-indexing every sample with another matcher: drop the index and the old embeddings, keep the boxes.

    The old vectors cannot be compared with the new matcher's, so none may
    survive for :func:`sync_index` to add back; with the embeddings gone
    (and videos no longer marked done) a killed re-run still redoes them.

    Example::

        switch_matcher(dataset, "person_index")   # then index_persons(dataset, matcher=new, overwrite=True)
    """
    video = dataset.media_type == "video"
    path = ("frames." if video else "") + f"{persons_field}.detections.{contract.EMBEDDING_ATTR}"
    with index_lock(dataset, brain_key):
        dataset.reload()
        if brain_key in dataset.list_brain_runs():
            dataset.delete_brain_run(brain_key)
        dataset.set_field(path, None).save()
        if video and dataset.has_sample_field(contract.PERSON_TRACKS_FIELD):
            dataset.set_field(contract.PERSON_TRACKS_FIELD, None).save()
        _bump(dataset, brain_key)


def add_vectors(dataset, brain_key, vectors, owner_ids, label_ids, remove=()):
    """Add vectors (keyed by the label ids they were cut from) to the index, after removing ``remove`` label ids.

    Example::

        add_vectors(dataset, "person_index", vectors, sample_ids, label_ids, remove=replaced_label_ids)
    """
    remove = [str(x) for x in remove]
    if not len(label_ids) and not remove:
        return
    with index_lock(dataset, brain_key):
        update_index(_load(dataset, brain_key), vectors, owner_ids, label_ids, remove=remove)
        _bump(dataset, brain_key)


def dataset_vectors(dataset, persons_field=contract.PERSONS_FIELD, label_ids=None):
    """``(vectors, owner ids, label ids)`` of the distinct embeddings stored on the dataset (all, or ``label_ids``)."""
    from fiftyone import ViewField as F

    video = dataset.media_type == "video"
    path = ("frames." if video else "") + persons_field
    if not (dataset.has_frame_field if video else dataset.has_sample_field)(persons_field):
        return np.zeros((0, 0), np.float32), [], []
    keep = F(contract.EMBEDDING_ATTR) != None  # noqa: E711
    if label_ids is not None:
        keep = keep & F("_id").is_in([_oid(x) for x in label_ids])
    view = dataset.filter_labels(path, keep)
    owner = "frames.id" if video else "id"
    owners, lids, vecs = view.values([owner, path + ".detections.id", path + ".detections." + contract.EMBEDDING_ATTR])
    out_v, out_o, out_l = [], [], []
    for sample_owners, sample_lids, sample_vecs in (zip(owners, lids, vecs) if video else [(owners, lids, vecs)]):
        for o, ls, vs in zip(sample_owners, sample_lids, sample_vecs):
            for lid, vec in zip(ls or [], vs or []):
                out_v.append(vec), out_o.append(o), out_l.append(lid)
    return (np.stack(out_v).astype(np.float32) if out_v else np.zeros((0, 0), np.float32)), out_o, out_l


def _oid(label_id):
    from bson import ObjectId

    return ObjectId(label_id)


def sync_index(dataset, brain_key, persons_field=contract.PERSONS_FIELD):
    """Make the index hold exactly the embeddings on the dataset (after a killed run); returns (added, removed).

    Vectors written to the dataset but never added are added; entries whose
    labels are gone (replaced by ``overwrite``, or by a video redone after a
    kill) are removed.
    """
    with index_lock(dataset, brain_key):
        results = _load(dataset, brain_key)
        _, _, on_dataset = dataset_vectors(dataset, persons_field)
        have = set(index_label_ids(results))
        want = set(on_dataset)
        missing, gone = sorted(want - have), sorted(have - want)
        if missing or gone:
            vectors, owners, lids = dataset_vectors(dataset, persons_field, label_ids=missing) if missing else \
                (None, [], [])
            update_index(results, vectors, owners, lids, remove=gone)
            _bump(dataset, brain_key)
            logger.info("person index %r repaired from the dataset: %d added, %d removed", brain_key, len(missing),
                        len(gone))
        return len(missing), len(gone)
