"""Services the demo and the tests start for themselves: a broker and a database.

Production runs against a real Mosquitto (or a clustered broker) and PostgreSQL/TimescaleDB given
by URL; nothing in gateway/ or ingest_server/ imports this package.
"""
