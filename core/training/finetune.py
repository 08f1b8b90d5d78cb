"""Fine-tune the matcher on a FiftyOne dataset and record the run on it.

Validation is the dataset's one ``val`` split (what ``import_market1501``
carved, or what the first fine-tuning carved when there was none): a
second run reads the same split, so no person moves between training and
calibration across runs.

Example::

    from person_finder.core.training.finetune import finetune
    result = finetune(dataset, "runs/people", TrainConfig(base_model="google/siglip-base-patch16-224"))
    dataset.load_run_results(result.run_key).history
"""

from __future__ import annotations

import dataclasses

from .. import contract, defaults
from .data import items_from_samples, split_by_identity
from .train import TrainConfig, check_loss_fits_model, check_training_data, process_state, train_matcher


def prepare_splits(samples, train_tag="train", val_fraction=defaults.TRAIN_VAL_FRACTION, seed=defaults.TRAIN_SEED,
                   description_field=contract.DESCRIPTION_FIELD, attributes_field=contract.MERGED_ATTRIBUTES_FIELD,
                   person_id_field=contract.PERSON_ID_FIELD):
    """``(train items, val items, carve)``: training is ``train_tag`` minus ``val``; validation the ``val`` split.

    With no ``val`` split (in ``samples`` nor in their dataset) one is
    drawn from the training identities (``val_fraction``, ``seed``) and
    ``carve`` lists its person ids, to be tagged once training may start.

    Example::

        train, val, carve = prepare_splits(dataset, val_fraction=0.2)
    """
    train = samples.match_tags(train_tag).match_tags(contract.VAL_TAG, bool=False)
    if len(train) == 0:
        raise ValueError(f"no samples tagged {train_tag!r} (and not {contract.VAL_TAG!r}) to train on "
                         f"(tags found: {sorted(samples.distinct('tags'))})")
    items = items_from_samples(train, description_field, attributes_field, person_id_field)
    held = samples.match_tags(contract.VAL_TAG)
    held = held if len(held) else samples._root_dataset.match_tags(contract.VAL_TAG)
    if len(held):
        return items, items_from_samples(held, description_field, attributes_field, person_id_field), None
    if val_fraction <= 0:
        return items, [], None
    train_items, val_items = split_by_identity(items, val_fraction, seed=seed)
    return train_items, val_items, sorted({it.person_id for it in val_items})


def resolve_run_key(dataset, output_dir, run_key=None):
    """``run_key``, or the first of ``matcher_finetune``, ``matcher_finetune_2``, ... that is free or already
    records ``output_dir`` (a resumed run): a second model never replaces the first one's record.

    Example::

        resolve_run_key(dataset, "runs/second")   # 'matcher_finetune_2' when runs/first holds matcher_finetune
    """
    if run_key:
        return run_key
    n = 1
    while True:
        key = contract.TRAIN_RUN_KEY + ("" if n == 1 else f"_{n}")
        if not dataset.has_run(key) or dataset.get_run_info(key).config.output_dir == str(output_dir):
            return key
        n += 1


def _provenance(dataset, train, val, train_tag, val_source):
    """Where the training data came from, for the model card: dataset, splits, how the texts were made."""
    data = {"dataset": dataset.name, "train": f"{len(train)} images of {len({it.person_id for it in train})} "
                                              f"identities (tag `{train_tag}`)",
            "validation": f"{len(val)} images of {len({it.person_id for it in val})} other identities "
                          f"(tag `{contract.VAL_TAG}`, {val_source})"}
    for key, label in ((contract.ATTRIBUTES_RUN_KEY, "attributes"), (contract.MERGE_RUN_KEY, "merge")):
        if dataset.has_run(key):
            config = dataset.get_run_info(key).config
            data[label] = ", ".join(f"{k} {getattr(config, k)}" for k in ("provider", "model", "prompt_version",
                                                                         "accessory_min_views")
                                    if getattr(config, k, None) is not None)
    return data


def finetune(samples, output_dir, config=None, train_tag="train", val_fraction=defaults.TRAIN_VAL_FRACTION,
             description_field=contract.DESCRIPTION_FIELD, attributes_field=contract.MERGED_ATTRIBUTES_FIELD,
             person_id_field=contract.PERSON_ID_FIELD, run_key=None, on_progress=None):
    """Fine-tune on the ``train_tag`` samples, validating on the dataset's ``val`` split.

    Every check (tags, texts, identities, batch size, the base model and
    its loss) runs before anything is written. Without a ``val`` split,
    ``val_fraction`` of the training identities (seeded by ``config.seed``)
    become it: tagged ``val`` instead of ``train``, once. The run record
    (``run_key``; default: ``matcher_finetune``, or the next free
    ``matcher_finetune_N`` when another model holds it) has the settings,
    the splits, every finished epoch's metrics and the model folder; the
    returned result carries ``run_key``. Re-running with the same
    ``output_dir`` resumes from its last checkpoint under the same record.

    Example::

        result = finetune(dataset, "runs/people", TrainConfig(mode="lora", epochs=5))
        load_matcher(result.model_dir)
    """
    from ..curation.market import move_to_validation
    from ..models.matcher import load_matcher

    config = config or TrainConfig()
    train, val, carve = prepare_splits(samples, train_tag, val_fraction, config.seed, description_field,
                                       attributes_field, person_id_field)
    check_training_data(train, val, config)
    check_loss_fits_model(load_matcher(config.base_model, device="cpu"), config)  # before anything is written
    dataset = samples._root_dataset
    run_key = resolve_run_key(dataset, output_dir, run_key)
    val_ids = sorted({it.person_id for it in val})
    val_source = "carved by this run" if carve else "the dataset's split"
    run_config = dataset.init_run(
        train=dataclasses.asdict(config), output_dir=str(output_dir), train_tag=train_tag,
        val_fraction=val_fraction, val_source=val_source, train_identities=len({it.person_id for it in train}),
        train_images=len(train), val_identities=val_ids, val_images=len(val),
    )

    def record(history):
        dataset.save_run_results(run_key, dataset.init_run_results(run_key, history=history, model_dir=None))

    if process_state(config).is_main_process:
        if carve:
            move_to_validation(samples.match_tags(train_tag).match({person_id_field: {"$in": carve}}),
                               {"fraction": float(val_fraction), "seed": int(config.seed), "by": "finetune"})
        if not dataset.has_run(run_key) or dataset.get_run_info(run_key).config.output_dir != str(output_dir):
            dataset.register_run(run_key, run_config, overwrite=True)  # a resumed run keeps its record
    result = train_matcher(train, val, output_dir, config, on_progress=on_progress, on_epoch=record,
                           provenance=_provenance(dataset, train, val, train_tag, val_source))
    result.run_key = run_key
    if result.is_main_process:
        dataset.save_run_results(run_key, dataset.init_run_results(
            run_key, history=result.history, model_dir=result.model_dir, best_epoch=result.best_epoch,
            best_metrics=result.best_metrics, stopped_early=result.stopped_early))
    return result
