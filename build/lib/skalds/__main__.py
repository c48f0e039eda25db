"""``python -m skalds``."""

from skalds.cli import main

if __name__ == "__main__":
    main()
