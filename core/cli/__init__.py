"""The ``continuum`` command line. No library module imports this package, so a deploy
bundle leaves it out with one rule (``continuum/cli/``)."""
