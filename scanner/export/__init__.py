"""After-action review: the export bundle, its verifier, and the HTML report.

``collect`` reads one period out of the store, ``bundle`` writes it as a tar.gz with a manifest,
``verify`` checks a bundle, ``report_html`` draws the page both the bundle and ``checkpoint report``
carry. Nothing here writes to the store except the audit record of an export and the site key.
"""
