"""Multi-view merging: one consensus record per identity (``person_id`` or a track id).

Per attribute, a vote across views weighted by confidence that ignores
"unknown"; accessories (hat, glasses, bags, other items) are present when at
least ``accessory_min_views`` views see them, since a backpack is hidden from
the front; bag colours are voted among the views that see the bag. Each
identity gets an agreement score (mean winning share over the attributes
that some view could see), the conflicting views per attribute, and a
deterministic description built from the merged values (optionally rewritten
by Gemini). Merged fields go to every view; per-view attributes stay.

Example::

    from person_finder.core.attributes.merge import merge_attributes, merge_views
    merge_attributes(dataset)                   # writes merged_attributes, attribute_agreement, description
    merged = merge_views([view_a, view_b])      # dicts of attribute values
    merged.values["upper_colors"], merged.agreement, merged.conflicts
"""

from __future__ import annotations

import collections
import dataclasses

from .. import contract, defaults
from ..progress import notify
from .schema import (ACCESSORY_FIELDS, BAG_COLOR_FIELDS, LIST_FIELDS, TEXT_FIELDS, UNKNOWN, PersonAttributes,
                     SensitivePersonAttributes, allowed_values)
from .store import check_attributes_field, from_document, save_run, to_document

ABSENT = ("no", UNKNOWN)


@dataclasses.dataclass
class MergedIdentity:
    """The consensus of several views: values, confidence per attribute, agreement, conflicts."""

    values: dict
    confidence: dict
    agreement: float
    conflicts: dict  # attribute -> {value: [view indices]}, only attributes on which known views disagree


def _known(value):
    return value is not None and value != UNKNOWN and value != ""


def _vote(pairs, order=()):
    """Weighted vote over (value, weight, view); returns (winner, share, {value: [views]}) or None."""
    weights, views = collections.defaultdict(float), collections.defaultdict(list)
    for value, weight, view in pairs:
        if _known(value):
            weights[value] += max(float(weight), 1e-6)
            views[value].append(view)
    if not weights:
        return None
    rank = {v: i for i, v in enumerate(order)}
    winner = max(weights, key=lambda v: (weights[v], len(views[v]), -rank.get(v, len(rank))))
    return winner, weights[winner] / sum(weights.values()), dict(views)


def merge_views(views, confidences=None, schema=PersonAttributes, accessory_min_views=defaults.ACCESSORY_MIN_VIEWS):
    """Merge per-view attribute dicts (with optional per-attribute confidences) into one identity.

    Example::

        front = {"upper_colors": ["red"], "backpack": "no"}
        back = {"upper_colors": ["red"], "backpack": "yes"}
        merge_views([front, back, back]).values["backpack"]   # 'yes': 2 views see it
        merge_views([front, front, back]).values["backpack"]  # 'no': only 1 view sees it
    """
    confidences = confidences or [None] * len(views)
    conf = [c or {} for c in confidences]
    needed = max(1, min(int(accessory_min_views), len(views)))
    values, confidence, shares, conflicts = {}, {}, {}, {}

    def weight(i, field):
        return conf[i].get(field, 1.0) if conf[i].get(field) is not None else 1.0

    def record(field, result, default=UNKNOWN):
        if result is None:
            values[field], confidence[field] = default, 0.0
            return
        values[field], confidence[field] = result[0], round(result[1], 4)
        shares[field] = result[1]
        if len(result[2]) > 1:
            conflicts[field] = result[2]

    for field in schema.model_fields:
        if field in TEXT_FIELDS or field in BAG_COLOR_FIELDS.values():
            continue
        if field in ACCESSORY_FIELDS:
            _merge_accessory(field, views, weight, needed, values, confidence, shares, conflicts, schema)
        elif field == "other_accessories":
            counts = collections.Counter(item.strip().lower() for v in views for item in set(v.get(field) or [])
                                         if item and item.strip())
            values[field] = [item for item, n in counts.most_common() if n >= needed]
        elif field in LIST_FIELDS:
            firsts = [((v.get(field) or [UNKNOWN])[0], weight(i, field), i) for i, v in enumerate(views)]
            result = _vote(firsts, allowed_values(schema, field))
            record(field, result)
            known_views = [set(v.get(field) or []) - {UNKNOWN} for v in views]
            known_views = [s for s in known_views if s]
            extra = collections.Counter(c for s in known_views for c in s)
            primary = [result[0]] if result else []
            values[field] = primary + sorted(c for c, n in extra.items()
                                             if c not in primary and n * 2 >= len(known_views))
        else:
            record(field, _vote([(v.get(field), weight(i, field), i) for i, v in enumerate(views)],
                                allowed_values(schema, field)))
    for bag, color_field in BAG_COLOR_FIELDS.items():
        if values.get(bag) == "yes":
            seen = [(v.get(color_field), weight(i, color_field), i) for i, v in enumerate(views) if v.get(bag) == "yes"]
            record(color_field, _vote(seen, allowed_values(schema, color_field)))
        else:
            values[color_field], confidence[color_field] = UNKNOWN, 0.0
    values["description"] = template_description(values)
    agreement = sum(shares.values()) / len(shares) if shares else 0.0
    return MergedIdentity(values=values, confidence=confidence, agreement=round(agreement, 4), conflicts=conflicts)


