"""``python -m skalds``: the Hydra entry point, and the only place that configures logging."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from skalds.errors import SkaldsError
from skalds.utils.logging import configure_logging

logger = logging.getLogger("skalds")


def config_dir() -> str:
    """The ``conf/`` directory: next to the package in a checkout or editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise SystemExit(
        f"skalds: cannot find conf/config.yaml near {here}; install with `pip install -e .` from a checkout"
    )


def _run(cfg: DictConfig) -> None:
    from skalds.settings import load_settings
    from skalds.system import SkaldsSystem

    configure_logging(str(cfg.get("log_level", "INFO")))
    try:
        settings = load_settings(cfg)
        system = SkaldsSystem(settings).start()
    except SkaldsError as exc:
        logger.error("%s", exc)
        sys.exit(2)
    try:
        system.serve()
    finally:
        system.stop()


def main() -> None:
    """Compose ``conf/`` with the command line's overrides and run the selected mode."""
    # Hydra resolves the config path against this file; an absolute path works from any cwd.
    hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(_run)()
