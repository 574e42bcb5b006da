"""The app `faststream run order_service.app:app` serves."""

from order_service.bootstrap import create_app
from order_service.errors import ConfigurationError

try:
    app = create_app()
except ConfigurationError as exc:
    # The message names each offending ORDER_SERVICE_... variable; a traceback would bury it.
    raise SystemExit(str(exc)) from None
