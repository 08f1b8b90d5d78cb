"""Loading Hugging Face checkpoints with errors that say what to do.

Example::

    from transformers import AutoModel
    model, config = load_pretrained(AutoModel, "facebook/dinov2-small", ("dinov2",), "DINOv2 embedder")
"""

from __future__ import annotations

import os


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names what was tried and the fix."""


def resolve_device(device=None):
    """``device`` as given, else ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _offline():
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_local(name_or_path):
    text = str(name_or_path)
    return os.path.isabs(text) or text.startswith((".", "~")) or os.path.exists(text) or text.count("/") > 1


def load_pretrained(auto_class, name_or_path, model_types, role):
    """Load ``auto_class.from_pretrained(name_or_path)`` after checking its ``model_type``.

    ``model_types`` lists the accepted ``config.model_type`` values; ``role``
    names the job in error messages ("image-text matcher").
    """
    from transformers import AutoConfig

    text = str(name_or_path)
    if _looks_local(text) and not os.path.isdir(os.path.expanduser(text)):
        raise ModelLoadError(
            f"{role}: {text!r} looks like a local path but is not a folder. Pass a folder made by "
            f"save_pretrained (config.json + weights) or a Hugging Face hub id such as "
            f"'google/siglip-base-patch16-224'."
        )
    try:
        config = AutoConfig.from_pretrained(text)
    except Exception as e:  # noqa: BLE001 - re-raised with the fix
        if os.path.isdir(text):
            hint = ("the folder is not a saved model: expected a folder made by save_pretrained, with a "
                    "config.json and its weights")
        elif _offline():
            hint = ("offline mode is on (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE) and the model is not in "
                    "the local Hugging Face cache: download it once with network access, or pass a local folder")
        else:
            hint = ("it is not a hub id that could be fetched: check the spelling, your network access, "
                    "and HF_TOKEN for gated models, or pass a local folder")
        raise ModelLoadError(f"{role}: could not load {text!r}: {hint}. ({type(e).__name__}: {e})") from e
    if config.model_type not in model_types:
        raise ModelLoadError(
            f"{role}: {text!r} is a {config.model_type!r} model; expected one of {list(model_types)}."
        )
    try:
        model = auto_class.from_pretrained(text)
    except Exception as e:  # noqa: BLE001 - re-raised with the fix
        raise ModelLoadError(f"{role}: {text!r} has a config but its weights did not load: {e}") from e
    return model, config


def missing_local_path(name_or_path, hub_ids=True):
    """Why ``name_or_path`` cannot work: it looks like a local path that does not exist; else None.

    With ``hub_ids`` a bare ``org/name`` is a Hugging Face id (checked only
    when loading); without, any ``/`` makes it a path (Ultralytics weights
    names such as ``yolo26n.pt`` have none). Forms call this before a job is
    scheduled, so a typo fails at once instead of in a worker.

    Example::

        missing_local_path("/models/nope")                   # "no such file or folder: /models/nope"
        missing_local_path("google/siglip-base-patch16-224")  # None
    """
    text = str(name_or_path or "").strip()
    local = _looks_local(text) if hub_ids else (os.sep in text or text.startswith((".", "~")))
    if text and local and not os.path.exists(os.path.expanduser(text)):
        return f"no such file or folder: {text}"
    return None
