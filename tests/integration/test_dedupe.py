"""Near-duplicates and split leakage on the synthetic Market folder, with a tiny random DINOv2.

The tiny model's distances are compressed (random weights): planted copies sit
under 0.0017, distinct crops above 0.0027, so tests use THRESHOLD = 0.002.
"""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from person_finder.core.curation import dedupe

from person_finder.core import contract
from person_finder.testing.synthetic import market_name
from person_finder.core.curation.market import import_market1501

THRESHOLD = 0.002


@pytest.fixture()
def market_dataset(market_folder, dataset):
    import_market1501(market_folder.root, dataset=dataset)
    return dataset


def _planted_pairs(folder, dataset):
    by_path = dict(zip(*dataset.values(["filepath", "id"])))
    return [(by_path[os.path.join(folder.root, a)], by_path[os.path.join(folder.root, b)])
            for a, b in folder.duplicates]


@pytest.mark.parametrize("scope", ["identity", "global"])
def test_dry_run_finds_planted_duplicates_then_removal_keeps_representatives(
        scope, market_folder, market_dataset, tiny_dinov2):
    ds = market_dataset
    total = len(ds)
    planted = _planted_pairs(market_folder, ds)
    report = dedupe.find_near_duplicates(ds, THRESHOLD, scope=scope, model=tiny_dinov2)

    assert report.num_groups == report.num_duplicates == len(planted)
    assert len(ds) == total  # dry run deletes nothing
    groups = dict(zip(*ds.values(["id", contract.DUPLICATE_GROUP_FIELD])))
    paths = dict(zip(*ds.values(["id", "filepath"])))
    kept = set()
    for a, b in planted:
        assert groups[a] == groups[b] in (a, b)
        best = max((a, b), key=lambda i: dedupe.image_quality(paths[i]))
        assert groups[a] == best
        kept.add(best)
    assert set(ds.load_saved_view(contract.REPRESENTATIVES_VIEW).values("id")) == kept
    doomed = set(ds.load_saved_view(contract.DUPLICATES_VIEW).values("id"))
    assert doomed == {i for pair in planted for i in pair} - kept
    assert sum(report.histogram["counts"]) + report.histogram["over_max"] == total
    assert report.histogram["at_or_under_threshold"] == 2 * len(planted)

    removed = dedupe.remove_near_duplicates(ds, THRESHOLD, scope=scope, model=tiny_dinov2)
    assert removed.num_removed == len(planted) and len(ds) == total - len(planted)
    assert not set(ds.values("id")) & doomed and kept <= set(ds.values("id"))
    assert all(os.path.exists(paths[i]) for i in doomed)  # never deleted from disk
    index = ds.load_brain_results(contract.DEDUPE_BRAIN_KEY)
    assert index.total_index_size == len(ds)


def test_removal_refuses_without_a_matching_dry_run(market_dataset, tiny_dinov2):
    ds = market_dataset
    total = len(ds)
    with pytest.raises(ValueError, match="no dry run"):
        dedupe.remove_near_duplicates(ds, THRESHOLD, model=tiny_dinov2)
    dedupe.find_near_duplicates(ds, THRESHOLD, scope="identity", model=tiny_dinov2)
    with pytest.raises(ValueError, match="different settings.*threshold"):
        dedupe.remove_near_duplicates(ds, 0.003, scope="identity", model=tiny_dinov2)
    with pytest.raises(ValueError, match="different set of samples"):
        dedupe.remove_near_duplicates(ds.match_tags("train"), THRESHOLD, scope="identity", model=tiny_dinov2)
    assert len(ds) == total
    forced = dedupe.remove_near_duplicates(ds.match_tags("train"), THRESHOLD, scope="identity",
                                           model=tiny_dinov2, force=True)
    assert forced.num_removed == 6 and len(ds) == total - 6  # one planted copy per train identity


def test_bad_settings_fail_before_any_work(market_dataset, tiny_dinov2):
    with pytest.raises(ValueError, match="scope='bogus'.*identity"):
        dedupe.find_near_duplicates(market_dataset, THRESHOLD, scope="bogus", model=tiny_dinov2)
    with pytest.raises(ValueError, match="threshold=5"):
        dedupe.find_near_duplicates(market_dataset, 5, model=tiny_dinov2)
    assert contract.DEDUPE_BRAIN_KEY not in market_dataset.list_brain_runs()


