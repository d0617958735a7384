"""A faithful local emulator of the Google Calendar API v3 (see README.md in this folder).

Run with ``python -m devstack.calendar_emulator --host 127.0.0.1 --port PORT [--state-file PATH]``.
Never imported by ``shared/`` or ``functions/``.
"""
