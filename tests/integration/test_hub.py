"""Hub publish / load round trip through FiftyOne's real push_to_hub / load_from_hub.

The network layer (huggingface_hub's upload / download calls) is replaced by
a folder acting as the hub repo; everything above it is the real code.
"""

import fnmatch
import os
import shutil

import fiftyone as fo
import fiftyone.utils.huggingface as fouh
import pytest
import yaml

from person_finder.core import contract

from person_finder.core.curation import hub
from person_finder.testing import synthetic
from person_finder.core.curation.market import import_market1501, write_market_attributes

FIELDS = [contract.PERSON_ID_FIELD, contract.CAMERA_ID_FIELD, "sequence", "frame", contract.MARKET_ATTRIBUTES_FIELD]


class FakeHub:
    """One dataset repo in a folder, behind huggingface_hub's function names."""

    def __init__(self, root, monkeypatch):
        self.root = str(root)
        import huggingface_hub as h

        # FiftyOne's lazy module copies huggingface_hub's attributes when first used: point it at the
        # real module so the patches below apply however early it was first used in this session.
        monkeypatch.setattr(fouh, "hfh", h)
        monkeypatch.setattr(h, "whoami", lambda token=None: {"name": "tester"})
        monkeypatch.setattr(h, "create_repo", lambda *a, **k: None)
        monkeypatch.setattr(h.HfApi, "upload_file", lambda api, path_or_fileobj, path_in_repo, **k:
                            self._put(path_or_fileobj, path_in_repo))
        monkeypatch.setattr(h.HfApi, "upload_folder", lambda api, folder_path, path_in_repo=None, **k:
                            shutil.copytree(folder_path, os.path.join(self.root, path_in_repo or ""),
                                            dirs_exist_ok=True))
        monkeypatch.setattr(h.HfApi, "get_paths_info", lambda api, *a, **k: [])
        monkeypatch.setattr(h.HfApi, "file_exists", lambda api, repo_id, filename, **k:
                            os.path.exists(os.path.join(self.root, filename)))
        monkeypatch.setattr(h, "hf_hub_download", lambda repo_id, filename, **k: os.path.join(self.root, filename))
        monkeypatch.setattr(h, "snapshot_download", self._snapshot)
        monkeypatch.setattr(h.DatasetCard, "push_to_hub", lambda card, repo_id, **k:
                            card.save(os.path.join(self.root, "README.md")))

    def _put(self, src, rel):
        os.makedirs(os.path.dirname(os.path.join(self.root, rel)) or self.root, exist_ok=True)
        shutil.copy(src, os.path.join(self.root, rel))

    def _snapshot(self, repo_id=None, local_dir=None, ignore_patterns=None, allow_patterns=None, **kwargs):
        for rel in files_under(self.root):
            if ignore_patterns and fnmatch.fnmatch(rel, ignore_patterns):
                continue
            if allow_patterns and rel not in allow_patterns:
                continue
            os.makedirs(os.path.dirname(os.path.join(local_dir, rel)), exist_ok=True)
            shutil.copy(os.path.join(self.root, rel), os.path.join(local_dir, rel))
        return local_dir


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


@pytest.fixture()
def curated(market_folder, dataset, tmp_path):
    parts = {"train": {}, "test": {}}
    for pid, spec in market_folder.specs.items():
        parts["train" if pid <= 12 else "test"][pid] = synthetic.market_attributes(spec)
    mat = write_market_attributes(tmp_path / "market_attribute.mat", parts)
    import_market1501(market_folder.root, dataset=dataset, attributes_path=mat, val_fraction=0.34)
    return dataset


def _rows(ds):
    rows = {}
    for s in ds:
        with open(s.filepath, "rb") as f:
            rows[os.path.basename(s.filepath)] = (sorted(s.tags), [s[k] for k in FIELDS], f.read())
    return rows


