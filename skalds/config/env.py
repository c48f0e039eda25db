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

from skalds.errors import ConfigError

#: The file read next to the working directory, as the seed's ``load_dotenv()`` did.
DOTENV = Path(".env")


def read_dotenv(path: Path = DOTENV) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of a ``.env`` file (none if it does not exist).

    ``#`` starts a comment line, ``export`` before a key is allowed, and one pair of matching
    quotes around a value is removed.

    Raises:
        ConfigError: a line is not ``KEY=VALUE``; the message names the file and line.
    """
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE", key=str(path))
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_dotenv(path: Path = DOTENV) -> None:
    """Put the ``.env`` file's variables into the environment (``${oc.env:...}`` in ``conf/``
    reads them); variables already set win.

    Raises:
        ConfigError: as :func:`read_dotenv`.
    """
    for key, value in read_dotenv(path).items():
        os.environ.setdefault(key, value)


def environment(path: Path = DOTENV) -> dict[str, str]:
    """The variables that are set and not empty: the ``.env`` file overlaid by the process
    environment (which therefore wins, also with an empty value that unsets a file's one).

    Raises:
        ConfigError: as :func:`read_dotenv`.
    """
    merged = {**read_dotenv(path), **os.environ}
    return {key: value for key, value in merged.items() if value != ""}
