"""Sub-commands of the ``elim`` CLI, one module each (discovered by :mod:`elim.cli`)."""
