"""The WSGI entry point: `flask --app wsgi notifier ...`, or any WSGI server (`wsgi:app`)."""

from notifier import create_app

app = create_app()
