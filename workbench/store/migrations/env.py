"""Alembic environment for the store: runs on the connection `workbench.store.db.migrate` hands over.

Programmatic only (no alembic.ini): `migrate()` puts its connection, already inside a locked
transaction, in `config.attributes["connection"]`. Batch mode lets SQLite alter tables by copying them.
To write a new revision, add a file to versions/ by hand (copy the newest one, set `down_revision` to
its revision) and a test that opens a database at the previous revision.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
