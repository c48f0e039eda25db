"""Where Skalds finds its own files: the Hydra config tree and the JSON Schemas."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent.parent  # the skalds package


def config_dir() -> str:
    """The ``conf/`` directory: inside the installed package, or next to it in a checkout.

    Raises:
        SystemExit: it is in neither place (a broken install).
    """
    for candidate in (_HERE / "conf", _HERE.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise SystemExit(f"skalds: cannot find conf/config.yaml near {_HERE}; reinstall the package")
