"""Provider-neutral machinery: clocks, rate limiting (and later the journal, faults, callbacks).

Nothing in this package names a provider.
"""
