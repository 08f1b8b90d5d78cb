"""GPU checks that cannot run on the CPU machines: batching gain and mixed-precision fine-tuning.

Needs only torch, transformers, peft, accelerate, sentencepiece (no FiftyOne),
so it runs on a bare GPU image. Writes bench/results/gpu_check.json.

    python bench/gpu_check.py            # on a machine with CUDA; elsewhere it skips
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _report  # noqa: E402


def batching(device, crops=128):
    """SigLIP-B/16 architecture (random weights): batched (32) vs one-crop-at-a-time image embedding."""
    import numpy as np
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    from person_finder.testing import synthetic
    from person_finder.core.models.matcher import ImageTextMatcher

    model = SiglipModel(SiglipConfig()).to(device).eval()

    class _Processor:  # the image half is all this measures
        image_processor = SiglipImageProcessor(size={"height": 224, "width": 224})

    matcher = ImageTextMatcher(model, _Processor(), "siglip-b16-config", device)
    images = [np.asarray(synthetic.render_crop(s, seed=i, size=(96, 192)))
              for i, s in enumerate(synthetic.random_specs(crops, seed=0, distinct=False))]
    matcher.embed_images(images[:32], batch_size=32)  # warm-up

    def timed(fn):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - start

    batched = timed(lambda: matcher.embed_images(images, batch_size=32))
    single = timed(lambda: [matcher.embed_images([im], batch_size=1) for im in images])
    return crops / batched, crops / single


def finetune(device, precision):
    """``finetune_tiny_siglip`` (data, model, training) on the GPU; returns (seconds, held-out metrics)."""
    import tempfile

    from person_finder.core.training.evaluation import retrieval_metrics, text_to_image_scores
    from person_finder.testing import people_training, synthetic
    from person_finder.core.models.matcher import load_matcher

    held_out = people_training.held_out_specs()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = people_training.finetune_tiny_siglip(f"{tmp}/out", device=device, mixed_precision=precision)
        seconds = time.perf_counter() - start
        matcher = load_matcher(folder, device=device)
        test = people_training.person_items(held_out, 2000, 3, seed=2)
        texts = [synthetic.describe(s) for s in held_out]
        scores = text_to_image_scores(matcher, texts, [item.image for item in test])
        metrics = retrieval_metrics(scores, list(range(2000, 2000 + len(held_out))), [item.person_id for item in test])
    return seconds, metrics


def main():
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: skipped (the GPU figures in bench/results/gpu_check.json, if any, are kept)")
        return
    device = "cuda"
    batched, single = batching(device)
    figures = [_report.figure("SigLIP-B/16 batched / per-crop embedding (GPU)", round(batched / single, 2), "x",
                              (">=", 1.5), f"{batched:.0f} vs {single:.0f} crops/s, {torch.cuda.get_device_name()}")]
    details = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    name = "recipe (hidden 64, 12 people per pair, 3 images, 30 epochs, bf16)"
    seconds, metrics = finetune(device, "bf16")
    details[name] = {"seconds": seconds, **metrics}
    figures += [_report.figure(f"fine-tune {name}: held-out Rank-1", round(metrics["rank1"], 3), "", (">=", 0.8)),
                _report.figure(f"fine-tune {name}: time", round(seconds, 1), "s")]
    _report.write("gpu_check", figures, details=details)


if __name__ == "__main__":
    main()
