"""``calsync``: the admin command line of calsync's publish function (plan, apply, provision, sync, ...).

Self-contained on purpose: it talks to the admin HTTPS API with ``requests`` and renders with ``rich``
and ``typer``, which are development/operator dependencies, not runtime dependencies of the Cloud
Functions, and reads the answers as the :mod:`calsync.results` models the API declares. Nothing under
``functions/`` or the rest of ``calsync`` imports this package.
"""
