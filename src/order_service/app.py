"""The app `faststream run order_service.app:app` serves."""

from order_service.bootstrap import create_app

app = create_app()
