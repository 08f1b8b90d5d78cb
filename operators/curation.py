"""Operators: Market-1501 import, near-duplicate dry run / removal, split leakage, hub publish / load."""

from __future__ import annotations

import os

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import contract, defaults
from . import common


def _folder_input(inputs, ctx, name, label, description, required=True):
    """A path field that turns red in the form when the folder does not exist."""
    prop = inputs.str(name, required=required, label=label, description=description)
    value = ctx.params.get(name)
    if value and not os.path.isdir(os.path.expanduser(value)):
        prop.invalid = True
        prop.error_message = f"{value!r} is not a folder"
    return prop


def _dedupe_inputs(ctx, inputs, threshold=True):
    inputs.view_target(ctx)
    if threshold:
        inputs.float("threshold", default=defaults.DEDUPE_THRESHOLD, min=0.0, max=2.0, label="Threshold",
                      description="Cosine distance at or under which two crops are near-duplicates; "
                                  "check it against the distance histogram of the dry run")
    inputs.str("model", default=defaults.DEDUPE_MODEL, label="DINOv2 model", description="Hugging Face id or folder")
    inputs.str("brain_key", default=contract.DEDUPE_BRAIN_KEY, label="Similarity index (brain key)")
    inputs.int("batch_size", default=defaults.DEDUPE_BATCH_SIZE, min=1, label="Batch size")


def _scope_input(inputs):
    choices = types.RadioGroup()
    choices.add_choice("identity", label="Within each identity", description="compare crops of the same person_id")
    choices.add_choice("global", label="Across the whole collection")
    inputs.enum("scope", choices.values(), default=defaults.DEDUPE_SCOPE, view=choices, label="Scope")


def _dedupe_kwargs(ctx, scope=True):
    p = ctx.params
    kwargs = dict(threshold=p.get("threshold", defaults.DEDUPE_THRESHOLD), model=p.get("model", defaults.DEDUPE_MODEL),
                  brain_key=p.get("brain_key", contract.DEDUPE_BRAIN_KEY),
                  batch_size=p.get("batch_size", defaults.DEDUPE_BATCH_SIZE), on_progress=common.progress_reporter(ctx))
    if scope:
        kwargs["scope"] = p.get("scope", defaults.DEDUPE_SCOPE)
    return kwargs


class ImportMarket1501(foo.Operator):
    """Import a Market-1501 folder (splits, ids, cameras, optional attributes and val split)."""

    @property
    def config(self):
        return common.long_running_config("import_market1501", "import Market-1501",
                       "Import bounding_box_train / query / bounding_box_test with ids, cameras and splits")

    def resolve_input(self, ctx):
        inputs = types.Object()
        _folder_input(inputs, ctx, "market_dir", "Market-1501 folder",
                      "The folder holding bounding_box_train/, query/ and bounding_box_test/")
        inputs.str("dataset_name", default="market1501", required=True, label="Dataset name",
                   description="Created if missing; an existing one only gets the images it lacks")
        inputs.str("attributes_path", label="Attribute file (optional)",
                   description="market_attribute.mat with Market-1501's 27 identity attributes")
        inputs.bool("include_gt_bbox", default=False, label="Also import gt_bbox/")
        inputs.float("val_fraction", default=0.0, min=0.0, max=0.9, label="Validation fraction",
                     description="Share of train identities moved to a 'val' split (0 = none)")
        inputs.int("seed", default=defaults.VAL_SPLIT_SEED, label="Validation split seed")
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Import Market-1501"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.curation.market import import_market1501

        p = ctx.params
        _, report = import_market1501(
            p["market_dir"], name=p.get("dataset_name", "market1501"), attributes_path=p.get("attributes_path"),
            include_gt_bbox=p.get("include_gt_bbox", False), val_fraction=p.get("val_fraction", 0.0),
            seed=p.get("seed", defaults.VAL_SPLIT_SEED), on_progress=common.progress_reporter(ctx))
        return report.summary()


class FindNearDuplicates(foo.Operator):
    """Dry run: tag near-duplicates and representatives, save views, report the distance histogram."""

    @property
    def config(self):
        return common.long_running_config("find_near_duplicates", "find near-duplicates (dry run)",
                       "Tag near-duplicate crops and save views of them; nothing is deleted")

    def resolve_input(self, ctx):
        inputs = types.Object()
        _dedupe_inputs(ctx, inputs)
        _scope_input(inputs)
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Find near-duplicates"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.curation.dedupe import find_near_duplicates, histogram_text

        report = find_near_duplicates(ctx.target_view(), **_dedupe_kwargs(ctx))
        return {**report.summary(), "histogram_text": "```\n" + histogram_text(report.histogram) + "\n```"}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_duplicates", label="Near-duplicates (would be removed)")
        outputs.int("num_groups", label="Groups (representatives kept)")
        outputs.str("histogram_text", label="Nearest-neighbour cosine distance", view=types.MarkdownView())
        return types.Property(outputs)


