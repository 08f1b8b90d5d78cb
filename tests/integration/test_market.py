"""Market-1501 import against the synthetic Market-style folder (real mongod, real files)."""

import os
import shutil

import pytest
from PIL import Image

from person_finder.core import contract
from person_finder.testing import synthetic
from person_finder.core.curation.market import (
    MarketFormatError, carve_validation_split, import_market1501, scan_market_folder,
)


def test_import_keeps_every_image_with_ids_and_splits(market_folder, market_attribute_file, dataset):
    mat = market_attribute_file
    _, report = import_market1501(market_folder.root, dataset=dataset, attributes_path=mat)

    assert report.added == len(market_folder.files) == len(dataset)
    assert report.junk_skipped == 2 and report.corrupt == []
    by_path = {s.filepath: s for s in dataset}
    for rel, info in market_folder.files.items():
        sample = by_path[os.path.join(market_folder.root, rel)]
        assert sample[contract.PERSON_ID_FIELD] == info["person_id"]
        assert sample[contract.CAMERA_ID_FIELD] == info["camera"]
        assert (sample["sequence"], sample["frame"]) == (info["sequence"], info["frame"])
        assert info["split"] in sample.tags
        assert (contract.DISTRACTOR_TAG in sample.tags) == (info["person_id"] == 0)
        expected = synthetic.market_attributes(market_folder.specs[info["person_id"]]) if info["person_id"] else None
        assert sample[contract.MARKET_ATTRIBUTES_FIELD] == expected
        assert sample.metadata.width == 64 and sample.metadata.height == 128
    assert all(pid >= 0 for pid in dataset.distinct(contract.PERSON_ID_FIELD))
    assert report.counts["distractor"] == 2
    assert report.identities_with_attributes == len(market_folder.specs)

    # resumable: a second run adds nothing and keeps user labels
    sample = dataset.first()
    sample["note"] = "keep me"
    sample.save()
    _, again = import_market1501(market_folder.root, dataset=dataset)
    assert again.added == 0 and again.already_present == len(dataset)
    assert dataset.first()["note"] == "keep me"


def test_validation_split_is_by_identity_and_seeded(market_folder, dataset):
    import_market1501(market_folder.root, dataset=dataset, val_fraction=0.34, seed=3)
    val_ids = set(dataset.match_tags("val").distinct(contract.PERSON_ID_FIELD))
    train_ids = set(dataset.match_tags("train").distinct(contract.PERSON_ID_FIELD))
    assert len(val_ids) == 2 and not val_ids & train_ids
    assert len(dataset.match_tags("val").match_tags("train")) == 0
    # every image of a val identity moved
    from fiftyone import ViewField as F

    assert len(dataset.match(F(contract.PERSON_ID_FIELD).is_in(list(val_ids)))) == len(dataset.match_tags("val"))
    assert carve_validation_split(dataset, 0.34, seed=3) == 2  # idempotent
    with pytest.raises(ValueError, match="already exists"):
        carve_validation_split(dataset, 0.5, seed=1)


def test_validation_split_same_seed_same_identities(market_folder, dataset, tmp_path):
    import fiftyone as fo

    import_market1501(market_folder.root, dataset=dataset, val_fraction=0.34, seed=3)
    other = fo.Dataset()
    try:
        import_market1501(market_folder.root, dataset=other, val_fraction=0.34, seed=3)
        assert set(other.match_tags("val").distinct("person_id")) == set(dataset.match_tags("val").distinct("person_id"))
    finally:
        other.delete()


def test_corrupt_images_are_skipped_and_listed(market_folder, dataset, tmp_path):
    root = tmp_path / "market"
    shutil.copytree(market_folder.root, root)
    victim = sorted(os.listdir(root / "query"))[0]
    data = (root / "query" / victim).read_bytes()
    (root / "query" / victim).write_bytes(data[: len(data) // 3])
    _, report = import_market1501(root, dataset=dataset)
    assert report.corrupt == [os.path.join("query", victim)]
    assert report.added == len(market_folder.files) - 1


def test_not_market_folder_errors_before_touching_dataset(dataset, tmp_path):
    with pytest.raises(MarketFormatError, match="missing sub-folder.*bounding_box_train"):
        import_market1501(tmp_path, dataset=dataset)
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        (tmp_path / sub).mkdir()
    Image.new("RGB", (8, 16)).save(tmp_path / "query" / "person_7.jpg")
    Image.new("RGB", (8, 16)).save(tmp_path / "query" / "0002_c1s1_000451_03.jpg")
    (tmp_path / "query" / "Thumbs.db").write_bytes(b"x")
    with pytest.raises(MarketFormatError, match=r"PPPP_cCsS_FFFFFF_NN.*query/person_7\.jpg"):
        import_market1501(tmp_path, dataset=dataset)
    assert len(dataset) == 0
    os.remove(tmp_path / "query" / "person_7.jpg")
    assert [e[0] for e in scan_market_folder(tmp_path)] == ["query/0002_c1s1_000451_03.jpg"]
    with pytest.raises(MarketFormatError, match="gt_bbox"):
        scan_market_folder(tmp_path, include_gt_bbox=True)
    with pytest.raises(MarketFormatError, match="market_attribute.mat"):
        bad = tmp_path / "bad.mat"
        import scipy.io

        scipy.io.savemat(bad, {"x": 1})
        import_market1501(tmp_path, dataset=dataset, attributes_path=bad)
    assert len(dataset) == 0
