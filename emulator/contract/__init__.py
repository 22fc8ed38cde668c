"""Contract testing: the shipped contracts checked against requests (``strict``), a recording proxy
(``proxy``, ``har``), and the replay of a recording against the emulator with a field-level drift
report (``replay``, ``compare``, ``report``).

This module imports nothing: the providers import ``strict`` from here, and ``replay`` imports the
app, which imports the providers.
"""
