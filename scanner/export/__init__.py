"""After-action review: the export bundle, its verifier, and the HTML report.

* ``collect``: one period read out of the store in one snapshot.
* ``bundle``: the tar.gz (tables, chains, evidence, report, manifest); ``verify`` checks one.
* ``tables``: typed columns written as NDJSON and CSV; ``timefmt``: ISO 8601 / unix seconds.
* ``evidence``: pcap, BLE JSONL and SigMF per alert; ``pseudonym``: keyed MAC pseudonyms.
* ``manifest``: MANIFEST.json with file hashes, chain heads, digest and seal.
* ``report_html``: the self-contained page that both the bundle and ``checkpoint report`` carry.

Nothing here writes to the store except the audit record of an export and the site key.
"""
