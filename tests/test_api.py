"""The public API: every exported name exists, and none hides a submodule of the same name."""

import importlib
import pkgutil

import namjax


def test_every_exported_name_exists():
    missing = [name for name in namjax.__all__ if not hasattr(namjax, name)]
    assert missing == []


def test_no_export_shadows_a_submodule():
    modules = [m.name for m in pkgutil.iter_modules(namjax.__path__) if m.name[0] != "_"]
    assert "explainer" in modules and "views" in modules
    for name in modules:
        module = importlib.import_module(f"namjax.{name}")
        assert getattr(namjax, name) is module, f"namjax.{name} is not the submodule"


def test_every_method_is_exported_by_name():
    assert set(namjax.METHODS) == {
        "nam",
        "saliency",
        "integrated_gradients",
        "deeplift",
        "smoothgrad",
        "occlusion",
    }
    assert all(issubclass(cls, namjax.Method) for cls in namjax.METHODS.values())
