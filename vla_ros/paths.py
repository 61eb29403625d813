"""Where the package's files live, whether it runs from a source tree, a pip install or colcon."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "vla_ros"
_PACKAGE_DIR = Path(__file__).resolve().parent


def share_dir() -> Path:
    """The folder holding config/ and launch/.

    A source checkout (also an editable install) wins, so edits to config/ take effect without a
    reinstall; then the ament index of a colcon install; then the share/ folder of a pip install.
    """
    source_root = _PACKAGE_DIR.parent
    if (source_root / "package.xml").is_file() and (source_root / "config").is_dir():
        return source_root
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError, ValueError):
        pass
    installed = Path(sys.prefix) / "share" / PACKAGE
    if installed.is_dir():
        return installed
    raise FileNotFoundError(
        f"cannot find the {PACKAGE} share folder (config/, launch/): looked in {source_root}, "
        f"the ament index and {installed}; reinstall the package"
    )


def config_dir() -> Path:
    return share_dir() / "config"


def config_file(name: str) -> Path:
    """A YAML file under config/, by file name (`vla.yaml`) or stem (`vla`)."""
    file_name = name if name.endswith(".yaml") else f"{name}.yaml"
    path = config_dir() / file_name
    if not path.is_file():
        available = sorted(p.stem for p in config_dir().glob("*.yaml"))
        raise FileNotFoundError(f"no config {file_name!r} in {config_dir()}; have {available}")
    return path


def package_data_dir(*parts: str) -> Path:
    """A folder shipped inside the Python package (checkpoints, simulator models)."""
    return _PACKAGE_DIR.joinpath(*parts)
