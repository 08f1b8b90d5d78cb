"""A brain index built with the matcher answers text queries, here and in a new process."""

import fiftyone as fo

from person_finder.core.search.index import build_text_index
from person_finder.testing import synthetic


def test_text_query_in_a_second_process(dataset, tiny_siglip, test_root, run_python):
    for i, spec in enumerate(synthetic.random_specs(6, seed=4)):
        path = f"{test_root}/index-crop-{i}.jpg"
        synthetic.render_crop(spec, seed=i).save(path)
        dataset.add_sample(fo.Sample(filepath=path))
    dataset.persistent = True
    results = build_text_index(dataset, brain_key="crops", matcher=tiny_siglip)
    assert results.config.supports_prompts and results.index_size == 6
    here = [s.id for s in dataset.sort_by_similarity("red top and blue trousers", k=4, brain_key="crops")]
    there = run_python(f"""
import fiftyone as fo
ds = fo.load_dataset({dataset.name!r})
print(",".join(s.id for s in ds.sort_by_similarity("red top and blue trousers", k=4, brain_key="crops")))
""").strip().splitlines()[-1]
    assert there.split(",") == here


def test_rebuilding_replaces_the_index(dataset, tiny_siglip, test_root):
    path = f"{test_root}/index-one.jpg"
    synthetic.render_crop(synthetic.random_specs(1)[0]).save(path)
    dataset.add_sample(fo.Sample(filepath=path))
    build_text_index(dataset, brain_key="crops", matcher=tiny_siglip)
    build_text_index(dataset, brain_key="crops", matcher=tiny_siglip)
    assert dataset.list_brain_runs() == ["crops"]
