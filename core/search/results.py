"""What a search leaves on the dataset besides its labels: its record, declared score fields, match colours.

"Match" means one thing at a time: the labels on the dataset come from the
last :func:`core.search.search_persons` (operator, panel or SDK), and
:func:`last_search` says which query, index and threshold produced them, so
the grid, the sidebar and the panel agree. The scores are declared fields
(the sidebar filters and sorts on them) and matches get a colour of their own
in the dataset's saved App color scheme.

Example::

    from person_finder.core.search import last_search
    last_search(dataset)   # {"query": "red top ...", "threshold": 0.1, "threshold_type": "cosine", "matches": 3, ...}
"""

from __future__ import annotations

import datetime

from .. import contract, defaults


def record_search(dataset, patches_field, video, **record):
    """Store ``record`` (query, brain_key, threshold, ...) as the dataset's last search; declare and style its fields.

    Example::

        record_search(dataset, "persons", False, query="red top", brain_key="person_index", threshold=0.1,
                      threshold_type="cosine", cosine_threshold=0.1, matches=2, people=6)
    """
    declare_score_fields(dataset, patches_field, video)
    style_matches(dataset, patches_field, video)
    dataset.info[contract.LAST_SEARCH_INFO] = {
        **record, "labels": ("frames." if video else "") + patches_field,
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    dataset.save()


def last_search(samples):
    """The record of the search whose labels the dataset holds now (see :func:`record_search`), or None.

    Example::

        record = last_search(dataset)
        f"{record['matches']} matches for {record['query']!r} at {record['threshold']}"
    """
    dataset = samples._root_dataset
    dataset.reload()
    return dataset.info.get(contract.LAST_SEARCH_INFO)


def declare_score_fields(dataset, patches_field, video):
    """Declare the persons' scores (similarity, probability, attribute and fused) so the App sidebar can filter them.

    Example::

        declare_score_fields(dataset, "persons", video=False)
        dataset.get_field("persons.detections.similarity")    # FloatField
    """
    import fiftyone.core.fields as fof

    add = dataset.add_frame_field if video else dataset.add_sample_field
    has = dataset.has_frame_field if video else dataset.has_sample_field
    for attr in (contract.SIMILARITY_ATTR, contract.PROBABILITY_ATTR, contract.ATTRIBUTE_SCORE_ATTR,
                 contract.FUSED_SCORE_ATTR):
        path = f"{patches_field}.detections.{attr}"
        if not has(path):
            add(path, fof.FloatField)


def style_matches(dataset, patches_field, video, match_color=defaults.MATCH_COLOR,
                  other_color=defaults.OTHER_PERSON_COLOR):
    """Save a color scheme drawing ``match`` people in ``match_color`` and the others in ``other_color``.

    Only this plugin's fields are touched; the rest of a saved scheme stays
    as it is (its ``color_by`` too, when it has one).

    Example::

        style_matches(dataset, "persons", video=False)
    """
    import fiftyone as fo

    colors = [{"value": contract.MATCH_LABEL, "color": match_color},
              {"value": contract.PERSON_LABEL, "color": other_color}]
    ours = {("frames." if video else "") + patches_field: colors}
    if video:
        ours[contract.VIDEO_MATCHES_FIELD] = colors[:1]
    scheme = dataset.app_config.color_scheme or fo.ColorScheme()
    fields = [f for f in scheme.fields or [] if f.get("path") not in ours]
    fields += [{"path": path, "colorByAttribute": "label", "valueColors": values} for path, values in ours.items()]
    scheme.fields = fields
    scheme.color_by = scheme.color_by or "value"
    dataset.app_config.color_scheme = scheme


def saved_color_scheme(samples):
    """The dataset's saved color scheme as the App's ``set_color_scheme`` operation takes it (``color_by``, ``fields``).

    Example::

        ctx.trigger("set_color_scheme", params=saved_color_scheme(dataset))
    """
    scheme = samples._root_dataset.app_config.color_scheme
    if scheme is None:
        return {}
    return {"color_by": scheme.color_by, "fields": list(scheme.fields or [])}
