"""``python -m bridge`` runs the ``imgsonic`` command line."""

from bridge.cli import main

raise SystemExit(main())
