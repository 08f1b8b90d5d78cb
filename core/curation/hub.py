"""Publish curated person datasets to the Hugging Face Hub and load them back.

Publishing goes through ``fiftyone.utils.huggingface.push_to_hub`` (FiftyOne's
own export format + ``fiftyone.yml``) and then replaces the generic card
with one that documents fields, splits, how attributes were made and the
limits. :func:`stage_for_hub` writes the same files to a local folder
without any network (to inspect before publishing, or to ship offline);
:func:`load_hub_dataset` loads a hub repo through ``load_from_hub`` or a
staged / downloaded folder directly.

Example::

    from person_finder.core.curation import hub
    hub.publish_to_hub(dataset, "market1501-curated", license="other", token=hf_token)
    ds = hub.load_hub_dataset("my-user/market1501-curated", name="market-copy")
    hub.stage_for_hub(dataset, "/tmp/market-hub", repo_id="my-user/market1501-curated")
"""

from __future__ import annotations

import contextlib
import os

from .. import contract

#: What a person-crop dataset's fields mean, for the card (fields not listed get their type only).
FIELD_DOCS = {
    contract.PERSON_ID_FIELD: "identity (Market-1501 person id; 0 = distractor)",
    contract.CAMERA_ID_FIELD: "camera number",
    "sequence": "Market-1501 video sequence within the camera",
    "frame": "frame number in the sequence",
    contract.MARKET_ATTRIBUTES_FIELD: "Market-1501's 27 identity-level attribute codes from market_attribute.mat "
                                      "(1 = no, 2 = yes; age 1-4), human-annotated",
    contract.ATTRIBUTES_FIELD: "per-view structured attributes (see Annotation process for how they were made)",
    contract.ATTRIBUTES_ERROR_FIELD: "why attribute generation failed for the sample, else empty",
    contract.MERGED_ATTRIBUTES_FIELD: "identity-level consensus of the per-view attributes (vote across views)",
    contract.AGREEMENT_FIELD: "share of views agreeing with the consensus",
    contract.DESCRIPTION_FIELD: "natural-language description of the person",
    contract.DUPLICATE_GROUP_FIELD: "representative of the sample's DINOv2 near-duplicate group",
}


def card_sections(samples, description=None):
    """The dataset card's body sections (template variables of huggingface_hub's dataset card).

    Example::

        card_sections(dataset)["dataset_structure"]
    """
    dataset = samples._root_dataset
    schema = samples.get_field_schema()
    skip = {"id", "filepath", "tags", "metadata", "created_at", "last_modified_at"}
    fields = [f"- `{name}` ({type(field).__name__}): {FIELD_DOCS.get(name, '')}".rstrip(": ")
              for name, field in schema.items() if name not in skip]
    tag_counts = samples.count_sample_tags()
    splits = [f"- `{tag}`: {tag_counts[tag]} images" for tag in
              (*contract.SPLIT_TAGS, contract.VAL_TAG, contract.DISTRACTOR_TAG) if tag in tag_counts]
    has_pid = samples.has_field(contract.PERSON_ID_FIELD)
    identities = len(samples.distinct(contract.PERSON_ID_FIELD)) if has_pid else None
    run = dataset.info.get("person_finder_dedupe_run")
    curation = ["Images are person crops; each sample is one image file, none renamed or merged."]
    removed = len(dataset.info.get(contract.REMOVED_FILES_INFO) or [])
    if run:
        tagged = len(samples.match_tags(contract.DUPLICATE_TAG))
        curation.append(
            f"Near-duplicates were searched with {_model_name(run['model'])} embeddings (cosine distance <= "
            f"{run['threshold']}, scope {run['scope']}); "
            + (f"{removed} of them (the non-representatives) were removed. " if removed else "")
            + (f"{tagged} are tagged `near_duplicate`, not removed." if tagged else ""))
    annotation = []
    if contract.MARKET_ATTRIBUTES_FIELD in schema:
        annotation.append(f"`{contract.MARKET_ATTRIBUTES_FIELD}`: the human annotations of Market-1501's "
                          "attribute file, per identity.")
    annotation += _attribute_provenance(dataset, schema)
    return {
        "dataset_description": (description or "Person re-identification crops curated with Person Finder.")
        + (f"\n\n{len(samples)} images of {identities} identities." if has_pid else f"\n\n{len(samples)} images."),
        "dataset_structure": "Splits (sample tags):\n\n" + ("\n".join(splits) or "- none") +
                             "\n\nFields:\n\n" + "\n".join(fields),
        "curation_rationale_section": "\n".join(curation),
        "annotation_process_section": "\n".join(annotation) or "No annotations beyond file-name ids.",
        "bias_risks_limitations": (
            "Pedestrians filmed in public places; a small number of cameras, one season and one site for "
            "Market-1501, so appearance, clothing and demographics are not representative. Identity labels "
            "come from file names. Do not use for surveillance of individuals; check the original dataset's "
            "license before redistributing its images."),
    }