def test_publish_then_load_through_fiftyone_round_trips(curated, tmp_path, monkeypatch):
    fake = FakeHub(tmp_path / "repo", monkeypatch)
    repo_id = hub.publish_to_hub(curated, "market-curated", description="synthetic Market", license="other")
    assert repo_id == "tester/market-curated"

    monkeypatch.setattr(fo.config, "default_dataset_dir", str(tmp_path / "downloads"))
    loaded = hub.load_hub_dataset(repo_id, name=f"{curated.name}-hub", persistent=False)
    try:
        assert len(loaded) == len(curated)
        assert _rows(loaded) == _rows(curated)
    finally:
        loaded.delete()

    card = open(os.path.join(fake.root, "README.md")).read()
    front, body = card.split("---", 2)[1:]
    meta = yaml.safe_load(front)
    assert "fiftyone" in meta["tags"] and "dataset_structure" not in meta
    for expected in ("`train`: ", "`val`: ", "`query`: ", "`gallery`: ", "`distractor`: 2 images",
                     f"`{contract.MARKET_ATTRIBUTES_FIELD}` (DictField): Market-1501's 27", "surveillance",
                     "load_from_hub"):
        assert expected in body, expected

    # staging offline writes the same files as the publish uploaded
    staged = hub.stage_for_hub(curated, tmp_path / "staged", repo_id, description="synthetic Market",
                               license="other")
    assert files_under(staged) == files_under(fake.root)
    assert open(os.path.join(staged, "README.md")).read() == card
    assert yaml.safe_load(open(os.path.join(staged, "fiftyone.yml"))) == yaml.safe_load(
        open(os.path.join(fake.root, "fiftyone.yml")))


def test_staged_folder_loads_back_identical(curated, tmp_path):
    staged = hub.stage_for_hub(curated, tmp_path / "staged", "me/market")
    loaded = hub.load_hub_dataset(staged, name=f"{curated.name}-staged", persistent=False)
    try:
        assert _rows(loaded) == _rows(curated)
        assert loaded.info == curated.info
    finally:
        loaded.delete()


def test_bad_sources_are_explained(curated, tmp_path):
    with pytest.raises(ValueError, match="no fiftyone.yml"):
        hub.load_hub_dataset(tmp_path)
    (tmp_path / "fiftyone.yml").write_text("format: ParquetFilesDataset\n")
    with pytest.raises(ValueError, match="only 'FiftyOneDataset'"):
        hub.load_hub_dataset(tmp_path)
    with pytest.raises(ValueError, match="generated samples"):
        hub.stage_for_hub(_patches_view(curated), tmp_path / "x", "me/x")


def _patches_view(dataset):
    sample = dataset.first()
    sample["persons"] = fo.Detections(detections=[fo.Detection(label="person", bounding_box=[0, 0, 1, 1])])
    sample.save()
    return dataset.to_patches("persons")


def test_the_current_view_is_published_and_the_card_says_only_what_happened(curated, tmp_path, tiny_dinov2):
    from person_finder.core.attributes.audit import audit_attributes
    from person_finder.core.attributes.store import save_run, to_document
    from person_finder.core.curation import dedupe
    from person_finder.testing.fake_gemini import spec_answer

    dedupe.find_near_duplicates(curated, 0.002, model=tiny_dinov2)
    view = curated.match_tags("train")
    staged = hub.stage_for_hub(view, tmp_path / "view", "me/train-only")
    card = open(os.path.join(staged, "README.md")).read()
    assert f"{len(view)} images" in card and "`query`" not in card  # the view, not the whole dataset
    assert "Gemini" not in card and "udited" not in card and str(tmp_path) not in card
    assert tiny_dinov2 not in card and "a local model (tiny-dinov2)" in card  # no local paths
    loaded = hub.load_hub_dataset(staged, name=f"{curated.name}-view", persistent=False)
    try:
        assert len(loaded) == len(view) and len(loaded.match_tags("train")) == len(view) and not loaded.match_tags("query")
    finally:
        loaded.delete()

    specs = {p: synthetic.random_specs(1, seed=p)[0] for p in curated.distinct("person_id")}
    curated.set_values("attributes", [to_document(spec_answer(specs[p])) for p in curated.values("person_id")],
                       dynamic=True)
    save_run(curated, contract.ATTRIBUTES_RUN_KEY, {"provider": "gemini", "model": "gemini-2.5-flash",
                                                    "prompt_version": contract.ATTRIBUTES_PROMPT_VERSION}, {})
    audit_attributes(curated)
    card = hub.card_sections(curated)["annotation_process_section"]
    assert "generated by Gemini (gemini-2.5-flash)" in card and "Audited against `market_attributes`" in card