class RemoveNearDuplicates(foo.Operator):
    """Delete the dry run's near-duplicates from the dataset (never from disk)."""

    @property
    def config(self):
        return common.long_running_config("remove_near_duplicates", "remove near-duplicates",
                       "Delete non-representative near-duplicates found by the matching dry run")

    def resolve_input(self, ctx):
        inputs = types.Object()
        _dedupe_inputs(ctx, inputs)
        _scope_input(inputs)
        inputs.bool("force", default=False, label="Run without a matching dry run",
                    description="Runs the dry run itself first instead of refusing")
        inputs.view("warning", types.Warning(label="Samples are deleted from the dataset; files stay on disk"))
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Remove near-duplicates"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.curation.dedupe import remove_near_duplicates

        report = remove_near_duplicates(ctx.target_view(), force=ctx.params.get("force", False), **_dedupe_kwargs(ctx))
        return report.summary()


class CheckSplitLeakage(foo.Operator):
    """Flag near-duplicates across train / val / query+gallery."""

    @property
    def config(self):
        return common.long_running_config("check_split_leakage", "check split leakage",
                       "Tag near-duplicates that cross train, val and test, and save a view of them")

    def resolve_input(self, ctx):
        inputs = types.Object()
        _dedupe_inputs(ctx, inputs)
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Check split leakage"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.curation.dedupe import check_split_leakage

        return check_split_leakage(ctx.target_view(), **_dedupe_kwargs(ctx, scope=False)).summary()


class PublishToHub(foo.Operator):
    """Publish the current dataset to the Hugging Face Hub (or stage the same files in a folder)."""

    @property
    def config(self):
        return common.long_running_config("publish_to_hub", "publish to Hugging Face Hub",
                       "Push the dataset with FiftyOne's hub format and a Person Finder dataset card")

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.str("repo_name", required=True, label="Repository name", description="Published as <user>/<name>")
        inputs.str("description", label="Description")
        inputs.str("license", label="License (hub license id)")
        inputs.bool("private", default=True, label="Private repository")
        inputs.str("staging_dir", label="Write to this folder instead (optional)",
                   description="Writes the files that would be uploaded; nothing leaves the machine")
        if not ctx.params.get("staging_dir") and not ctx.secrets.get(contract.HF_TOKEN_SECRET):
            inputs.view("token_notice", types.Notice(label=f"Set the {contract.HF_TOKEN_SECRET} secret to publish"))
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Publish to hub"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.curation import hub

        p = ctx.params
        kwargs = dict(description=p.get("description"), license=p.get("license"))
        if p.get("staging_dir"):
            folder = hub.stage_for_hub(ctx.dataset, p["staging_dir"], f"<user>/{p['repo_name']}", **kwargs)
            return {"staged": folder, "samples": len(ctx.dataset)}
        repo_id = hub.publish_to_hub(ctx.dataset, p["repo_name"], private=p.get("private", True),
                                     token=ctx.secrets.get(contract.HF_TOKEN_SECRET), **kwargs)
        return {"repo_id": repo_id, "samples": len(ctx.dataset)}


class LoadFromHub(foo.Operator):
    """Load a FiftyOne dataset published on the hub (or a staged folder)."""

    @property
    def config(self):
        return common.long_running_config("load_from_hub", "load from Hugging Face Hub",
                       "Load a dataset published with FiftyOne's hub format")

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.str("source", required=True, label="Repo id or folder", description="e.g. user/market1501-curated")
        inputs.str("dataset_name", label="Dataset name (optional)")
        inputs.int("max_samples", label="Max samples (optional)")
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Load from hub"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.curation.hub import load_hub_dataset

        p = ctx.params
        dataset = load_hub_dataset(p["source"], name=p.get("dataset_name"), max_samples=p.get("max_samples"),
                                   token=ctx.secrets.get(contract.HF_TOKEN_SECRET))
        return {"dataset": dataset.name, "samples": len(dataset)}


OPERATORS = [ImportMarket1501, FindNearDuplicates, RemoveNearDuplicates, CheckSplitLeakage, PublishToHub, LoadFromHub]
