"""Operators over ``core.identities``: link tracks into identities; find a person elsewhere by example."""

from __future__ import annotations

from ..core import contract, defaults
from .base import Param, PersonFinderOperator, progress_reporter


class LinkIdentities(PersonFinderOperator):
    """Link tracks across videos and cameras into identities (never two people seen in one frame)."""

    name, label = "link_identities", "link identities"
    description = ("Give the same person one identity across videos and cameras, from the person index's "
                   "embeddings; writes identity and identity_confidence on every person")
    execution = "choose"
    params = (
        Param("threshold", "float", default=defaults.IDENTITY_LINK_THRESHOLD, min=-1.0, max=1.0,
              label="Link threshold (cosine)",
              description="Groups of tracks whose mean embeddings are at least this similar become one identity"),
        Param("neighbors", "int", default=defaults.IDENTITY_LINK_NEIGHBORS, min=1, label="Candidates per track"),
        Param("persons_field", default=contract.PERSONS_FIELD, label="Persons field",
              description="Where index_persons wrote the people"),
    )

    def run(self, ctx, **params):
        from ..core.identities import link_identities

        return link_identities(ctx.target_view(), on_progress=progress_reporter(ctx), **params)

    def summarize(self, ctx, result):
        unembedded = f"; {result['unembedded_tracks']} tracks without an embedding were left out" \
            if result["unembedded_tracks"] else ""
        return f"{result['linked_tracks']} tracks linked into {result['identities']} identities " \
               f"(`{contract.IDENTITY_ATTR}` on each person){unembedded}"


def _selected_person(ctx):
    labels = list(ctx.selected_labels or [])
    return labels[0]["label_id"] if labels else None


class FindPersonElsewhere(PersonFinderOperator):
    """Query by example: show the people most like a selected person, a track, an identity or an image."""

    name, label = "find_person_elsewhere", "find this person elsewhere"
    description = ("Rank the indexed people by similarity to an example (the selected person patch, a track, an "
                   "identity or an image of one person) and show the best first")
    execution = "immediate"
    params = (
        Param("label_id", label="Person (label id)",
              description="Empty: the person selected in the App"),
        Param("track_sample_id", label="Track: video sample id"),
        Param("track_id", "int", label="Track: track id"),
        Param("identity", "int", label="Identity", description="After link_identities"),
        Param("image", label="Image of the person", description="Path of a crop showing one person"),
        Param("k", "int", default=defaults.TOP_K, min=1, label="Results"),
        Param("brain_key", default=contract.PERSON_INDEX_KEY, label="Index name (brain key)"),
    )

    def run(self, ctx, label_id=None, track_sample_id=None, track_id=None, **params):
        from ..core.identities.examples import rank_like
        from ..core.search import panel_data

        if track_sample_id is not None or track_id is not None:
            if track_sample_id is None or track_id is None:
                raise ValueError("a track example needs both its video sample id and its track id")
            params["track"] = (track_sample_id, track_id)
        elif label_id is None and params.get("identity") is None and params.get("image") is None:
            label_id = _selected_person(ctx)
        rows = rank_like(ctx.target_view(), label_id=label_id, **params)
        field = ctx.dataset.get_brain_info(params["brain_key"]).config.patches_field
        if rows:
            ctx.ops.set_view(view=panel_data.results_view(ctx.dataset, rows, field))
        return {"results": len(rows), "matches": sum(r["match"] for r in rows),
                "best_similarity": rows[0]["similarity"] if rows else None}

    reloads_dataset = False  # it writes nothing

    def summarize(self, ctx, result):
        if not result["results"]:
            return "No other indexed person to compare with"
        return f"{result['results']} people shown, most alike first ({result['matches']} at or above " \
               f"{defaults.IDENTITY_LINK_THRESHOLD:g} cosine); best {result['best_similarity']:.3f}"


def _default_reid_folder(params):
    import os

    import fiftyone as fo

    name = params.get("dataset_name")
    return os.path.join(fo.config.default_dataset_dir, name) if name else None


class ExportReidDataset(PersonFinderOperator):
    """The indexed footage's people as a re-identification crop dataset (person_id = identity)."""

    name, label = "export_reid_dataset", "export re-identification dataset"
    description = ("Write the embedded person crops of these videos / images as a crop dataset split by identity "
                   "(train / query / gallery), ready for attributes, merge, fine-tune and evaluate")
    execution = "choose"
    params = (
        Param("dataset_name", required=True, label="New dataset name"),
        Param("folder", default=_default_reid_folder, label="Folder for the crops",
              description="Default: the dataset's folder under FiftyOne's default dataset dir"),
        Param("test_fraction", "float", default=defaults.REID_TEST_FRACTION, min=0.0, max=0.99,
              label="Share of multi-camera identities for query / gallery"),
        Param("persons_field", default=contract.PERSONS_FIELD, label="Persons field"),
    )

    def run(self, ctx, dataset_name, folder, **params):
        from ..core.identities import export_reid_dataset

        crops = export_reid_dataset(ctx.target_view(), dataset_name, folder, on_progress=progress_reporter(ctx),
                                    **params)
        return {"dataset": crops.name, "crops": len(crops), "tags": crops.count_sample_tags(),
                "identities": len(crops.distinct(contract.PERSON_ID_FIELD))}

    reloads_dataset = False  # writes another dataset

    def summarize(self, ctx, result):
        return f"`{result['dataset']}`: {result['crops']} crops of {result['identities']} identities ({result['tags']})"


OPERATORS = [LinkIdentities, FindPersonElsewhere, ExportReidDataset]
