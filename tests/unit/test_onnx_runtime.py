"""ONNX Runtime towers and detector agree with PyTorch within the stated tolerances."""

import os

import numpy as np
import pytest
from person_finder.core import defaults
from person_finder.core.models import onnx
from person_finder.core.models.detector import load_detector
from person_finder.testing import synthetic
from PIL import Image


@pytest.fixture(scope="module")
def onnx_folder(test_root):
    return os.path.join(test_root, "onnx-cache")


def _crops(n, seed=0):
    return [synthetic.render_crop(spec, seed=i) for i, spec in enumerate(synthetic.random_specs(n, seed=seed))]


@pytest.fixture(scope="module")
def lively_yolo(tiny_yolo, test_root):
    """The tiny random YOLO made to "see": BatchNorm statistics set on noise, person logits spread around 0."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    yolo = YOLO(tiny_yolo)
    model = yolo.model.float()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 320, 320))
        for branch in model.model[-1].cv3:
            branch[-1].bias[0] = 0.0
            branch[-1].weight[0].normal_(0.0, 0.05)
    model.eval()
    path = os.path.join(test_root, "models", "lively-yolo.pt")
    yolo.save(path)
    return path


def _matched_fraction(reference, candidate, floor):
    """Fraction of the reference boxes scored above ``floor`` that have a twin in ``candidate`` within tolerance."""
    above = reference[reference[:, 4] > floor]
    hits = [((np.abs(candidate[:, :4] - box[:4]).max(axis=1) <= defaults.ONNX_BOX_TOLERANCE_PX)
             & (np.abs(candidate[:, 4] - box[4]) <= defaults.ONNX_SCORE_TOLERANCE)).any() for box in above]
    return float(np.mean(hits)) if hits else 1.0


def test_image_tower_embeddings_match_pytorch(matcher, onnx_folder):
    fast = onnx.with_runtime(matcher, "onnx", folder=onnx_folder)
    assert isinstance(fast, onnx.OnnxImageTextMatcher) and os.path.exists(fast.onnx_path)
    crops = _crops(5)
    reference, got = matcher.embed_images(crops, batch_size=2), fast.embed_images(crops, batch_size=3)
    assert got.shape == reference.shape == (5, matcher.embedding_dim)
    assert np.abs(got - reference).max() <= defaults.ONNX_EMBEDDING_TOLERANCE
    assert not np.allclose(got[0], got[1])  # really per-image outputs, not a constant
    # the export is cached and re-used
    assert onnx.with_runtime(matcher, "onnx", folder=onnx_folder).onnx_path == fast.onnx_path
    assert fast.embed_images([]).shape == (0, matcher.embedding_dim)


def test_int8_text_tower_ranks_like_pytorch(matcher, onnx_folder):
    encoder = onnx.query_encoder(matcher, "onnx", folder=onnx_folder)
    assert isinstance(encoder, onnx.OnnxTextEncoder) and encoder.onnx_path.endswith("-int8.onnx")
    texts = ["red top and blue trousers", "a person in a white t-shirt with a brown shoulder bag",
             "green jacket, black skirt", "a man carrying a backpack"]
    reference, got = matcher.embed_texts(texts), encoder.embed_texts(texts, batch_size=3)
    assert got.shape == reference.shape
    assert (reference * got).sum(axis=1).min() >= defaults.ONNX_TEXT_MIN_COSINE
    assert not np.allclose(got[0], got[1])  # per-text outputs, not a constant
    crops = matcher.embed_images(_crops(8))
    assert np.array_equal(np.argmax(crops @ got.T, axis=0), np.argmax(crops @ reference.T, axis=0))
    with pytest.raises(ValueError, match="non-empty"):
        encoder.embed_texts(["  "])
    # cached by the weights, and PyTorch when asked
    assert onnx.query_encoder(matcher, "onnx", folder=onnx_folder).onnx_path == encoder.onnx_path
    assert onnx.query_encoder(matcher, "torch") is matcher


def test_query_runtime_default_is_read_at_each_call(matcher, monkeypatch):
    monkeypatch.setattr(defaults, "QUERY_RUNTIME", "torch")  # what the README tells users to set
    assert onnx.query_encoder(matcher) is matcher


def test_detector_matches_pytorch(lively_yolo, onnx_folder, test_root):
    import onnxruntime as ort
    import torch

    torch_detector = load_detector(lively_yolo, confidence=0.6, image_size=320, device="cpu")
    onnx_detector = onnx.with_runtime(torch_detector, "onnx", folder=onnx_folder)
    assert onnx_detector.weights.endswith(".onnx") and onnx_detector.confidence == 0.6
    # The network itself: same raw boxes and scores for the same input batch.
    pixels = torch.rand(3, 3, 320, 320, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected_raw = torch_detector.yolo.model.float().eval()(pixels)[0].numpy()
    got_raw = ort.InferenceSession(onnx_detector.weights).run(None, {"images": pixels.numpy()})[0]
    assert np.abs(got_raw[:, :4] - expected_raw[:, :4]).max() <= defaults.ONNX_BOX_TOLERANCE_PX
    assert np.abs(got_raw[:, 4] - expected_raw[:, 4]).max() <= defaults.ONNX_SCORE_TOLERANCE
    # The whole detector (letterbox, NMS) on scenes. The random network scores hundreds of overlapping boxes
    # alike, so NMS tie-breaks and the 300-box cap may differ on a few of them; real weights do not do that.
    specs = synthetic.random_specs(6, seed=2)
    scenes = synthetic.write_scenes(os.path.join(test_root, "onnx-scenes"), [specs[:2], specs[2:5], specs[5:]],
                                    width=480, height=320, seed=1)
    images = [np.asarray(Image.open(scene.filepath).convert("RGB")) for scene in scenes]
    expected, got = torch_detector.detect(images, batch_size=2), onnx_detector.detect(images, batch_size=3)
    floor = torch_detector.confidence + defaults.ONNX_SCORE_TOLERANCE
    assert sum(int((b[:, 4] > floor).sum()) for b in expected) > 20
    for a, b in zip(expected, got):
        assert abs(len(a) - len(b)) <= 0.05 * len(a)
        assert _matched_fraction(a, b, floor) >= 0.95 and _matched_fraction(b, a, floor) >= 0.95


def test_runtime_option_is_validated(matcher):
    assert onnx.with_runtime(matcher, "torch") is matcher
    with pytest.raises(ValueError, match=r"runtime 'tensorrt' is not supported; use one of \('torch', 'onnx'\)"):
        onnx.with_runtime(matcher, "tensorrt")
    with pytest.raises(TypeError, match="ImageTextMatcher or a PersonDetector"):
        onnx.with_runtime(object(), "onnx")
