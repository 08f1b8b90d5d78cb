"""Person crops cut once from their images or video frames and kept as JPEG files (sent to Gemini, shown).

Example::

    from person_finder.core.search.crops import crop_files, default_crop_folder
    paths = crop_files([{"label_id": "...", "filepath": "a.jpg", "frame_number": None, "box": [0.1, 0.2, 0.2, 0.5]}],
                       default_crop_folder(dataset))
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np


def crop_files(persons, folder):
    """Write each person's crop as ``<folder>/<label id>.jpg`` once (kept for later runs); ``{label id: path}``.

    ``persons`` are dicts with ``label_id``, ``filepath``, ``frame_number``
    (None in images) and ``box`` (relative). Persons whose image or frame
    cannot be read are left out.

    Example::

        paths = crop_files(keyframes, "/data/crops/my-videos")
    """
    from PIL import Image

    from ..models.images import crop_relative, read_rgb_array
    from .tracking import frames_at

    os.makedirs(folder, exist_ok=True)
    paths, todo = {}, defaultdict(list)
    for person in persons:
        path = os.path.join(folder, f"{person['label_id']}.jpg")
        if os.path.exists(path):
            paths[person["label_id"]] = path
        else:
            todo[person["filepath"]].append((person, path))
    for filepath, members in todo.items():
        try:
            if members[0][0]["frame_number"] is None:
                images = {None: read_rgb_array(filepath)}
            else:
                images = frames_at(filepath, {p["frame_number"] for p, _ in members})
        except (OSError, IOError):
            continue
        for person, path in members:
            image = images.get(person["frame_number"])
            if image is not None:
                Image.fromarray(np.ascontiguousarray(crop_relative(image, person["box"]))).save(path, quality=95)
                paths[person["label_id"]] = path
    return paths


def default_crop_folder(dataset):
    """Where a dataset's person crops are cached: ``<FiftyOne default dataset dir>/person_finder_crops/<name>``."""
    import fiftyone as fo

    return os.path.join(fo.config.default_dataset_dir, "person_finder_crops", dataset.name)
