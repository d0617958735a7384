"""calsync's state on Cloud Firestore, one store per aggregate (each implements one ``ports`` store port).

``base`` (client, namespace, batches, error classification), ``calendars`` (calendars and leases),
``mirror`` (mirror events and sync cursors), ``conflicts``, ``channels`` (push channels, unknown
channels), ``plans`` (plans, progress, the quota timeline), ``directory`` (directory, allocations).
``adapters/firestore_store.py`` composes them into the one store the composition root builds.
"""
