"""The ONNX Runtime path gives PyTorch's detections and embeddings within the stated tolerances."""

import os

import numpy as np
import pytest

from person_finder.core import defaults

from person_finder.testing import synthetic


def test_index_persons_on_onnx_runtime_scores_like_pytorch(dataset, tiny_siglip, test_root):
    from person_finder.core.search import index_persons, rank_persons

    specs = synthetic.random_specs(4, seed=21)
    scenes = synthetic.write_scenes(os.path.join(test_root, "onnx-scenes"), [specs[:2], specs[2:]],
                                    width=480, height=270)
    dataset.add_samples([scene.to_sample() for scene in scenes])
    query = synthetic.describe(specs[0])
    scores = {}
    for runtime in ("torch", "onnx"):
        index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", runtime=runtime, overwrite=True)
        scores[runtime] = {r["label_id"]: r["similarity"] for r in rank_persons(dataset, query, k=None)}
    assert len(scores["onnx"]) == 4
    # label ids are rewritten by each overwrite; compare the sorted score lists
    assert np.allclose(sorted(scores["onnx"].values()), sorted(scores["torch"].values()),
                       atol=defaults.ONNX_EMBEDDING_TOLERANCE * 4)
    with pytest.raises(ValueError, match="runtime 'tensorrt' is not supported"):
        index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", runtime="tensorrt")
