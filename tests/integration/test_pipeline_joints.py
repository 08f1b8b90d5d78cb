"""Each stage consumes what the previous one wrote: generate -> merge -> captions -> training data, and reruns."""

import os

from person_finder.core import contract
from person_finder.core.attributes.gemini import generate_attributes
from person_finder.core.attributes.merge import merge_attributes
from person_finder.core.training.data import items_from_samples
from person_finder.testing import synthetic
from person_finder.testing.fake_gemini import FAST_CLIENT, add_people, spec_answer


def test_training_captions_come_from_the_merged_attributes_gemini_wrote(dataset, fake, test_root):
    specs = [synthetic.PersonSpec("red", "blue", bag="backpack", bag_color="black"),
             synthetic.PersonSpec("white", "black", bag="shoulder bag", bag_color="brown", skirt=True)]
    keys = add_people(dataset, os.path.join(test_root, "joints", dataset.name), specs, views=3)
    fake.answers.update({k: spec_answer(s) for k, s in keys.items()})
    generate_attributes(dataset, base_url=fake.base_url, **FAST_CLIENT)
    merge_attributes(dataset)
    texts = {it.person_id: it.texts for it in items_from_samples(dataset)}
    assert "red top and blue trousers" in texts[0] and "a person carrying a black backpack" in texts[0]
    assert "white top and black skirt" in texts[1] and "a person carrying a brown shoulder bag" in texts[1]


def test_merge_keeps_a_users_description_and_reruns_identically(dataset, test_root):
    from person_finder.core.attributes.store import to_document

    specs = synthetic.random_specs(2, seed=4)
    add_people(dataset, os.path.join(test_root, "joints-desc", dataset.name), specs, views=2)
    dataset.set_values(contract.ATTRIBUTES_FIELD,
                       [to_document(spec_answer(specs[p])) for p in dataset.values("person_id")], dynamic=True)
    mine = dataset.match({"person_id": 0}).first()
    mine[contract.DESCRIPTION_FIELD] = "my own words"
    mine.save()
    first = merge_attributes(dataset)
    assert dataset[mine.id][contract.DESCRIPTION_FIELD] == "my own words"
    others = dataset.match({"_id": {"$ne": mine._id}}).values(contract.DESCRIPTION_FIELD)
    assert all(specs[0].upper_color in t or specs[1].upper_color in t for t in others)
    assert first["descriptions_kept"] == 1 and first["descriptions_written"] == 3
    before = dataset.values([contract.DESCRIPTION_FIELD, contract.AGREEMENT_FIELD])
    second = merge_attributes(dataset)  # its own texts are rewritten, the user's still kept
    assert dataset.values([contract.DESCRIPTION_FIELD, contract.AGREEMENT_FIELD]) == before
    assert {k: v for k, v in second.items()} == first
    merge_attributes(dataset, overwrite_descriptions=True)
    assert dataset[mine.id][contract.DESCRIPTION_FIELD] != "my own words"
