"""The data layer: schema, loading, registry, provenance and synthetic data (issue 10 layout)."""