def _merge_accessory(field, views, weight, needed, values, confidence, shares, conflicts, schema):
    present = [(v.get(field), weight(i, field), i) for i, v in enumerate(views) if v.get(field) not in ABSENT + (None,)]
    absent = [("no", weight(i, field), i) for i, v in enumerate(views) if v.get(field) == "no"]
    total = sum(w for _, w, _ in present + absent)
    if len(present) >= needed:
        winner, _, _ = _vote(present, allowed_values(schema, field))
        side = present
    elif absent or present:
        winner, side = "no", absent
    else:
        values[field], confidence[field] = UNKNOWN, 0.0
        return
    share = sum(w for _, w, _ in side) / total if total else 0.0
    values[field], confidence[field] = winner, round(share, 4)
    shares[field] = share
    if present and absent:
        by_value = collections.defaultdict(list)
        for value, _, i in present + absent:
            by_value[value].append(i)
        conflicts[field] = dict(by_value)


_AGE = {"child": "young", "teenager": "teenage", "senior": "older"}
_NOUN = {"male": "man", "female": "woman"}
_SLEEVE = {"long": "long-sleeved ", "short": "short-sleeved ", "sleeveless": "sleeveless "}


def template_description(values):
    """A deterministic one-sentence description of merged (or per-view) values.

    Example::

        template_description({"gender": "female", "upper_colors": ["white"], "upper_type": "t-shirt",
                              "shoulder_bag": "yes", "shoulder_bag_color": "brown"})
        # 'a woman in a white t-shirt, carrying a brown shoulder bag'
    """
    get = lambda f: values.get(f) if _known(values.get(f)) else None  # noqa: E731
    subject = " ".join(w for w in ("a", _AGE.get(get("age_group")), _NOUN.get(get("gender"), "person")) if w)
    if get("hair_length") == "bald":
        subject += " who is bald"
    elif get("hair_length"):
        subject += f" with {get('hair_length')} hair"
    clothes = []
    upper_colors = [c for c in values.get("upper_colors") or [] if _known(c)]
    if upper_colors or get("upper_type"):
        kind = get("upper_type") if get("upper_type") not in (None, "other") else "top"
        clothes.append(f"a {' and '.join(upper_colors) + ' ' if upper_colors else ''}"
                       f"{_SLEEVE.get(get('sleeve_length'), '')}{kind}")
    lower_colors = [c for c in values.get("lower_colors") or [] if _known(c)]
    if lower_colors or get("lower_type") or get("lower_length"):
        kind = get("lower_type") if get("lower_type") not in (None, "other") else (
            "shorts" if get("lower_length") == "short" else "trousers")
        article = "a " if kind in ("skirt", "dress") else ""
        clothes.append(f"{article}{' and '.join(lower_colors) + ' ' if lower_colors else ''}{kind}")
    text = subject + (" in " + " and ".join(clothes) if clothes else "")
    carried = [f"a {get(BAG_COLOR_FIELDS[bag]) + ' ' if get(BAG_COLOR_FIELDS[bag]) else ''}{bag.replace('_', ' ')}"
               for bag in BAG_COLOR_FIELDS if get(bag) == "yes"]
    carried += [f"a {item}" for item in values.get("other_accessories") or []]
    worn = (["a hat"] if get("hat") == "yes" else []) + ([get("glasses")] if get("glasses") not in (None, "no") else [])
    if carried:
        text += ", carrying " + " and ".join(carried)
    if worn:
        text += ", wearing " + " and ".join(worn)
    return text


