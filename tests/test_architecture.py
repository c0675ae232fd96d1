"""The import rules of docs/architecture.md, checked on the source (no module is imported to check them).

* ``facecore`` never imports Streamlit, FastAPI/Starlette/uvicorn, ``ui``, ``app_pages`` or ``api``;
* each ``facecore`` module imports only from its own layer or the layers below it;
* inference (detection, alignment, embedding, the pipeline, decisions, the gallery) never reaches
  ``facecore.classroom``, even through another module;
* there is no import cycle between modules of ``facecore``, ``ui``, ``api`` or ``app_pages``;
* importing the engine's light parts loads no model library (checked in a fresh interpreter).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_FACECORE = ("streamlit", "fastapi", "starlette", "uvicorn", "ui", "app_pages", "api")

# Lower number = lower layer. A module may import its own layer and those below (docs/architecture.md).
LAYERS = {
    "facecore": 0,
    "facecore.registry": 0,
    "facecore.types": 0,
    "facecore.images": 0,
    "facecore.insightface_files": 0,
    "facecore.detection": 1,
    "facecore.embedding": 1,
    "facecore.alignment": 1,
    "facecore.config": 2,
    "facecore.cache": 2,
    "facecore.pipeline": 3,
    "facecore.verification": 3,
    "facecore.quality": 3,
    "facecore.gallery": 4,
    "facecore.facade": 4,
    "facecore.evaluation": 5,
    "facecore.classroom": 6,
    "facecore.cli": 7,
    "facecore.cli_calibration": 7,
    "facecore.cli_keys": 7,
    "facecore.__main__": 7,
}
INFERENCE = ("facecore.detection", "facecore.embedding", "facecore.alignment", "facecore.pipeline",
             "facecore.verification", "facecore.gallery", "facecore.config", "facecore.cache")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (lazy imports count too)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # "from facecore.detection import base" names a module too.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def sources(*packages: str) -> dict[str, Path]:
    files = [p for package in packages for p in (REPO / package).rglob("*.py")]
    return {module_name(p): p for p in files}


def internal_graph(*packages: str) -> dict[str, set[str]]:
    modules = sources(*packages)
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def test_every_facecore_module_has_a_layer() -> None:
    for module in sources("facecore"):
        assert any(module == p or module.startswith(p + ".") for p in LAYERS), f"{module} has no layer"


@pytest.mark.parametrize("module", sorted(sources("facecore")))
def test_facecore_imports_no_ui_and_no_web_framework(module: str) -> None:
    bad = sorted(m for m in imports_of(sources("facecore")[module]) if m.split(".")[0] in FORBIDDEN_IN_FACECORE)
    assert not bad, f"{module} imports {bad}"


def test_facecore_modules_import_only_their_layer_or_below() -> None:
    wrong = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in internal_graph("facecore").items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_inference_never_reaches_the_classroom() -> None:
    graph = internal_graph("facecore")
    for start in (m for m in graph if m.startswith(INFERENCE)):
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            todo.extend(graph.get(module, ()))
        assert not any(m.startswith("facecore.classroom") for m in seen), f"{start} reaches the classroom"


def test_there_is_no_import_cycle() -> None:
    graph = internal_graph("facecore", "ui", "api", "app_pages")
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_light_parts_load_no_model_library() -> None:
    code = (
        "import sys, facecore, facecore.config, facecore.verification, facecore.gallery, facecore.cache;"
        "from facecore.config import PipelineConfig; PipelineConfig(detector='mtcnn').model_version;"
        "from facecore.detection import DETECTORS; DETECTORS.names();"
        "heavy = [m for m in ('tensorflow', 'keras', 'dlib', 'streamlit', 'fastapi', 'torch', 'jax') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the light parts loaded {out.stdout.strip()}"


def test_every_gallery_store_offers_every_method_the_pages_and_the_api_call() -> None:
    """Each store implements the whole ``GalleryStore`` protocol, and everything ``GalleryBase`` leaves to a store."""
    import inspect

    from facecore.gallery.base import GalleryBase
    from facecore.gallery.postgres import PostgresGallery
    from facecore.gallery.store import Gallery
    from facecore.gallery.stores import GalleryStore

    wanted = {name for name in vars(GalleryStore) if not name.startswith("_")}
    left_to_stores = {
        name for name, member in vars(GalleryBase).items()
        if callable(getattr(member, "__func__", member)) and "raise NotImplementedError" in inspect.getsource(getattr(member, "__func__", member))
    }
    assert {"add_face", "_nearest", "_one"} <= left_to_stores
    for store in (Gallery, PostgresGallery):
        assert issubclass(store, GalleryBase)
        missing = {name for name in wanted if not hasattr(store, name)}
        assert not missing, f"{store.__name__} lacks {sorted(missing)}"
        stubs = {name for name in left_to_stores if vars(GalleryBase)[name] is inspect.getattr_static(store, name)}
        assert not stubs, f"{store.__name__} leaves {sorted(stubs)} to GalleryBase's stubs"