def _model_name(model):
    """A model as the card names it: a hub id as is, a local folder by its name only (no local paths)."""
    model = str(model)
    return f"a local model ({os.path.basename(model.rstrip('/'))})" if os.path.isabs(model) or os.path.isdir(model) \
        else model


def _attribute_provenance(dataset, schema):
    """What the card says about attributes and descriptions: only what the dataset's run records show."""
    lines = []
    if dataset.has_run(contract.ATTRIBUTES_RUN_KEY):
        config = dataset.get_run_info(contract.ATTRIBUTES_RUN_KEY).config
        made_by = {"gemini": f"generated by Gemini ({config.model})",
                   "zero-shot": f"predicted zero-shot by the image-text matcher {_model_name(config.model)}"}
        lines.append(f"`{contract.ATTRIBUTES_FIELD}`: {made_by.get(config.provider, config.provider)} with a fixed "
                     f"schema (prompt {getattr(config, 'prompt_version', None)}); they can be wrong. Sensitive "
                     "attributes (e.g. ethnicity) " + ("were requested on opt-in." if getattr(
                         config, "include_sensitive", False) else "were not generated."))
    elif contract.ATTRIBUTES_FIELD in schema:
        lines.append(f"`{contract.ATTRIBUTES_FIELD}`: no generation run is recorded on this dataset (they came "
                     "with it, e.g. converted from the prototype's format).")
    if dataset.has_run(contract.MERGE_RUN_KEY):
        lines.append(f"`{contract.MERGED_ATTRIBUTES_FIELD}` and the descriptions it wrote: a vote across the views "
                     "of each identity.")
    if dataset.has_run(contract.AUDIT_RUN_KEY):
        audit = dataset.load_run_results(contract.AUDIT_RUN_KEY)
        lines.append(f"Audited against `{audit.gt_field}`: mean accuracy {audit.mean_accuracy} over "
                     f"{audit.num_samples} samples (`{audit.field}`).")
    elif lines:
        lines.append("Not audited against human annotations.")
    return lines


def build_dataset_card(samples, repo_id, description=None, license=None, tags=None, source=None):
    """FiftyOne's hub card metadata (tags, size, how to load) with Person Finder's sections (of ``source``,
    default ``samples``: the view and its dataset's records when a view's clone is published).

    Example::

        build_dataset_card(dataset, "me/market-curated").save("README.md")
    """
    import fiftyone.utils.huggingface as fouh
    import huggingface_hub as hfh

    base = fouh._create_dataset_card(repo_id, samples, tags=_hub_tags(samples, tags), license=license)
    return hfh.DatasetCard.from_template(base.data, **card_sections(source if source is not None else samples,
                                                                      description))


def _hub_tags(samples, tags):
    import fiftyone.utils.huggingface as fouh

    tags = [t.strip() for t in tags.split(",")] if isinstance(tags, str) else list(tags or [])
    return sorted(set(tags + fouh._get_dataset_tags(samples)))


def _chunk_size(samples):
    """push_to_hub's rule: more than 10,000 samples go in sub-folders of 1,000 files."""
    return 1000 if len(samples) > 10000 else None


def stage_for_hub(samples, export_dir, repo_id, description=None, license=None, tags=None):
    """Write exactly what :func:`publish_to_hub` uploads (data, ``fiftyone.yml``, ``README.md``) to a folder.

    ``samples`` is a dataset or a view (only the view's samples are written).

    Example::

        stage_for_hub(dataset.match_tags("train"), "/tmp/market-hub", "me/market-curated")
        load_hub_dataset("/tmp/market-hub", name="check")
    """
    import fiftyone.types as fot
    import fiftyone.utils.huggingface as fouh

    with _exportable(samples) as dataset:
        dataset.export(export_dir=str(export_dir), dataset_type=fot.FiftyOneDataset, export_media=True,
                       chunk_size=_chunk_size(dataset))
        fouh._populate_config_file(os.path.join(str(export_dir), "fiftyone.yml"), dataset,
                                   dataset_type=fot.FiftyOneDataset, description=description, license=license,
                                   tags=_hub_tags(dataset, tags))
        build_dataset_card(dataset, repo_id, description, license, tags, source=samples).save(
            os.path.join(str(export_dir), "README.md"))
    return str(export_dir)


