"""The ml-api benchmark: ml-api against the servers users would pick instead.

Run it with ``make bench`` (full), ``make bench-smoke`` (about 15 s) or ``make bench-soak``; or
``.venv/bin/python -m bench --help``. It is not a test: nothing asserts a time.
"""
