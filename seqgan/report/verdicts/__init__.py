"""The claims' verdict rules as small pure functions, one module per kind of evidence.

``outcomes`` (the verdict strings and how parts combine), ``manipulation`` (claim 2's check that
alpha made the tokens more semantic), ``validation_loss`` (claim 2), ``usage`` (claim 3),
``decoder`` (claims 1 and 4, reconstruction), ``generation`` (claims 1, 2, 4, generation FID).
They read numbers, never files, and write no Markdown: :mod:`seqgan.report.claims` reads the run's
files and renders ``results/claims.md``.
"""
