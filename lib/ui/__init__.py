"""The Streamlit seam: the only package (with app.py and app_pages/) that imports streamlit.

- cache: the shared engine and every cached query (disclosure control applied on each read)
- context: this run's dataset, filters, user and scope; page guards; the audit trail
- datasets: the dataset picker and the disclosure switch
- filters: the global filters in the sidebar and the URL
- render: charts, tables with audited downloads, page headers and counts
- uploads: the Data page's uploads, mapping step, saved datasets and national figures
- roster: rosters, debriefs and training results
- admin: accounts, lockouts and sessions
- login: the login gate (streamlit-authenticator) and local mode
- warmup: what the server computes at start, before the first browser connects
- opening: the queries and charts of the Overview's opening view (the page and the warm-up share them)
"""
