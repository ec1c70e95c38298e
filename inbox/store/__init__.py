"""Persistence: the SQLModel tables (`models`), the engine and transactions (`engine`), Alembic migrations
(`migrate`, `migrations/`), blobs on disk, leases, and the driver-level helpers of the hot inbound write
(`sqlite_driver`, `driver_sql`). Decides nothing about what is written. May import only the shared basics
(`inbox.clock`, `inbox.errors`).
"""
