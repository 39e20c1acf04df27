"""Entry for `python -m workbench`; see `workbench.cli` for the subcommands."""

from workbench.cli import main

raise SystemExit(main())
