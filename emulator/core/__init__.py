"""Provider-neutral machinery: the gateway every provider call goes through, the call record, the
journal, fault rules, callbacks, throttling and clocks.

Nothing in this package names a provider (tests/test_imports.py checks it).
"""
