"""The plugin as FiftyOne sees it: listed operators, declared requirements, one OpenCV."""


def test_plugin_and_operators_are_listed(fiftyone_cli):
    assert "@openset-reid/person-finder" in fiftyone_cli("plugins", "list")
    assert "@openset-reid/person-finder/build_text_index" in fiftyone_cli("operators", "list")


def test_requirements_are_declared(fiftyone_cli):
    out = fiftyone_cli("plugins", "requirements", "@openset-reid/person-finder", "--print")
    for package in ("fiftyone", "torch", "transformers", "ultralytics", "google-genai"):
        assert package in out


def test_one_opencv_is_installed_and_it_is_the_one_imported():
    """opencv-python and opencv-python-headless share the cv2 folder; with both, `import cv2` is a mix."""
    import importlib.metadata as metadata

    import cv2

    installed = {}
    for name in ("opencv-python", "opencv-python-headless", "opencv-contrib-python"):
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    assert list(installed) == ["opencv-python-headless"], installed
    assert installed["opencv-python-headless"].startswith(cv2.__version__ + "."), (cv2.__version__, installed)
    assert hasattr(cv2, "HOGDescriptor"), "the headless 4.x build ships the HOG people detector"
