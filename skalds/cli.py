"""``python -m skalds``: the Hydra entry point, and the only place that configures logging."""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from skalds.config.env import load_dotenv
from skalds.config.paths import config_dir
from skalds.errors import ConfigError, SkaldsError
from skalds.utils.logging import configure_logging

logger = logging.getLogger("skalds")


def _run(cfg: DictConfig) -> None:
    from skalds.settings import load_settings
    from skalds.system import SkaldsSystem

    configure_logging(str(cfg.get("log_level", "INFO")))
    if cfg.get("mode") == "bench":
        try:
            from skalds.bench.runner import run_bench
        except ImportError as exc:
            logger.error("the benchmark mode needs its extras: pip install -e '.[bench]' (%s)", exc)
            sys.exit(2)

        try:
            run_bench(cfg)
        except SkaldsError as exc:
            logger.error("%s", exc)
            sys.exit(2)
        return
    try:
        settings = load_settings(cfg)
        system = SkaldsSystem(settings)
        system.catch_signals()
        system.start(serve_http=True)
    except SkaldsError as exc:
        logger.error("%s", exc)
        sys.exit(2)
    try:
        system.serve()
    finally:
        system.stop()
    if system.exit_code:
        sys.exit(system.exit_code)


def main() -> None:
    """Compose ``conf/`` with the command line's overrides and run the selected mode."""
    try:
        load_dotenv()
    except ConfigError as exc:
        raise SystemExit(f"skalds: {exc}") from None
    # Hydra resolves the config path against this file; an absolute path works from any cwd.
    hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(_run)()