def merge_attributes(samples, group_field=contract.PERSON_ID_FIELD, scope_field=None, field=contract.ATTRIBUTES_FIELD,
                     merged_field=contract.MERGED_ATTRIBUTES_FIELD, agreement_field=contract.AGREEMENT_FIELD,
                     description_field=contract.DESCRIPTION_FIELD, accessory_min_views=defaults.ACCESSORY_MIN_VIEWS,
                     rewrite=False, overwrite_descriptions=False, run_key=contract.MERGE_RUN_KEY, on_progress=None,
                     **gemini_kwargs):
    """Merge ``field`` across the views of each identity and write the merged fields to every view.

    Views are grouped by ``group_field``; grouping by anything but the
    person id (a tracker's ids restart in every video) needs
    ``scope_field``, the field naming where an id is valid (e.g. the
    video's id): groups are then (scope, id) pairs. Pass
    ``scope_field=False`` for ids that are unique across the dataset.

    The merged description goes to ``description_field`` only where that is
    empty or still holds an earlier merge's text: a description someone else
    wrote (a user, the dataset's authors) is kept unless
    ``overwrite_descriptions``. ``rewrite`` asks Gemini (``gemini_kwargs``: api_key, model, base_url, ...)
    to turn each template description into fluent text; identities whose
    rewrite fails keep the template. Returns a summary dict.

    Example::

        merge_attributes(dataset.match_tags("train"), accessory_min_views=2)
    """
    for name in (group_field, field) + ((scope_field,) if scope_field else ()):
        if not samples.has_field(name):
            raise ValueError(f"field {name!r} not found; generate attributes first and group by one of "
                             f"{sorted(samples.get_field_schema())}")
    if group_field != contract.PERSON_ID_FIELD and scope_field is None:
        raise ValueError(f"grouping by {group_field!r}: track ids restart in every video, so people of different "
                         "videos would be merged. Pass scope_field (the field naming the video or source, e.g. "
                         "'video_id'), or scope_field=False if the ids are unique across the dataset")
    check_attributes_field(samples, field)
    if int(accessory_min_views) < 1:
        raise ValueError(f"accessory_min_views={accessory_min_views!r}; use an integer >= 1")
    schema = SensitivePersonAttributes if samples.has_field(f"{field}.ethnicity") else PersonAttributes
    if rewrite:
        from .gemini import resolve_api_key

        gemini_kwargs["api_key"] = resolve_api_key(gemini_kwargs.get("api_key"))
    ids, groups, docs = samples.values(["id", group_field, field])
    if scope_field:
        groups = [None if g is None else (scope, g) for scope, g in zip(samples.values(scope_field), groups)]
    own_texts = _writable_descriptions(samples, ids, merged_field, description_field, overwrite_descriptions)
    members = collections.defaultdict(list)
    for sample_id, group, doc in zip(ids, groups, docs):
        if group is not None:
            members[group].append((sample_id, doc))
    merged = merge_groups(members, schema, accessory_min_views,
                          lambda done: notify(on_progress, 0.5 * done / max(len(members), 1), "merging views"))
    rewritten_failures = 0
    if rewrite and merged:
        from .gemini import rewrite_descriptions

        texts = {g: (m.values["description"], _view_descriptions(members[g], schema)) for g, m in merged.items()}
        rewritten = rewrite_descriptions(texts, **gemini_kwargs)
        for g, text in rewritten.items():
            merged[g].values["description"] = text
        rewritten_failures = len(merged) - len(rewritten)
    docs_by_id, agreement_by_id, text_by_id = {}, {}, {}
    for group, result in merged.items():
        doc = to_document(result.values, result.confidence, num_views=len(members[group]),
                          **{contract.CONFLICTS_ATTR: result.conflicts})
        for sample_id, _ in members[group]:
            docs_by_id[sample_id] = doc
            agreement_by_id[sample_id] = result.agreement
            if sample_id in own_texts:
                text_by_id[sample_id] = result.values["description"]
    dataset = samples._root_dataset
    if docs_by_id:
        dataset.set_values(merged_field, docs_by_id, key_field="id", dynamic=True)
        dataset.set_values(agreement_field, agreement_by_id, key_field="id")
        if text_by_id:
            dataset.set_values(description_field, text_by_id, key_field="id")
    notify(on_progress, 1.0, "merged")
    agreements = [m.agreement for m in merged.values()]
    results = {"identities": len(merged), "views": len(docs_by_id),
               "identities_without_attributes": len(members) - len(merged),
               "mean_agreement": round(sum(agreements) / len(agreements), 4) if agreements else None,
               "identities_with_conflicts": sum(1 for m in merged.values() if m.conflicts),
               "rewrite_failures": rewritten_failures, "descriptions_written": len(text_by_id),
               "descriptions_kept": len(docs_by_id) - len(text_by_id)}
    save_run(samples, run_key, {"group_field": group_field, "scope_field": scope_field or None, "field": field,
                                "merged_field": merged_field,
                                "accessory_min_views": int(accessory_min_views), "rewrite": bool(rewrite)}, results)
    return {**results, "run_key": run_key}


