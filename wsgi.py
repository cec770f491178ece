"""The WSGI entry point: `flask --app wsgi notifier ...`, or any WSGI server (`wsgi:app`)."""

from notifier import create_app
from notifier.serve import settle_heap

app = create_app()
settle_heap()  # a WSGI server imports this once per process, before it serves
