"""``python -m skalds``: the Hydra entry point, and the only place that configures logging."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from skalds.config.paths import config_dir
from skalds.errors import SkaldsError
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


def load_dotenv(path: Path = Path(".env")) -> None:
    """Put ``KEY=VALUE`` lines of a ``.env`` file into the environment (``${oc.env:...}`` in
    ``conf/`` reads them). Variables already set win; ``#`` starts a comment."""
    if not path.is_file():
        return
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise SystemExit(f"skalds: {path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key.strip(), value)


def main() -> None:
    """Compose ``conf/`` with the command line's overrides and run the selected mode."""
    load_dotenv()
    # Hydra resolves the config path against this file; an absolute path works from any cwd.
    hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(_run)()
