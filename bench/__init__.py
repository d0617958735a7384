"""calsync's benchmarks on the local stack (``python -m bench``, ``make bench``).

Six figures, each against a reference: P1 incremental sync vs a naive full-window poller
(``baseline_poller``), P2 full sync vs gcal_sync, P3 webhook acknowledgement vs a bare
functions-framework function, P4 edit → mirror latency through push, P5 a publish under the emulated
per-user quota, P6 channel renewal. Scripts, not tests: figures are printed, never asserted.
"""
