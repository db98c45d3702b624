"""The data model: canonical columns and vocabularies, value parsing, scopes, paths, the force list."""
