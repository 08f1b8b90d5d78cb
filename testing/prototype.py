"""Datasets in the reference prototype's format, for tests and demos, saved as FiftyOne hub folders.

The prototype publishes person crops with ``person_id`` / ``camera_id``,
tags ``train`` / ``query`` / ``gallery``, ``attributes`` as a plain nested
dict with Title-case values (gender, age, ethnicity, appearance, clothing,
accessories, posture, actions) and a ``description``.

Example::

    from person_finder.testing.prototype import write_prototype_hub_folder
    folder, truth = write_prototype_hub_folder("/tmp/proto-hub", random_specs(8, seed=1))
    dataset = load_hub_dataset(folder, name="proto")     # load_from_hub's folder form
"""

from __future__ import annotations

import os

from . import synthetic


def prototype_attributes(spec):
    """What the prototype's Gemini step wrote for a synthetic ``spec`` (Title case, nested, free text)."""
    sleeves = "long-sleeved" if spec.long_sleeves else "short-sleeved"
    lower = "skirt" if spec.skirt else ("trousers" if spec.long_lower else "shorts")
    bag = f"{spec.bag_color.title()} {spec.bag}" if spec.bag != "none" else "None"
    return {
        "gender": spec.gender.title(), "age": "Adult", "ethnicity": "Unknown",
        "appearance": {"hair": f"{'Long' if spec.long_hair else 'Short'} hair", "build": "Average"},
        "clothing": {"upper_body": f"{spec.upper_color.title()} {sleeves} top",
                     "lower_body": f"{spec.lower_color.title()} {lower}", "footwear": "Unknown"},
        "accessories": {"bag": bag, "hat": "Hat" if spec.hat else "None", "glasses": "None"},
        "posture": {"pose": "Standing"},
        "actions": {"activity": "Walking"},
    }


def write_prototype_hub_folder(root, specs, images=3, seed=0, repo_id="prototype/multiview-reid-attributes"):
    """Write a hub folder (FiftyOne format + ``fiftyone.yml``) of a prototype-format dataset; returns
    ``(folder, {person id string: spec})``.

    Person ids are strings (``"p0001"``...), cameras ``"c1"``...; the first
    half of the people are ``train``, the rest have one ``query`` image and
    the others ``gallery``; every view has the prototype's attribute dict and
    description.
    """
    import fiftyone as fo

    from ..core.curation.hub import stage_for_hub

    media = os.path.join(root, "media-source")
    os.makedirs(media, exist_ok=True)
    truth, samples = {}, []
    for i, spec in enumerate(specs):
        pid = f"p{i + 1:04d}"
        truth[pid] = spec
        for k in range(images):
            path = os.path.join(media, f"{pid}_c{k + 1}_{seed}.jpg")
            synthetic.render_crop(spec, seed=seed * 7919 + i * 31 + k).save(path, quality=95)
            tag = "train" if i < len(specs) // 2 else ("query" if k == 0 else "gallery")
            samples.append(fo.Sample(filepath=path, tags=[tag], person_id=pid, camera_id=f"c{k + 1}",
                                     attributes=prototype_attributes(spec),
                                     description=synthetic.describe(spec, variant=k)))
    dataset = fo.Dataset()
    try:
        dataset.add_samples(samples)
        folder = stage_for_hub(dataset, os.path.join(root, "hub"), repo_id)
    finally:
        dataset.delete()
    return folder, truth