def merge_groups(members, schema=PersonAttributes, accessory_min_views=defaults.ACCESSORY_MIN_VIEWS, on_group=None,
                 view_confidence=False):
    """``{group: MergedIdentity}`` from ``{group: [(view id, stored attributes document or None)]}``.

    Conflicts name the views by their ids; groups whose views have no
    attributes are left out. ``on_group(count)`` is called after each group.
    With ``view_confidence`` each merged confidence (the vote's share) is
    also scaled by the mean confidence the winning views gave their value,
    so one unsure view (a zero-shot 0.4) does not become a sure consensus.

    Example::

        merged = merge_groups({("video", 3): [(label_id, doc), (other_id, other_doc)]})
    """
    merged = {}
    for n, (group, views) in enumerate(members.items()):
        seen = [(sid, *from_document(doc, schema)) for sid, doc in views if doc is not None]
        if seen:
            result = merge_views([v for _, v, _ in seen], [c for _, _, c in seen], schema, accessory_min_views)
            result.conflicts = {f: {val: [seen[i][0] for i in idx] for val, idx in by.items()}
                                for f, by in result.conflicts.items()}
            if view_confidence:
                _scale_by_views(result, [v for _, v, _ in seen], [c for _, _, c in seen])
            merged[group] = result
        if on_group is not None:
            on_group(n + 1)
    return merged


def _scale_by_views(result, views, confidences):
    """Multiply each merged confidence by the mean confidence of the views that gave the winning value."""
    for field, share in result.confidence.items():
        winner = result.values.get(field)
        if isinstance(winner, list):
            winner = winner[0] if winner else None
        firsts = [(v.get(field) or [None])[0] if isinstance(v.get(field), list) else v.get(field) for v in views]
        backing = [c.get(field, 1.0) for value, c in zip(firsts, confidences) if value == winner]
        if backing:
            result.confidence[field] = round(share * sum(backing) / len(backing), 4)


def _writable_descriptions(samples, ids, merged_field, description_field, overwrite):
    """Ids of the samples whose description the merge may write: empty, or an earlier merge's own text."""
    if overwrite or not samples.has_field(description_field):
        return set(ids)
    texts = samples.values(description_field)
    previous = (samples.values(f"{merged_field}.description") if samples.has_field(merged_field)
                else [None] * len(ids))
    return {i for i, text, old in zip(ids, texts, previous)
            if not (isinstance(text, str) and text.strip()) or text == old}


def _view_descriptions(views, schema):
    out = []
    for _, doc in views:
        values, _ = from_document(doc, schema)
        if values and values.get("description"):
            out.append(values["description"])
    return out
