"""The query engine: datasets in DuckDB (or PostgreSQL, Spark) through Ibis, filters and breakdowns."""
