"""One package per provider, each with the same files (routes, handlers, models, signing, protocol,
errors, schemas)."""
