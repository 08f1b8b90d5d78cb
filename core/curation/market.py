"""Market-1501 import: every image kept, ids parsed from the file names, standard splits.

Market-1501 names its crops ``PPPP_cCsS_FFFFFF_NN.jpg`` (person, camera,
sequence, frame, box index). ``bounding_box_train/`` is the train split,
``query/`` the query split and ``bounding_box_test/`` the gallery; junk
boxes (person id -1) are skipped and distractors (id 0) are kept and tagged.
The optional ``market_attribute.mat`` (27 identity-level attributes) is read
into :data:`contract.MARKET_ATTRIBUTES_FIELD`.

Example::

    from person_finder.core.curation.market import import_market1501
    dataset, report = import_market1501("/data/Market-1501-v15.09.15", "market1501",
                                        attributes_path="/data/market_attribute.mat",
                                        val_fraction=0.1)
    print(report.counts)       # {'train': 12936, 'query': 3368, 'gallery': 15913, ...}
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
from PIL import Image

from .. import contract, defaults
from ..progress import notify

#: Market-1501 sub-folder -> split tag. ``gt_bbox`` is only read when asked for.
SPLIT_FOLDERS = {"bounding_box_train": "train", "query": "query", "bounding_box_test": "gallery"}
GT_BBOX_FOLDER = "gt_bbox"
GT_BBOX_TAG = "gt_bbox"
NAME_PATTERN = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)
NAME_EXAMPLE = "0002_c1s1_000451_03.jpg"
#: Largest number a name may hold: MongoDB stores integers in 64 bits.
MAX_NAME_NUMBER = 2 ** 63 - 1
#: Files Market-1501 ships beside the crops that are not crops.
IGNORED_FILES = {"thumbs.db", "desktop.ini"}
#: Market-1501's 27 attribute keys, in the order of the annotation file.
MARKET_ATTRIBUTE_KEYS = (
    "age", "backpack", "bag", "handbag", "downblack", "downblue", "downbrown", "downgray", "downgreen",
    "downpink", "downpurple", "downwhite", "downyellow", "upblack", "upblue", "upgreen", "upgray",
    "uppurple", "upred", "upwhite", "upyellow", "clothes", "down", "up", "hair", "hat", "gender",
)
_VAL_INFO_KEY = "person_finder_val_split"


class MarketFormatError(ValueError):
    """The folder is not laid out (or named) like Market-1501."""


@dataclasses.dataclass(frozen=True)
class MarketName:
    """The fields encoded in one Market-1501 file name."""

    person_id: int
    camera_id: int
    sequence: int
    frame: int
    box_index: int


def parse_market_name(filename):
    """Parse ``PPPP_cCsS_FFFFFF_NN.jpg``; None when the name does not follow it (or a number overflows 64 bits).

    Example::

        parse_market_name("0002_c1s1_000451_03.jpg")
        # MarketName(person_id=2, camera_id=1, sequence=1, frame=451, box_index=3)
    """
    match = NAME_PATTERN.match(os.path.basename(filename))
    if match is None:
        return None
    numbers = [int(g) for g in match.groups()[:5]]
    if any(abs(n) > MAX_NAME_NUMBER for n in numbers):
        return None
    return MarketName(*numbers)


@dataclasses.dataclass
class MarketImportReport:
    """What an import did: samples per tag, what was skipped and why."""

    dataset_name: str
    added: int = 0
    already_present: int = 0
    #: Files curation removed from this dataset (near-duplicates); an import never adds them back.
    previously_removed: int = 0
    junk_skipped: int = 0
    corrupt: list = dataclasses.field(default_factory=list)  # relative paths that PIL could not decode
    counts: dict = dataclasses.field(default_factory=dict)  # tag -> samples in the dataset
    identities_with_attributes: int = 0
    val_identities: int = 0

    def summary(self):
        """A JSON-able dict (what the operator returns)."""
        out = dataclasses.asdict(self)
        out["corrupt"] = self.corrupt[:20]
        out["num_corrupt"] = len(self.corrupt)
        return out


def scan_market_folder(root, include_gt_bbox=False):
    """List the crops of a Market-1501 folder as ``(relative path, split tag, MarketName)``.

    Raises :class:`MarketFormatError` naming the expected layout and showing
    offending files when the folder is not Market-1501. Junk (id -1) is
    listed too; the importer skips it.

    Example::

        entries = scan_market_folder("/data/Market-1501-v15.09.15")
    """
    root = os.path.abspath(os.path.expanduser(str(root)))
    expected = list(SPLIT_FOLDERS) + ([GT_BBOX_FOLDER] if include_gt_bbox else [])
    if not os.path.isdir(root):
        raise MarketFormatError(f"Market-1501 folder {root!r} does not exist")
    missing = [sub for sub in expected if not os.path.isdir(os.path.join(root, sub))]
    if missing:
        raise MarketFormatError(
            f"{root!r} is not a Market-1501 folder: missing sub-folder(s) {missing}. Expected {expected} "
            f"(optional {GT_BBOX_FOLDER!r})"
        )
    entries, bad = [], []
    for sub in expected:
        tag = SPLIT_FOLDERS.get(sub, GT_BBOX_TAG)
        for name in sorted(os.listdir(os.path.join(root, sub))):
            if name.startswith(".") or name.lower() in IGNORED_FILES:
                continue
            parsed = parse_market_name(name)
            if parsed is None:
                bad.append(os.path.join(sub, name))
            else:
                entries.append((os.path.join(sub, name), tag, parsed))
    if bad:
        raise MarketFormatError(
            f"{len(bad)} file(s) in {root!r} are not named like Market-1501 crops "
            f"(PPPP_cCsS_FFFFFF_NN.jpg, e.g. {NAME_EXAMPLE!r}, numbers below 2**63; junk is '-1_...'): {bad[:5]}"
        )
    if not entries:
        raise MarketFormatError(f"{root!r} has the Market-1501 sub-folders {expected} but no crops in them")
    return entries


def read_market_attributes(path):
    """Read ``market_attribute.mat`` into ``{person_id: {key: raw int code}}`` (train and test parts).

    Example::

        attrs = read_market_attributes("/data/market_attribute.mat")
        attrs[2]["backpack"]   # 1 = no, 2 = yes
    """
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as err:
        raise MarketFormatError(f"could not read Market-1501 attribute file {str(path)!r}: {err}") from err
    root_key = next((k for k in mat if not k.startswith("__")), None)
    try:
        struct = mat[root_key][0, 0]
        parts = [struct[part][0, 0] for part in struct.dtype.names if part in ("train", "test")]
        if not parts:
            raise KeyError("train/test")
        result = {}
        for part in parts:
            pids = [int(np.ravel(x)[0]) for x in np.ravel(part["image_index"])]
            columns = {key: np.ravel(part[key]).astype(int) for key in MARKET_ATTRIBUTE_KEYS}
            for i, pid in enumerate(pids):
                result[pid] = {key: int(columns[key][i]) for key in MARKET_ATTRIBUTE_KEYS}
        return result
    except (KeyError, ValueError, IndexError, TypeError) as err:
        raise MarketFormatError(
            f"{str(path)!r} is not in the layout of market_attribute.mat (a struct with 'train' and 'test', "
            f"each holding the 27 attributes {list(MARKET_ATTRIBUTE_KEYS)} and 'image_index'): missing {err}"
        ) from err


def write_market_attributes(path, attributes_by_split):
    """Write ``{'train': {pid: attrs}, 'test': {pid: attrs}}`` in market_attribute.mat's struct layout.

    Example::

        write_market_attributes("/tmp/market_attribute.mat",
                                {"train": {2: synthetic.market_attributes(spec)}, "test": {}})
    """
    import scipy.io

    struct = {}
    for part in ("train", "test"):
        items = sorted(attributes_by_split.get(part, {}).items())
        fields = {key: np.array([[attrs[key] for _, attrs in items]], dtype=np.uint8)
                  for key in MARKET_ATTRIBUTE_KEYS}
        index = np.empty((1, len(items)), dtype=object)
        for i, (pid, _) in enumerate(items):
            index[0, i] = f"{pid:04d}"
        fields["image_index"] = index
        struct[part] = fields
    scipy.io.savemat(str(path), {"market_attribute": struct})
    return str(path)


def _read_image_metadata(path):
    """Decode the image fully (so truncated files are caught); None when it is corrupt."""
    import fiftyone as fo

    try:
        with Image.open(path) as img:
            img.load()
            width, height, channels = img.width, img.height, len(img.getbands())
            mime_type = Image.MIME.get(img.format)
    except Exception:
        return None
    return fo.ImageMetadata(width=width, height=height, num_channels=channels,
                            size_bytes=os.path.getsize(path), mime_type=mime_type)


def import_market1501(root, name=None, dataset=None, attributes_path=None, include_gt_bbox=False,
                      val_fraction=0.0, seed=defaults.VAL_SPLIT_SEED, persistent=True, on_progress=None):
    """Import a Market-1501 folder into ``dataset`` (or the dataset called ``name``, created if missing).

    Re-running adds only the images not yet in the dataset (resumable) and
    undoes no curation: files removed as near-duplicates stay out, new
    images of ``val`` people join ``val``, labels and tags already on
    existing samples are never touched. Returns ``(dataset, MarketImportReport)``.

    Example::

        dataset, report = import_market1501("/data/Market-1501", name="market1501", val_fraction=0.1)
    """
    import fiftyone as fo

    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r}: use a fraction in [0, 1) of the train identities")
    entries = scan_market_folder(root, include_gt_bbox=include_gt_bbox)
    attributes = read_market_attributes(attributes_path) if attributes_path else {}
    if dataset is None:
        if not name:
            raise ValueError("pass a dataset or a dataset name")
        dataset = fo.load_dataset(name) if fo.dataset_exists(name) else fo.Dataset(name, persistent=persistent)
    report = MarketImportReport(dataset_name=dataset.name)
    root = os.path.abspath(os.path.expanduser(str(root)))
    present = set(dataset.values("filepath")) if len(dataset) else set()
    removed = set(dataset.info.get(contract.REMOVED_FILES_INFO) or [])
    val_ids = set(dataset.match_tags(contract.VAL_TAG).distinct(contract.PERSON_ID_FIELD)) if len(dataset) else set()
    pending = []
    for rel, tag, parsed in entries:
        if parsed.person_id < 0:
            report.junk_skipped += 1
        elif os.path.join(root, rel) in present:
            report.already_present += 1
        elif os.path.join(root, rel) in removed:
            report.previously_removed += 1
        else:
            pending.append((rel, tag, parsed))
    batch, total = [], max(len(pending), 1)
    for i, (rel, tag, parsed) in enumerate(pending):
        path = os.path.join(root, rel)
        metadata = _read_image_metadata(path)
        if metadata is None:
            report.corrupt.append(rel)
            continue
        split = contract.VAL_TAG if tag == "train" and parsed.person_id in val_ids else tag
        tags = [split] + ([contract.DISTRACTOR_TAG] if parsed.person_id == 0 else [])
        fields = {contract.PERSON_ID_FIELD: parsed.person_id, contract.CAMERA_ID_FIELD: parsed.camera_id,
                  "sequence": parsed.sequence, "frame": parsed.frame}
        if parsed.person_id in attributes:
            fields[contract.MARKET_ATTRIBUTES_FIELD] = dict(attributes[parsed.person_id])
        batch.append(fo.Sample(filepath=path, tags=tags, metadata=metadata, **fields))
        if len(batch) >= defaults.MARKET_IMPORT_BATCH:
            dataset.add_samples(batch, progress=False)
            report.added += len(batch)
            batch = []
            notify(on_progress, 0.95 * (i + 1) / total, f"imported {report.added} of {len(pending)} crops")
    if batch:
        dataset.add_samples(batch, progress=False)
        report.added += len(batch)
    if val_fraction > 0:
        report.val_identities = carve_validation_split(dataset, val_fraction, seed=seed)
    if attributes:
        report.identities_with_attributes = len(
            set(dataset.exists(contract.MARKET_ATTRIBUTES_FIELD).distinct(contract.PERSON_ID_FIELD)))
    report.counts = dict(sorted(dataset.count_sample_tags().items()))
    notify(on_progress, 1.0, f"imported {report.added} crops into {dataset.name!r}")
    return dataset, report


def carve_validation_split(samples, fraction=0.1, seed=defaults.VAL_SPLIT_SEED):
    """Move a seeded ``fraction`` of the train identities (all their images) from ``train`` to ``val``.

    Idempotent: a dataset that already has a ``val`` split made with the
    same settings is left alone; different settings raise. Returns the
    number of validation identities.

    Example::

        carve_validation_split(dataset, 0.1, seed=0)
        dataset.match_tags("val").distinct("person_id")
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction={fraction!r}: use a fraction in (0, 1) of the train identities")
    dataset = samples._root_dataset
    settings = {"fraction": float(fraction), "seed": int(seed)}
    done = dataset.info.get(_VAL_INFO_KEY)
    existing = samples.match_tags(contract.VAL_TAG)
    if len(existing):
        if done != settings:
            raise ValueError(f"a '{contract.VAL_TAG}' split already exists (made with {done}); it differs from "
                             f"{settings}. Move its samples back to 'train' first to carve a new one")
        return len(existing.distinct(contract.PERSON_ID_FIELD))
    train = samples.match_tags("train").match_tags(contract.DISTRACTOR_TAG, bool=False)
    ids = sorted(train.distinct(contract.PERSON_ID_FIELD))
    if len(ids) < 2:
        raise ValueError(f"need at least 2 train identities to carve a validation split, found {len(ids)}")
    count = min(max(1, int(round(fraction * len(ids)))), len(ids) - 1)
    chosen = sorted(np.random.default_rng(int(seed)).choice(ids, size=count, replace=False).tolist())
    from fiftyone import ViewField as F

    move_to_validation(train.match(F(contract.PERSON_ID_FIELD).is_in(chosen)), settings)
    return count


def move_to_validation(samples, settings):
    """Tag ``samples`` ``val`` instead of ``train`` and record how the split was made (``settings``, a dict).

    The dataset's one validation split: the import carves it, fine-tuning
    carves it when there is none, and both read it afterwards.

    Example::

        move_to_validation(dataset.match(F("person_id").is_in([3, 7])), {"fraction": 0.2, "seed": 0})
    """
    dataset = samples._root_dataset
    samples.tag_samples(contract.VAL_TAG)
    samples.untag_samples("train")
    dataset.info[_VAL_INFO_KEY] = dict(settings)
    dataset.save()
