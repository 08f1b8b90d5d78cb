"""The fine-tuning loop: Hugging Face ``accelerate``, checkpoints, resume, early stopping.

``accelerate`` places the model, runs mixed precision on a GPU and, under
``accelerate launch``, data-parallel training on several GPUs or machines;
this file has no distributed code of its own. Each epoch ends with a
validation mAP and a full checkpoint: ``accelerator.save_state`` (weights,
optimizer, scheduler, sampler and every RNG), the loop's own state (history,
best epoch, early-stop counter) and, when the epoch is the best so far, its
weights, all written to ``epoch-N.partial`` and renamed to ``epoch-N`` in one
step. A new call with the same ``output_dir`` resumes after the last complete
checkpoint (a half-written one is ignored) and, with the same seed, ends with
the same weights as an uninterrupted run, wherever the first one was killed.

Example::

    from person_finder.core.training import TrainConfig, train_matcher
    result = train_matcher(train_items, val_items, "runs/siglip-people",
                           TrainConfig(base_model="google/siglip-base-patch16-224", epochs=5))
    result.model_dir        # loadable with load_matcher(result.model_dir)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil

from .. import defaults
from .evaluation import retrieval_metrics, text_to_image_scores
from ..progress import notify
from .data import Collator, PairDataset

logger = logging.getLogger(__name__)

#: Values of :attr:`TrainConfig.mode`.
MODES = defaults.TRAIN_MODES
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
_STATE = "training_state.json"
_BEST = "best.pt"


@dataclasses.dataclass
class TrainConfig:
    """Everything that decides a fine-tuning run (defaults from ``core.defaults``)."""

    base_model: str = defaults.MATCHER_MODEL
    epochs: int = defaults.TRAIN_EPOCHS
    batch_size: int = defaults.TRAIN_BATCH_SIZE
    learning_rate: float = None  # None: TRAIN_LEARNING_RATE (full) or TRAIN_LORA_LEARNING_RATE (lora)
    weight_decay: float = defaults.TRAIN_WEIGHT_DECAY
    warmup_fraction: float = defaults.TRAIN_WARMUP_FRACTION
    loss: str = defaults.TRAIN_LOSS
    mode: str = defaults.TRAIN_MODE
    lora_rank: int = defaults.LORA_RANK
    lora_alpha: int = defaults.LORA_ALPHA
    patience: int = defaults.TRAIN_PATIENCE
    seed: int = defaults.TRAIN_SEED
    mixed_precision: str = defaults.TRAIN_MIXED_PRECISION
    device: str = None  # None: a GPU when visible, else CPU
    num_workers: int = None  # data-loading processes; None: 0 on CPU, TRAIN_GPU_WORKERS on a GPU
    report_to: str = None  # "wandb" to also log to Weights & Biases

    def __post_init__(self):
        from .loss import LOSSES

        for name, allowed in (("loss", LOSSES), ("mode", MODES), ("mixed_precision", MIXED_PRECISION),
                              ("report_to", (None, "wandb"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}; use one of {list(allowed)}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.report_to == "wandb":
            import importlib.util

            if importlib.util.find_spec("wandb") is None:
                raise ValueError("report_to='wandb' needs the wandb package: pip install wandb (or leave report_to=None)")
        if self.learning_rate is None:
            self.learning_rate = defaults.TRAIN_LORA_LEARNING_RATE if self.mode == "lora" else defaults.TRAIN_LEARNING_RATE
        self.base_model = str(self.base_model)


@dataclasses.dataclass
class TrainResult:
    """What :func:`train_matcher` produced."""

    model_dir: str
    history: list  # one dict per finished epoch: epoch, loss, val mAP / rank1 ...
    best_epoch: int
    best_metrics: dict
    stopped_early: bool
    is_main_process: bool = True  # False in the other processes of a distributed run
    num_processes: int = 1
    run_key: str = None  # the dataset's run record, when trained through ``finetune``


def check_training_data(train_items, val_items, config):
    """Raise ``ValueError`` naming the problem when the data cannot train ``config``."""
    train_ids = {it.person_id for it in train_items}
    if len(train_ids) < defaults.TRAIN_MIN_IDENTITIES:
        raise ValueError(f"training needs at least {defaults.TRAIN_MIN_IDENTITIES} identities, got {len(train_ids)}")
    if config.batch_size > len(train_items):
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the {len(train_items)} training images; "
            f"use a batch size <= {len(train_items)}"
        )
    if val_items and len({it.person_id for it in val_items}) < 2:
        raise ValueError("validation needs at least 2 identities to rank; add identities or set val_fraction=0")


def check_loss_fits_model(matcher, config):
    """Raise ``ValueError`` when ``config.loss`` needs what the model lacks (sigmoid: SigLIP's logit bias).

    Example::

        check_loss_fits_model(load_matcher("openai/clip-vit-base-patch32"), TrainConfig(loss="sigmoid"))  # raises
    """
    if config.loss == "sigmoid" and getattr(matcher.model, "logit_bias", None) is None:
        raise ValueError(f"{config.base_model!r} has no learned logit bias (not SigLIP); use loss='infonce'")


def validation_metrics(matcher, items):
    """Text-to-image metrics on ``items``: each item's first text is a query, its image a gallery entry."""
    ids = [it.person_id for it in items]
    scores = text_to_image_scores(matcher, [it.texts[0] for it in items], [it.load() for it in items])
    return retrieval_metrics(scores, ids, ids)


def process_state(config):
    """accelerate's process state for ``config`` (set up once per process; on CPU it is gloo DDP under a launcher)."""
    from accelerate import PartialState

    from ..models.loading import resolve_device

    return PartialState(cpu=resolve_device(config.device) == "cpu")


def _workers(config, device):
    if config.num_workers is not None:
        return int(config.num_workers)
    return defaults.TRAIN_GPU_WORKERS if device != "cpu" else 0


def _mixed_precision(choice, device):
    if choice != "auto":
        return choice
    if device != "cuda":
        return "no"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _checkpoints(output_dir):
    """The checkpoint folder and its complete epoch checkpoints, oldest first (half-written ones are skipped)."""
    folder = os.path.join(output_dir, "checkpoints")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    done = [d for d in names if d.startswith("epoch-") and d.split("-", 1)[1].isdigit()
            and os.path.isfile(os.path.join(folder, d, _STATE))]
    return folder, sorted(done, key=lambda d: int(d.split("-")[1]))


def _promote_best(checkpoint, best_path):
    """Move a committed checkpoint's best weights to ``best_path`` (atomic; a no-op once done)."""
    staged = os.path.join(checkpoint, _BEST)
    if os.path.exists(staged):
        os.replace(staged, best_path)


def _add_lora(model, config):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=list(defaults.LORA_TARGET_MODULES))
    model = get_peft_model(model, lora)
    for name in ("logit_scale", "logit_bias"):  # the learned temperature and bias stay trainable
        param = getattr(model.base_model.model, name, None)
        if param is not None:
            param.requires_grad_(True)
    return model


