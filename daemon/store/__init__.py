"""PostgreSQL: the pool and its error boundary, migrations, every SQL file, the stores.

Everything that touches the database is here; services call these stores and hold
no SQL of their own.
"""
