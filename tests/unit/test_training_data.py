"""Training data and losses: captions, colour-safe augmentation, seeded pairs and splits, positives."""

import fiftyone as fo
import numpy as np
import pytest
import torch
from person_finder.core.attributes.captions import attribute_captions
from person_finder.core.training import split_by_identity
from person_finder.core.training.data import PairDataset, augment
from person_finder.core.training.loss import contrastive_loss
from person_finder.testing import synthetic


def test_attribute_captions_render_the_merged_schema_colours_and_bags():
    from person_finder.core.attributes.merge import merge_views
    from person_finder.testing.fake_gemini import spec_answer

    spec = synthetic.PersonSpec("red", "blue", long_sleeves=False, bag="backpack", bag_color="black", hat=True)
    merged = merge_views([spec_answer(spec)] * 3).values  # what merge_attributes writes to merged_attributes
    captions = attribute_captions(merged)
    assert captions[0] == "red top and blue trousers"
    assert "a person carrying a black backpack" in captions and "a person wearing a hat" in captions
    assert "a person wearing a red short-sleeved t-shirt" in captions
    named = attribute_captions({"upper_colors": ["unknown", "white"], "lower_colors": ["black"], "lower_type": "skirt",
                                "shoulder_bag": "yes", "shoulder_bag_color": "brown", "handbag": "no",
                                "gender": "female", "age_group": "adult"})
    assert named[0] == "white top and black skirt"
    assert "a person carrying a brown shoulder bag" in named and not any("handbag" in c for c in named)
    assert not any("female" in c or "woman" in c or "adult" in c for c in named)  # sensitive: never rendered
    assert attribute_captions(None) == [] and attribute_captions({"unrelated": 3}) == []
    assert attribute_captions(synthetic.market_attributes(spec)) == []  # Market flags are not the schema
    doc = fo.DynamicEmbeddedDocument(upper_colors=["green"], lower_colors=["gray"], lower_length="short")
    assert attribute_captions(doc)[0] == "green top and gray shorts"


def test_augmentation_keeps_colours_size_and_is_reproducible():
    crop = synthetic.render_crop(synthetic.PersonSpec("red", "blue"), seed=0)
    outs = [augment(crop, np.random.default_rng(s)) for s in range(6)]
    assert all(o.size == crop.size and o.mode == "RGB" for o in outs)
    torso = lambda im: np.asarray(im)[40:60, 24:40].reshape(-1, 3).mean(0)  # noqa: E731
    for out in outs:
        r, g, b = torso(out)
        assert r > 1.8 * g and r > 1.8 * b  # still a red top: no hue change, no grayscale
    again = augment(crop, np.random.default_rng(3))
    assert np.array_equal(np.asarray(again), np.asarray(outs[3]))


def test_pair_dataset_depends_only_on_seed_epoch_and_index(small_items):
    train, _ = small_items
    a, b = PairDataset(train, seed=1), PairDataset(train, seed=1)
    b.epoch = 1
    assert np.array_equal(np.asarray(a[2][0]), np.asarray(PairDataset(train, seed=1)[2][0]))
    assert not np.array_equal(np.asarray(a[2][0]), np.asarray(b[2][0]))


def test_split_by_identity_is_seeded_and_disjoint(small_items):
    train, _ = small_items
    tr, va = split_by_identity(train, 0.34, seed=4)
    assert {i.person_id for i in tr}.isdisjoint({i.person_id for i in va})
    assert len({i.person_id for i in va}) == 2
    assert [i.person_id for i in split_by_identity(train, 0.34, seed=4)[1]] == [i.person_id for i in va]
    with pytest.raises(ValueError, match="too few"):
        split_by_identity(train[:8], 0.5)  # 2 identities cannot make 2 + 2


def test_same_person_pairs_are_positives_in_both_losses():
    ids = torch.tensor([1, 1, 2])
    together = torch.tensor([[5.0, 5.0, -5.0], [5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    apart = together.clone()
    apart[0, 1] = apart[1, 0] = -5.0  # treating the second view of person 1 as a negative
    for name in ("sigmoid", "infonce"):
        assert contrastive_loss(name, together, ids, ids) < contrastive_loss(name, apart, ids, ids)
    # sigmoid loss by hand: every pair correct with margin 5 -> 9 * softplus(-5) / 3 images
    expected = 9 * np.log1p(np.exp(-5.0)) / 3
    assert float(contrastive_loss("sigmoid", together, ids, ids)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="infonce"):
        contrastive_loss("softmax", together, ids, ids)
