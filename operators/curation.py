"""Operators over ``core.curation``: Market-1501 import, near-duplicates, split leakage, hub publish / load."""

from __future__ import annotations

import os

import fiftyone.operators.types as types

from ..core import contract, defaults
from .base import Param, PersonFinderOperator, progress_reporter


def _not_a_folder(value):
    return None if not value or os.path.isdir(os.path.expanduser(value)) else f"{value!r} is not a folder"


#: The DINOv2 index every dedupe operator shares (threshold first: the one a user tunes).
DEDUPE_PARAMS = (
    Param("threshold", "float", default=defaults.DEDUPE_THRESHOLD, min=0.0, max=2.0, label="Threshold",
          description="Cosine distance at or under which two crops are near-duplicates; "
                      "check it against the distance histogram of the dry run"),
    Param("model", default=defaults.DEDUPE_MODEL, label="DINOv2 model", description="Hugging Face id or folder"),
    Param("brain_key", default=contract.DEDUPE_BRAIN_KEY, label="Similarity index (brain key)"),
    Param("batch_size", "int", default=defaults.DEDUPE_BATCH_SIZE, min=1, label="Batch size"),
)
SCOPE_PARAM = Param("scope", "enum", default=defaults.DEDUPE_SCOPE, choices=defaults.DEDUPE_SCOPES, view="radio",
                    label="Scope", description="identity: compare crops of the same person_id; global: all crops")


class ImportMarket1501(PersonFinderOperator):
    """Import a Market-1501 folder (splits, ids, cameras, optional attributes and val split)."""

    name, label = "import_market1501", "import Market-1501"
    description = "Import bounding_box_train / query / bounding_box_test with ids, cameras and splits"
    targets_view = False
    params = (
        Param("market_dir", required=True, label="Market-1501 folder", check=_not_a_folder,
              description="The folder holding bounding_box_train/, query/ and bounding_box_test/"),
        Param("dataset_name", default="market1501", required=True, label="Dataset name",
              description="Created if missing; an existing one only gets the images it lacks"),
        Param("attributes_path", label="Attribute file (optional)",
              description="market_attribute.mat with Market-1501's 27 identity attributes"),
        Param("include_gt_bbox", "bool", default=False, label="Also import gt_bbox/"),
        Param("val_fraction", "float", default=0.0, min=0.0, max=0.9, label="Validation fraction",
              description="Share of train identities moved to a 'val' split (0 = none)"),
        Param("seed", "int", default=defaults.VAL_SPLIT_SEED, label="Validation split seed"),
    )

    def run(self, ctx, market_dir, dataset_name, **params):
        from ..core.curation.market import import_market1501

        _, report = import_market1501(market_dir, name=dataset_name, on_progress=progress_reporter(ctx), **params)
        return report.summary()


class FindNearDuplicates(PersonFinderOperator):
    """Dry run: tag near-duplicates and representatives, save views, report the distance histogram."""

    name, label = "find_near_duplicates", "find near-duplicates (dry run)"
    description = "Tag near-duplicate crops and save views of them; nothing is deleted"
    params = DEDUPE_PARAMS + (SCOPE_PARAM,)

    def run(self, ctx, **params):
        from ..core.curation.dedupe import find_near_duplicates, histogram_text

        report = find_near_duplicates(ctx.target_view(), on_progress=progress_reporter(ctx), **params)
        return {**report.summary(), "histogram_text": "```\n" + histogram_text(report.histogram) + "\n```"}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_duplicates", label="Near-duplicates (would be removed)")
        outputs.int("num_groups", label="Groups (representatives kept)")
        outputs.str("histogram_text", label="Nearest-neighbour cosine distance", view=types.MarkdownView())
        return types.Property(outputs)


class RemoveNearDuplicates(PersonFinderOperator):
    """Delete the dry run's near-duplicates from the dataset (never from disk)."""

    name, label = "remove_near_duplicates", "remove near-duplicates"
    description = "Delete non-representative near-duplicates found by the matching dry run"
    params = DEDUPE_PARAMS + (
        SCOPE_PARAM,
        Param("force", "bool", default=False, label="Run without a matching dry run",
              description="Runs the dry run itself first instead of refusing"),
    )

    def extend_form(self, ctx, inputs):
        inputs.view("warning", types.Warning(label="Samples are deleted from the dataset; files stay on disk"))

    def run(self, ctx, **params):
        from ..core.curation.dedupe import remove_near_duplicates

        return remove_near_duplicates(ctx.target_view(), on_progress=progress_reporter(ctx), **params).summary()


