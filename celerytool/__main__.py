"""Entry point for ``python -m celerytool``."""

from celerytool.cli import main

if __name__ == "__main__":
    main()
