"""The model service. The thread budget is fixed on import, before any numerical library loads."""

from app.threads import current

current()
