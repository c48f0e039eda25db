"""The environment as configuration: the process environment plus a ``.env`` file.

The seed read its settings from environment variables after loading ``.env``; Skalds keeps
those names (``KAFKA_HOST``, ``REDIS_HOST``, ``MONGO_HOST``, ``DB_NAME``, ...). The rule is the
same everywhere: a variable set in the environment wins over the file, and an empty value
means "not set". Nothing here runs on import: every call reads the file again, so a test or a
script that changes the environment is seen at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

#: The file read next to the working directory, as the seed's ``load_dotenv()`` did.
DOTENV = Path(".env")


def read_dotenv(path: Path = DOTENV) -> dict[str, str]:
    """The ``KEY=VALUE`` pairs of a ``.env`` file (none if it does not exist), as
    python-dotenv reads them (comments, ``export``, quotes; keys without a value are left out)."""
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_dotenv(path: Path = DOTENV) -> None:
    """Put the ``.env`` file's variables into the environment (``${oc.env:...}`` in ``conf/``
    reads them); variables already set win."""
    for key, value in read_dotenv(path).items():
        os.environ.setdefault(key, value)


def environment(path: Path = DOTENV) -> dict[str, str]:
    """The variables that are set and not empty: the ``.env`` file overlaid by the process
    environment (which therefore wins, also with an empty value that unsets a file's one)."""
    merged = {**read_dotenv(path), **os.environ}
    return {key: value for key, value in merged.items() if value != ""}