def _param_groups(model, weight_decay):
    """Weight decay on matrices only: never on biases, norms, or the learned logit scale and bias."""
    decay, plain = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 and "logit_" not in name else plain).append(param)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=plain, weight_decay=0.0)]


def _trainable_state(model):
    return {k: v.detach().cpu().clone() for k, v in model.named_parameters() if v.requires_grad}


def train_matcher(train_items, val_items, output_dir, config=None, on_progress=None, provenance=None, on_epoch=None):
    """Fine-tune ``config.base_model`` on :class:`~.data.PersonItem` lists; returns a :class:`TrainResult`.

    ``val_items`` (other identities) pick the best epoch and stop early
    after ``config.patience`` epochs without a better mAP; without them
    the last epoch is kept. The best weights (LoRA merged) are saved to
    ``output_dir`` with ``save_pretrained`` next to the processor,
    ``person_finder.json`` and a model card (``README.md``; ``provenance``, a
    dict, says where the data came from) and ``training_metrics.json``; ``output_dir/checkpoints`` holds one
    resumable checkpoint per epoch. Data and model are checked before any
    training step. ``on_epoch(history)`` is called on the main process
    after each epoch (e.g. to update a run record).

    Example::

        result = train_matcher(train, val, "runs/people", TrainConfig(base_model=folder, epochs=3))
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed

    from ..models.loading import resolve_device
    from ..models.matcher import ImageTextMatcher, load_matcher

    config = config or TrainConfig()
    check_training_data(train_items, val_items, config)
    device = resolve_device(config.device)
    matcher = load_matcher(config.base_model, device="cpu")
    check_loss_fits_model(matcher, config)

    accelerator = Accelerator(
        cpu=device == "cpu", mixed_precision=_mixed_precision(config.mixed_precision, device),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        log_with="wandb" if config.report_to == "wandb" else None,
    )
    set_seed(config.seed)
    model = matcher.model
    if config.mode == "lora":
        model = _add_lora(model, config)
    model.train()
    data = PairDataset(train_items, seed=config.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=True, drop_last=True,
                                         collate_fn=Collator(matcher), num_workers=_workers(config, device),
                                         generator=torch.Generator().manual_seed(config.seed))
    optimizer, scheduler = make_optimizer(model, config, (len(loader) // accelerator.num_processes or 1) * config.epochs)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if config.report_to:
        accelerator.init_trackers("person-finder", config=dataclasses.asdict(config))

    os.makedirs(output_dir, exist_ok=True)
    ckpt_root, done = _checkpoints(output_dir)
    best_path = os.path.join(ckpt_root, _BEST)
    state = dict(config=dataclasses.asdict(config), history=[], best_epoch=None, best_map=-1.0)
    if done:
        with open(os.path.join(ckpt_root, done[-1], _STATE)) as f:
            saved = json.load(f)
        changed = {k for k in saved["config"] if k not in ("epochs", "patience", "report_to")
                   and saved["config"][k] != state["config"].get(k)}
        if changed:
            raise ValueError(f"{output_dir!r} holds checkpoints of a run with other settings ({sorted(changed)}); "
                             "resume with the same settings or use a new output_dir")
        state.update(history=saved["history"], best_epoch=saved["best_epoch"], best_map=saved["best_map"])
        accelerator.load_state(os.path.join(ckpt_root, done[-1]))
        if accelerator.is_main_process:
            _promote_best(os.path.join(ckpt_root, done[-1]), best_path)  # killed between commit and promotion
        logger.info("resuming after %s", done[-1])
    start = len(state["history"])
    unwrapped = accelerator.unwrap_model(model)
    eval_matcher = ImageTextMatcher(unwrapped, matcher.processor, config.base_model, accelerator.device)
    stopped_early = _patience_exhausted(state, config)

    for epoch in range(start, config.epochs):
        if stopped_early:
            break
        data.epoch = epoch
        loader.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        last = f", last epoch's loss {state['history'][-1]['loss']:.4f}" if state["history"] else ""
        for step, batch in enumerate(loader):
            total = total + training_step(accelerator, model, optimizer, scheduler, batch, config.loss)
            count += 1
            notify(on_progress, (epoch + (step + 1) / max(len(loader), 1)) / config.epochs,
                   f"epoch {epoch + 1}/{config.epochs}, step {step + 1}/{len(loader)}{last}")
        record = dict(epoch=epoch + 1, loss=float(total) / max(count, 1))
        if val_items:
            model.eval()
            record.update({f"val_{k}": v for k, v in validation_metrics(eval_matcher, val_items).items()
                           if not k.startswith("num_")})
        improved = (record.get("val_mAP", 0.0) > state["best_map"]) if val_items else True
        if improved:
            state.update(best_epoch=epoch + 1, best_map=record.get("val_mAP", 0.0))
        state["history"].append(record)
        _save_checkpoint(accelerator, ckpt_root, epoch + 1, state, _trainable_state(unwrapped) if improved else None)
        if accelerator.is_main_process:
            _promote_best(os.path.join(ckpt_root, f"epoch-{epoch + 1}"), best_path)
            _drop_old_checkpoints(ckpt_root, keep=epoch + 1)
            if on_epoch is not None:
                on_epoch(list(state["history"]))
        accelerator.log(record, step=epoch + 1)
        accelerator.wait_for_everyone()
        stopped_early = _patience_exhausted(state, config)

    accelerator.wait_for_everyone()
    stopped_early = stopped_early and len(state["history"]) < config.epochs  # patience ran out before the last epoch
    unwrapped.load_state_dict(torch.load(best_path, map_location="cpu"), strict=False)
    final = unwrapped.merge_and_unload() if config.mode == "lora" else unwrapped
    best = next(r for r in state["history"] if r["epoch"] == state["best_epoch"])
    result = TrainResult(model_dir=str(output_dir), history=state["history"], best_epoch=state["best_epoch"],
                         best_metrics=best, stopped_early=stopped_early,
                         is_main_process=accelerator.is_main_process, num_processes=accelerator.num_processes)
    if accelerator.is_main_process:
        final.save_pretrained(output_dir)
        matcher.processor.save_pretrained(output_dir)
        with open(os.path.join(output_dir, "training_metrics.json"), "w") as f:
            json.dump(dataclasses.asdict(result), f, indent=2)
        from .card import write_training_info

        write_training_info(output_dir, config, result, data=provenance)
    accelerator.end_training()
    notify(on_progress, 1.0, f"saved to {output_dir}")
    return result


def make_optimizer(model, config, total_steps):
    """AdamW (no decay on biases, norms, logit scale / bias) and a warmup + cosine schedule."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.learning_rate)
    return optimizer, get_cosine_schedule_with_warmup(optimizer, int(config.warmup_fraction * total_steps), total_steps)


