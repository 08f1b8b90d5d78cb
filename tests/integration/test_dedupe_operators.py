"""The curation operators through foo.execute_operator, on a real dataset."""

import fiftyone as fo
import fiftyone.operators as foo
import pytest

from person_finder.core import contract

URI = contract.PLUGIN_NAME + "/"
THRESHOLD = 0.002  # see tests/test_dedupe.py


def run(name, view=None, **params):
    ctx = {"params": {"delegate": False, **params}}
    if view is not None:
        ctx["view"] = view
        ctx["dataset"] = view._root_dataset.name
    result = foo.execute_operator(URI + name, ctx=ctx)
    return result.result


@pytest.fixture()
def imported(market_folder, request):
    name = f"op-market-{request.node.name[:30]}"
    out = run("import_market1501", market_dir=market_folder.root, dataset_name=name, val_fraction=0.2)
    ds = fo.load_dataset(name)
    yield ds, out
    ds.delete()


def test_import_operator(imported, market_folder):
    ds, out = imported
    assert out["added"] == len(market_folder.files) == len(ds)
    assert out["junk_skipped"] == 2 and out["num_corrupt"] == 0 and out["val_identities"] == 1
    assert set(out["counts"]) >= {"train", "val", "query", "gallery", "distractor"}


def test_import_operator_rejects_a_non_market_folder(tmp_path):
    with pytest.raises(Exception, match="missing sub-folder"):
        run("import_market1501", market_dir=str(tmp_path), dataset_name="op-never-created")
    assert not fo.dataset_exists("op-never-created")


def test_dedupe_operators_dry_run_removal_and_leakage(imported, market_folder, tiny_dinov2):
    ds, _ = imported
    total = len(ds)
    settings = dict(threshold=THRESHOLD, model=tiny_dinov2, scope="identity")
    with pytest.raises(Exception, match="refusing"):
        run("remove_near_duplicates", view=ds.view(), **settings)

    dry = run("find_near_duplicates", view=ds.view(), **settings)
    assert dry["num_duplicates"] == len(market_folder.duplicates) and len(ds) == total
    assert "<- threshold" in dry["histogram_text"] and dry["histogram"]["at_or_under_threshold"] > 0
    assert set(ds.list_saved_views()) >= {contract.DUPLICATES_VIEW, contract.REPRESENTATIVES_VIEW}

    removed = run("remove_near_duplicates", view=ds.view(), **settings)
    assert removed["num_removed"] == len(market_folder.duplicates)
    assert len(ds) == total - len(market_folder.duplicates)

    leaks = run("check_split_leakage", view=ds.view(), threshold=THRESHOLD, model=tiny_dinov2)
    assert leaks["num_pairs"] == 0 and contract.LEAKS_VIEW in ds.list_saved_views()


def test_publish_operator_stages_and_load_operator_loads(imported, tmp_path):
    ds, _ = imported
    out = run("publish_to_hub", view=ds.view(), repo_name="market-curated", staging_dir=str(tmp_path / "hub"))
    assert out == {"staged": str(tmp_path / "hub"), "samples": len(ds)}
    loaded = run("load_from_hub", source=str(tmp_path / "hub"), dataset_name=f"{ds.name}-loaded")
    copy = fo.load_dataset(loaded["dataset"])
    try:
        assert loaded["samples"] == len(ds) and copy.count_sample_tags() == ds.count_sample_tags()
    finally:
        copy.delete()
