"""Share search results: draw them onto copies of the images and videos.

Matches are drawn in red with their similarity, other people in a neutral
colour (with their track id in videos), using FiftyOne's label drawing.

Example::

    from person_finder.core.search.export import export_results
    paths = export_results(dataset.match(F("person_similarity") > 0.2), "/tmp/shared")
"""

from __future__ import annotations

import os

from .. import contract, defaults
from ..progress import fiftyone_progress


def export_results(samples, output_dir, persons_field=contract.PERSONS_FIELD, match_color=defaults.MATCH_COLOR,
                   other_color=defaults.OTHER_PERSON_COLOR, on_progress=None):
    """Render ``persons`` (after a search) onto copies of the media in ``output_dir``; returns the paths.

    The originals are never modified; the box title shows the similarity.
    """
    import fiftyone.utils.annotations as foua
    from fiftyone import ViewField as F

    from . import drawing

    video = samples.media_type == "video"
    path = ("frames." if video else "") + persons_field
    if samples.get_field(path) is None:
        raise ValueError(f"{path!r} does not exist: run index_persons and search_persons before exporting")
    os.makedirs(output_dir, exist_ok=True)
    view = samples.set_field(f"{path}.detections.confidence", F(contract.SIMILARITY_ATTR))
    colormap = {"type": f"{drawing.__name__}.MatchColormap",
                "config": {"match_label": contract.MATCH_LABEL, "match_color": match_color,
                           "other_color": other_color}}
    draw = foua.draw_labeled_videos if video else foua.draw_labeled_images
    return draw(view, output_dir, label_fields=[path], progress=fiftyone_progress(on_progress, "drawing"),
                colormap_config=colormap, per_object_name_colors=False, per_object_label_colors=True,
                per_object_index_colors=False, show_object_confidences=True, show_object_attrs=False,
                show_object_names=False, show_object_indices=video)