def training_step(accelerator, model, optimizer, scheduler, batch, loss_name):
    """One step of the loop on a collated batch (prepared objects); returns the detached loss tensor.

    The loss stays on the device: reading it (``float(loss)``) waits for the
    GPU, so the loop sums the tensors and reads the total once per epoch.

    Example::

        loss = training_step(accelerator, model, optimizer, scheduler, batch, "sigmoid")
    """
    from .loss import contrastive_loss

    batch = dict(batch)
    ids = batch.pop("person_ids")
    loss = contrastive_loss(loss_name, model(**batch).logits_per_image, ids, ids)
    accelerator.backward(loss)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return loss.detach()


def _patience_exhausted(state, config):
    if not state["history"] or state["best_epoch"] is None:
        return False
    return state["history"][-1]["epoch"] - state["best_epoch"] >= config.patience


def _save_checkpoint(accelerator, ckpt_root, epoch, state, best_weights):
    """Write epoch ``epoch``'s checkpoint to ``epoch-N.partial``, then rename it to ``epoch-N`` (atomic).

    The loop's state file is written last, so a folder without it is never
    taken for a finished checkpoint; ``best_weights`` (the epoch is the best
    so far) travel inside it and are promoted to ``best.pt`` after the rename.
    """
    import torch

    final = os.path.join(ckpt_root, f"epoch-{epoch}")
    partial = final + ".partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(partial)
    accelerator.wait_for_everyone()  # every process wrote its RNG state
    if accelerator.is_main_process:
        if best_weights is not None:
            torch.save(best_weights, os.path.join(partial, _BEST))
        with open(os.path.join(partial, _STATE), "w") as f:
            json.dump(state, f, indent=2)
        shutil.rmtree(final, ignore_errors=True)  # an incomplete folder of that name (no state file)
        os.replace(partial, final)
    accelerator.wait_for_everyone()


def _drop_old_checkpoints(ckpt_root, keep):
    """Keep the newest epoch checkpoint only (they hold optimizer state; ``best.pt`` holds the best weights)."""
    for name in os.listdir(ckpt_root):
        if name.startswith("epoch-") and name != f"epoch-{keep}":
            shutil.rmtree(os.path.join(ckpt_root, name), ignore_errors=True)
