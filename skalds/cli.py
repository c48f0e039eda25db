"""``python -m skalds`` / ``skalds``: the Hydra entry point, and the only place that configures
logging.

Before Hydra sees the command line, the mistakes people make most get one line that says what
to write instead (``mode=node`` for ``+mode=node``, an option a group does not have), and
``--version`` answers with Skalds' version rather than Hydra's.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from skalds import __version__
from skalds.config.env import load_dotenv
from skalds.config.paths import config_dir
from skalds.errors import SkaldsError
from skalds.utils.logging import configure_logging
from skalds.utils.proctitle import set_title

logger = logging.getLogger("skalds")

#: Config groups whose option is picked with GROUP=OPTION (the mode with +mode=OPTION).
GROUPS = ("backend", "dispatch", "workers", "mode")


def _run(cfg: DictConfig) -> None:
    from skalds.settings import load_settings
    from skalds.system import SkaldsSystem

    configure_logging(str(cfg.get("log_level", "INFO")))
    if cfg.get("mode") == "bench":
        set_title("skalds bench")
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
        set_title(f"skalds {settings.mode}" + ("" if settings.mode == "controller" else f" {settings.node.id}"))
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


def options(group: str) -> list[str]:
    """The options of a config group (its files in ``conf/<group>/``)."""
    return sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml"))


def check_arguments(args: list[str]) -> str | None:
    """One line saying what to write instead, for an argument Hydra would answer with a
    traceback or a dump of its search path; None when the arguments look right."""
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        plain = key.lstrip("+~")
        if plain not in GROUPS or key.startswith("~"):
            continue
        known = options(plain)
        if plain == "mode" and not key.startswith("+"):
            if value == "standalone":
                return "mode=standalone: that is the default; leave the mode out"
            return f"{arg}: the mode is added with a plus: write +mode={value} (modes: {', '.join(known)})"
        for option in value.split(","):  # a sweep: dispatch=least_loaded,round_robin
            if option not in known:
                return f"{arg}: {plain} has no option {option!r}; choose one of: {', '.join(known)} (conf/{plain}/)"
    return None


def main() -> None:
    """Compose ``conf/`` with the command line's overrides and run the selected mode."""
    load_dotenv()  # the seed's variables (KAFKA_HOST, ...) from ./.env; the environment wins
    args = sys.argv[1:]
    if "--version" in args or "-V" in args:
        print(f"skalds {__version__}")
        return
    problem = check_arguments(args)
    if problem is not None:
        print(f"skalds: {problem}", file=sys.stderr)
        sys.exit(2)
    # Hydra resolves the config path against this file; an absolute path works from any cwd.
    hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(_run)()
