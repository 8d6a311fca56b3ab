"""GluonTS adapters (placeholder: not built yet; nothing is exported here)."""
