"""Alembic script directory of lore-memory, installed as the package ``lore_core.migrations``.

Apply it with :func:`lore_core.store.upgrade` (or ``lore db upgrade``); developers may also run the
``alembic`` command from the repository root, where ``alembic.ini`` points here.
"""