def test_index_is_extended_not_recomputed(market_dataset, tiny_dinov2, market_folder):
    ds = market_dataset
    index = dedupe.ensure_dedupe_index(ds, model=tiny_dinov2)
    first_id = ds.first().id
    before = index.get_embeddings(sample_ids=[first_id])[0]
    import fiftyone as fo

    ds.add_sample(fo.Sample(filepath=ds.last().filepath, person_id=999, camera_id=1))
    index = dedupe.ensure_dedupe_index(ds, model=tiny_dinov2)
    assert index.total_index_size == len(ds)
    np.testing.assert_array_equal(index.get_embeddings(sample_ids=[first_id])[0], before)
    with pytest.raises(ValueError, match="holds .* embeddings"):
        dedupe.ensure_dedupe_index(ds, model="facebook/dinov2-base")


def test_leakage_flags_only_cross_split_duplicates(market_folder, dataset, tiny_dinov2, tmp_path):
    root = tmp_path / "market"
    shutil.copytree(market_folder.root, root)
    train_crop = sorted(os.listdir(root / "bounding_box_train"))[0]
    arr = np.asarray(Image.open(root / "bounding_box_train" / train_crop)).astype(np.int16)
    arr = np.roll(arr, 1, axis=0) + np.random.default_rng(0).integers(-2, 3, size=arr.shape)
    leaked = market_name(int(train_crop[:4]), 2, 1, 777, 9)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(root / "bounding_box_test" / leaked, quality=95)
    import_market1501(root, dataset=dataset)

    report = dedupe.check_split_leakage(dataset, THRESHOLD, model=tiny_dinov2)
    assert report.num_pairs == 1 and report.num_samples == 2
    assert report.samples_per_split == {"train": 1, "val": 0, "query+gallery": 1}
    assert report.person_ids == [int(train_crop[:4])]
    leaks = dataset.load_saved_view(contract.LEAKS_VIEW)
    assert sorted(os.path.basename(p) for p in leaks.values("filepath")) == sorted([train_crop, leaked])
    assert len(dataset.match_tags(contract.LEAK_TAG)) == 2


def test_reimport_after_curation_undoes_nothing(market_folder, dataset, tiny_dinov2, tmp_path):
    from person_finder.core.curation.hub import card_sections

    root = tmp_path / "market"
    shutil.copytree(market_folder.root, root)
    import_market1501(root, dataset=dataset, val_fraction=0.34, seed=3)
    dedupe.find_near_duplicates(dataset, THRESHOLD, scope="identity", model=tiny_dinov2)
    removed = dedupe.remove_near_duplicates(dataset, THRESHOLD, scope="identity", model=tiny_dinov2).num_removed
    assert removed == len(market_folder.duplicates)
    state = (len(dataset), dataset.count_sample_tags(), sorted(dataset.values("filepath")))
    val_ids = set(dataset.match_tags(contract.VAL_TAG).distinct(contract.PERSON_ID_FIELD))
    val_crop = dataset.match_tags(contract.VAL_TAG).first().filepath  # a new image of a val person appears
    new_name = market_name(dataset[val_crop][contract.PERSON_ID_FIELD], 3, 1, 888, 1)
    shutil.copy(val_crop, root / "bounding_box_train" / new_name)

    _, report = import_market1501(root, dataset=dataset, val_fraction=0.34, seed=3)
    assert report.previously_removed == removed and report.added == 1
    new = dataset[str(root / "bounding_box_train" / new_name)]
    assert new.tags == [contract.VAL_TAG]  # joins its person's split, not train
    new.delete()  # (the sample, not the file)
    assert (len(dataset), dataset.count_sample_tags(), sorted(dataset.values("filepath"))) == state
    assert not set(dataset.match_tags("train").distinct(contract.PERSON_ID_FIELD)) & val_ids
    assert not dataset.match_tags(contract.DUPLICATE_TAG)  # the card's "removed" is still true
    card = card_sections(dataset)["curation_rationale_section"]
    assert f"{removed} of them (the non-representatives) were removed" in card and "tagged" not in card


def test_a_sample_tagged_with_two_splits_is_a_leak(market_dataset, tiny_dinov2):
    ds = market_dataset
    both = ds.match_tags("train").first()
    both.tags.append(contract.VAL_TAG)
    both.save()
    report = dedupe.check_split_leakage(ds, THRESHOLD, model=tiny_dinov2)
    assert report.num_in_several_splits == 1 and both.id in ds.match_tags(contract.LEAK_TAG).values("id")
    assert report.samples_per_split["train"] >= 1 and report.samples_per_split["val"] >= 1
