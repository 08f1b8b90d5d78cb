"""Fine-tune the matcher on a FiftyOne dataset and record the run on it.

Example::

    from person_finder.core.training.finetune import finetune
    result = finetune(dataset, "runs/people", TrainConfig(base_model="google/siglip-base-patch16-224"))
    dataset.load_run_results("matcher_finetune").history
"""

from __future__ import annotations

import dataclasses

from .. import contract, defaults
from .data import items_from_samples, split_by_identity
from .train import TrainConfig, check_training_data, process_state, train_matcher


def prepare_splits(samples, train_tag="train", val_fraction=defaults.TRAIN_VAL_FRACTION, seed=defaults.TRAIN_SEED,
                   description_field=contract.DESCRIPTION_FIELD, attributes_field=contract.MERGED_ATTRIBUTES_FIELD,
                   person_id_field=contract.PERSON_ID_FIELD):
    """Training and validation :class:`~.data.PersonItem` s from the ``train_tag`` samples, split by identity."""
    train = samples.match_tags(train_tag)
    if len(train) == 0:
        raise ValueError(f"no samples tagged {train_tag!r} to train on (tags found: {sorted(samples.distinct('tags'))})")
    items = items_from_samples(train, description_field, attributes_field, person_id_field)
    if val_fraction <= 0:
        return items, []
    return split_by_identity(items, val_fraction, seed=seed)


def finetune(samples, output_dir, config=None, train_tag="train", val_fraction=defaults.TRAIN_VAL_FRACTION,
             description_field=contract.DESCRIPTION_FIELD, attributes_field=contract.MERGED_ATTRIBUTES_FIELD,
             person_id_field=contract.PERSON_ID_FIELD, run_key=contract.TRAIN_RUN_KEY, tag_val=True,
             on_progress=None):
    """Fine-tune on the ``train_tag`` samples; validation identities are carved out by ``config.seed``.

    Every check (tags, descriptions, identities, batch size, the base
    model) runs before training starts. The validation samples get the
    ``val`` tag (with ``tag_val``; their other tags stay). Run ``run_key``
    on the dataset records the settings, the splits and the metrics of
    every finished epoch, and the folder of the saved model. Re-running with
    the same ``output_dir`` resumes from its last checkpoint.

    Example::

        result = finetune(dataset.match_tags("train"), "runs/people", TrainConfig(mode="lora", epochs=5))
        load_matcher(result.model_dir)
    """
    from ..models.matcher import load_matcher

    config = config or TrainConfig()
    train, val = prepare_splits(samples, train_tag, val_fraction, config.seed, description_field,
                                attributes_field, person_id_field)
    check_training_data(train, val, config)
    load_matcher(config.base_model, device="cpu")  # a folder that is not a matcher fails here, before training
    dataset = samples._dataset
    val_ids = sorted({it.person_id for it in val})
    run_config = dataset.init_run(
        train=dataclasses.asdict(config), output_dir=str(output_dir), train_tag=train_tag,
        val_fraction=val_fraction, train_identities=len({it.person_id for it in train}), train_images=len(train),
        val_identities=val_ids, val_images=len(val),
    )

    def record(history):
        dataset.save_run_results(run_key, dataset.init_run_results(run_key, history=history, model_dir=None))

    if process_state(config).is_main_process:
        dataset.register_run(run_key, run_config, overwrite=True)
        if tag_val and val_ids:
            samples.match_tags(train_tag).match({person_id_field: {"$in": val_ids}}).tag_samples(contract.VAL_TAG)
    card = (f"Data: FiftyOne dataset `{dataset.name}`, {len(train)} training images of "
            f"{len({it.person_id for it in train})} identities (tag `{train_tag}`), validation "
            f"{len(val)} images of {len(val_ids)} other identities (tag `{contract.VAL_TAG}`).")
    result = train_matcher(train, val, output_dir, config, on_progress=on_progress, model_card=card, on_epoch=record)
    if result.is_main_process:
        dataset.save_run_results(run_key, dataset.init_run_results(
            run_key, history=result.history, model_dir=result.model_dir, best_epoch=result.best_epoch,
            best_metrics=result.best_metrics, stopped_early=result.stopped_early))
    return result
