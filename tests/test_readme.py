"""README's claims about the code that a test can hold: its Layout names every module."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def layout_section():
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_layout_names_every_module_and_package():
    layout = layout_section()
    package = ROOT / "inception_keras"
    modules = [p for p in package.rglob("*.py") if p.name != "__init__.py"]
    packages = [p for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert len(modules) > 40 and packages  # the walk found the package
    unnamed = [str(p.relative_to(ROOT)) for p in modules if f"`{p.name}`" not in layout]
    unnamed += [str(p.relative_to(ROOT)) for p in packages if f"`{p.name}/`" not in layout]
    assert not unnamed, f"README's Layout does not name {unnamed}"
