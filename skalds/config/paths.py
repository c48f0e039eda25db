"""Where Skalds finds its own files: the Hydra config tree and the JSON Schemas."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent.parent  # the skalds package (not resolved: skalds/conf is a link)


def config_dir() -> str:
    """The ``conf/`` directory the package carries (``skalds/conf``, a link to the
    repository's top-level ``conf/`` in a checkout).

    Raises:
        SystemExit: it is in neither place (a broken install).
    """
    from skalds.config import schema  # every composition of conf/ needs its schema

    schema.register()
    candidate = _HERE / "conf"
    if (candidate / "config.yaml").is_file():
        return str(candidate.resolve())
    raise SystemExit(f"skalds: cannot find conf/config.yaml near {_HERE}; reinstall the package")
