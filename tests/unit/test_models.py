"""The model layer loads tiny checkpoints exactly as users load hub ones, and fails helpfully."""

import logging
import os
import shutil

import numpy as np
import pytest
from person_finder.core.models.images import to_rgb_array
from person_finder.core.models.loading import ModelLoadError
from person_finder.core.models.matcher import load_matcher
from person_finder.testing import synthetic
from PIL import Image


def test_matcher_embeddings_are_unit_norm_and_batched(matcher):
    crops = [synthetic.render_crop(s, seed=i) for i, s in enumerate(synthetic.random_specs(5))]
    one_by_one = np.concatenate([matcher.embed_images([c], batch_size=1) for c in crops])
    batched = matcher.embed_images(crops, batch_size=4)
    assert batched.shape == (5, matcher.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)
    texts = matcher.embed_texts(["red top and blue trousers", "a man with a backpack"])
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_siglip_text_is_padded_to_64_tokens(matcher):
    inputs = matcher.text_inputs(["red top", "a person in a white long-sleeved top and black trousers"])
    assert tuple(inputs["input_ids"].shape) == (2, 64)
    # padding changes the embedding: the same text padded differently must not be what we compute
    short = matcher.embed_texts(["red top"])
    again = matcher.embed_texts(["red top", "a much longer second query that changes dynamic padding"])[:1]
    np.testing.assert_allclose(short, again, atol=1e-5)


def test_siglip_text_attends_to_its_padding_as_trained(matcher):
    """SigLIP pools the last (pad = EOS) position and was trained without a padding mask."""
    import torch

    inputs = matcher.text_inputs(["red top"])
    assert list(inputs) == ["input_ids"]
    ids = inputs["input_ids"]
    with torch.no_grad():
        unmasked = matcher.model.get_text_features(input_ids=ids).pooler_output
        masked = matcher.model.get_text_features(input_ids=ids, attention_mask=(ids != ids[0, -1]).long()).pooler_output
    ours = matcher.embed_texts(["red top"])[0]
    np.testing.assert_allclose(ours, torch.nn.functional.normalize(unmasked, dim=-1)[0].numpy(), atol=1e-5)
    assert not np.allclose(ours, torch.nn.functional.normalize(masked, dim=-1)[0].numpy(), atol=1e-3)


def test_long_query_is_truncated_with_a_warning(matcher, caplog):
    with caplog.at_level(logging.WARNING):
        emb = matcher.embed_texts(["a very long description " * 30])
    assert emb.shape == (1, matcher.embedding_dim)
    assert "truncated" in caplog.text


def test_truncation_is_warned_once_per_text(matcher, caplog):
    long_text = "a person in a long coat with a striped scarf " * 20  # a training loop sees it every epoch
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            matcher.text_inputs([long_text, long_text, "short"])
    assert caplog.text.count("truncated") == 1


def test_empty_query_is_refused(matcher):
    with pytest.raises(ValueError, match="non-empty"):
        matcher.embed_texts(["  "])


def test_probability_is_siglip_sigmoid_and_invertible(matcher):
    scale, bias = matcher.logit_scale_and_bias()
    assert bias is not None
    cos = np.array([-0.2, 0.0, 0.3])
    np.testing.assert_allclose(matcher.probability(cos), 1 / (1 + np.exp(-(scale * cos + bias))))
    assert matcher.cosine_for_probability(float(matcher.probability(0.3))) == pytest.approx(0.3, abs=1e-6)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        matcher.cosine_for_probability(1.5)


@pytest.mark.parametrize("image", [
    np.zeros((40, 20), dtype=np.uint8),                      # grayscale
    np.zeros((40, 20, 4), dtype=np.uint8),                   # RGBA
    (np.ones((40, 20, 3)) * 60000).astype(np.uint16),        # 16-bit
    Image.new("LA", (20, 40)),
    Image.fromarray((np.ones((40, 20)) * 3000).astype(np.uint16)),
])
def test_any_image_format_becomes_rgb(matcher, image):
    arr = to_rgb_array(image)
    assert arr.dtype == np.uint8 and arr.shape == (40, 20, 3)
    assert matcher.embed_images([image]).shape == (1, matcher.embedding_dim)


def test_missing_folder_names_the_fix(test_root):
    with pytest.raises(ModelLoadError, match="not a folder"):
        load_matcher(os.path.join(test_root, "no-such-model"))


def test_offline_hub_id_says_offline():
    with pytest.raises(ModelLoadError, match="offline mode is on"):
        load_matcher("google/siglip-base-patch16-224")


def test_wrong_architecture_is_named(tiny_dinov2):
    with pytest.raises(ModelLoadError, match="'dinov2' model; expected one of"):
        load_matcher(tiny_dinov2)


def test_missing_tokenizer_files_are_named(tiny_siglip, test_root):
    broken = os.path.join(test_root, "siglip-without-tokenizer")
    shutil.copytree(tiny_siglip, broken, dirs_exist_ok=True)
    for name in os.listdir(broken):
        if name.startswith(("spiece", "tokenizer", "special_tokens")):
            os.remove(os.path.join(broken, name))
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_matcher(broken)


def test_dinov2_embeds_whole_body_crops(tiny_dinov2):
    from person_finder.core.models.dinov2 import load_dinov2

    embedder = load_dinov2(tiny_dinov2, device="cpu")
    crops = [synthetic.render_crop(s, seed=i) for i, s in enumerate(synthetic.random_specs(3))]
    emb = embedder.embed_images(crops)
    assert emb.shape == (3, embedder.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[1])


def test_detector_keeps_persons_only_and_restores_threads(tiny_yolo):
    import torch
    from person_finder.core.models.detector import load_detector

    threads = torch.get_num_threads()
    detector = load_detector(tiny_yolo, confidence=0.0, image_size=320, device="cpu")
    scene = np.asarray(synthetic.render_crop(synthetic.random_specs(1)[0], size=(320, 240)))
    (boxes,) = detector.detect([scene])
    assert torch.get_num_threads() == threads
    assert boxes.ndim == 2 and boxes.shape[1] == 5
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 320 + 1e-3).all()
    # NMS is per class, so the person boxes of an unfiltered prediction are ours (with no box cap)
    raw = detector.yolo.predict(scene[..., ::-1], conf=0.0, imgsz=320, max_det=100000, verbose=False)[0]
    assert len(boxes) == int((raw.boxes.cls.numpy() == 0).sum())


def test_detector_bad_input(test_root):
    from person_finder.core.models.detector import load_detector

    with pytest.raises(ModelLoadError, match="no file at"):
        load_detector(os.path.join(test_root, "missing", "yolo.onnx"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_detector("yolo26n.pt", confidence=2)


def test_offline_switch_for_local_weights_does_not_stick(monkeypatch):
    from person_finder.core.models import detector

    monkeypatch.delenv("YOLO_OFFLINE", raising=False)
    monkeypatch.setattr(detector, "_OFFLINE_SET_HERE", False)
    detector.apply_ultralytics_offline_switches(offline=True)       # a local weights file
    assert os.environ["YOLO_OFFLINE"] == "1"
    detector.apply_ultralytics_offline_switches(offline=False)      # then a name Ultralytics downloads
    assert "YOLO_OFFLINE" not in os.environ
    monkeypatch.setenv("YOLO_OFFLINE", "1")                         # the user's own setting is kept
    detector.apply_ultralytics_offline_switches(offline=False)
    assert os.environ["YOLO_OFFLINE"] == "1"
