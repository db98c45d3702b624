"""Presentation without Streamlit: Altair chart builders, chart specs, tables, wording, exports."""
