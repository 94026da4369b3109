"""``python -m archiver``."""

from .cli import main

main()