class CheckSplitLeakage(PersonFinderOperator):
    """Flag near-duplicates across train / val / query+gallery."""

    name, label = "check_split_leakage", "check split leakage"
    description = "Tag near-duplicates that cross train, val and test, and save a view of them"
    params = DEDUPE_PARAMS

    def run(self, ctx, **params):
        from ..core.curation.dedupe import check_split_leakage

        return check_split_leakage(ctx.target_view(), on_progress=progress_reporter(ctx), **params).summary()


class PublishToHub(PersonFinderOperator):
    """Publish the current dataset to the Hugging Face Hub (or stage the same files in a folder)."""

    name, label = "publish_to_hub", "publish to Hugging Face Hub"
    description = "Push the dataset (or the current view) with FiftyOne's hub format and a Person Finder dataset card"
    params = (
        Param("repo_name", required=True, label="Repository name", description="Published as <user>/<name>"),
        Param("description", label="Description"),
        Param("license", label="License (hub license id)"),
        Param("private", "bool", default=True, label="Private repository"),
        Param("staging_dir", label="Write to this folder instead (optional)",
              description="Writes the files that would be uploaded; nothing leaves the machine"),
    )

    def extend_form(self, ctx, inputs):
        if not ctx.params.get("staging_dir") and not ctx.secrets.get(contract.HF_TOKEN_SECRET):
            inputs.view("token_notice", types.Notice(label=f"Set the {contract.HF_TOKEN_SECRET} secret to publish"))

    def run(self, ctx, repo_name, private, staging_dir, **card):
        from ..core.curation import hub

        samples = ctx.target_view()
        if staging_dir:
            folder = hub.stage_for_hub(samples, staging_dir, f"<user>/{repo_name}", **card)
            return {"staged": folder, "samples": len(samples)}
        repo_id = hub.publish_to_hub(samples, repo_name, private=private,
                                     token=ctx.secrets.get(contract.HF_TOKEN_SECRET), **card)
        return {"repo_id": repo_id, "samples": len(samples)}


class LoadFromHub(PersonFinderOperator):
    """Load a FiftyOne dataset published on the hub (or a staged folder)."""

    name, label = "load_from_hub", "load from Hugging Face Hub"
    description = "Load a dataset published with FiftyOne's hub format"
    targets_view = False
    params = (
        Param("source", required=True, label="Repo id or folder", description="e.g. user/market1501-curated"),
        Param("dataset_name", label="Dataset name (optional)"),
        Param("max_samples", "int", label="Max samples (optional)"),
    )

    def run(self, ctx, source, dataset_name, max_samples):
        from ..core.curation.hub import load_hub_dataset

        dataset = load_hub_dataset(source, name=dataset_name, max_samples=max_samples,
                                   token=ctx.secrets.get(contract.HF_TOKEN_SECRET))
        return {"dataset": dataset.name, "samples": len(dataset)}


class ConvertPrototypeDataset(PersonFinderOperator):
    """Convert a dataset in the reference prototype's format (plain-dict attributes, string ids) once, losslessly."""

    name, label = "convert_prototype_dataset", "convert a prototype dataset"
    description = ("Read the prototype's Title-case attribute dicts into the plugin's schema (originals kept in "
                   "prototype_attributes) and map string person / camera ids to integers (originals kept)")
    targets_view = False
    params = (
        Param("include_sensitive", "bool", default=False, label="Keep ethnicity",
              description="Sensitive attributes are read only on explicit opt-in"),
    )

    def run(self, ctx, include_sensitive):
        from ..core.curation.prototype import convert_prototype_dataset

        return convert_prototype_dataset(ctx.dataset, include_sensitive=include_sensitive,
                                         on_progress=progress_reporter(ctx))


OPERATORS = [ImportMarket1501, FindNearDuplicates, RemoveNearDuplicates, CheckSplitLeakage, PublishToHub, LoadFromHub,
             ConvertPrototypeDataset]
