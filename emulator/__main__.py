"""``python -m emulator`` is the ``emulator`` command."""

from .cli import main

raise SystemExit(main())