def publish_to_hub(samples, repo_name, description=None, license=None, tags=None, private=True, exist_ok=False,
                   token=None):
    """Push a dataset or a view with ``fiftyone.utils.huggingface.push_to_hub`` and upload Person Finder's card.

    Returns the repo id (``user/repo_name``). The token may also come from ``HF_TOKEN``.

    Example::

        publish_to_hub(dataset.match_tags(["train", "query", "gallery"]), "market1501-curated",
                       token=os.environ["HF_TOKEN"])
    """
    import fiftyone.utils.huggingface as fouh
    import huggingface_hub as hfh

    repo_id = f"{hfh.whoami(token=token)['name']}/{repo_name}"
    with _exportable(samples) as dataset:
        fouh.push_to_hub(dataset, repo_name, description=description, license=license, tags=tags, private=private,
                         exist_ok=exist_ok, token=token, chunk_size=_chunk_size(dataset))
        build_dataset_card(dataset, repo_id, description, license, tags, source=samples).push_to_hub(
            repo_id, token=token)
    return repo_id


@contextlib.contextmanager
def _exportable(samples):
    """The dataset to export: ``samples`` itself, or a temporary clone of a view (its dataset's info kept)."""
    import fiftyone as fo

    if isinstance(samples, fo.Dataset):
        yield samples
        return
    if samples._dataset is not samples._root_dataset:
        raise ValueError(f"publish a dataset or a view of one, not a {type(samples).__name__} of generated "
                         "samples (patches, frames, clips): clone it into a dataset first")
    root = samples._root_dataset
    clone = samples.clone(name=f"{root.name}-{len(samples)}-published-{os.getpid()}")
    clone.info = dict(root.info)
    clone.save()
    try:
        yield clone
    finally:
        clone.delete()


def load_hub_dataset(repo_id_or_dir, name=None, overwrite=False, persistent=True, max_samples=None, token=None):
    """Load a FiftyOne dataset published on the hub, or a staged / downloaded copy of one.

    Example::

        load_hub_dataset("Voxel51/some-dataset", name="copy", max_samples=100)
    """
    import fiftyone as fo
    import fiftyone.types as fot
    import fiftyone.utils.huggingface as fouh
    import yaml

    source = os.path.expanduser(str(repo_id_or_dir))
    if not os.path.isdir(source):
        dataset = fouh.load_from_hub(source, name=name, overwrite=overwrite, persistent=persistent,
                                     max_samples=max_samples, token=token)
        # where load_from_hub puts a repo's files (fiftyone.utils.huggingface keeps them there)
        return _keep_media_inside(dataset, os.path.join(fo.config.default_dataset_dir, "huggingface", "hub", source))
    config_path = os.path.join(source, "fiftyone.yml")
    if not os.path.exists(config_path):
        raise ValueError(f"{source!r} has no fiftyone.yml: not a folder written by push_to_hub / stage_for_hub")
    with open(config_path) as f:
        config = yaml.safe_load(f) or {}
    if config.get("format") != "FiftyOneDataset":
        raise ValueError(f"{source!r} holds format {config.get('format')!r}; only 'FiftyOneDataset' folders load "
                         f"directly (use a hub repo id for other formats)")
    dataset = fo.Dataset.from_dir(source, dataset_type=fot.FiftyOneDataset, name=name or config.get("name"),
                                  overwrite=overwrite, persistent=persistent, max_samples=max_samples)
    return _keep_media_inside(dataset, source)


def media_outside(samples, root):
    """``(field, path)`` of every media path of ``samples`` (``filepath``, masks, heatmaps, other media
    fields, frames included) that does not resolve to a file under ``root`` (``..``, absolute paths, links out).

    Example::

        media_outside(dataset, "/data/market-hub")     # [] when every file is inside the folder
    """
    root = os.path.realpath(root)
    found = []
    for frames in (False, True) if samples._has_frame_fields() else (False,):
        prefix = samples._FRAMES_PREFIX if frames else ""
        for field, key in samples._get_media_fields(frames=frames).items():
            path = prefix + field + (f".{key}" if key else "")
            for value in _flatten(samples.values(path)):
                real = os.path.realpath(os.path.join(root, str(value)))
                if os.path.commonpath([root, real]) != root:
                    found.append((path, str(value)))
    return found


def _flatten(values):
    if isinstance(values, (list, tuple)):
        for value in values:
            yield from _flatten(value)
    elif values is not None:
        yield values


def _keep_media_inside(dataset, root):
    """``dataset`` if all its media lie under ``root``; else delete it (just created) and raise, naming samples."""
    outside = media_outside(dataset, root)
    if not outside:
        return dataset
    dataset.delete()
    examples = "; ".join(f"{field} {path!r}" for field, path in outside[:5])
    raise ValueError(f"refused to load {root!r}: {len(outside)} media path(s) point outside the folder ({examples}). "
                     "A loaded dataset may only reference files inside its folder; nothing was loaded")
