"""`python -m seqgan` = the `seqgan` console script (rules use this form: no PATH assumptions)."""

from seqgan.cli import main

raise SystemExit(main())
