"""`python -m inbox` is the `switchboard` command."""

from inbox.cli import main

raise SystemExit(main())
