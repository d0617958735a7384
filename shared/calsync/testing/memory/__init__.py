"""In-memory stores, one per store port, with the semantics of ``adapters/firestore/`` (checked by
``tests/contract``): records are copied in and out like a database's, transactional methods hold a
lock, pages and orders are the Firestore store's.
"""
