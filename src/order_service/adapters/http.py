"""HTTP endpoints served next to the consumer: liveness and readiness."""

import json
from typing import Any

from faststream.asgi import AsgiResponse, get

from kafka_delivery.operations import ReadinessProbe


def _json(status: int, body: dict[str, Any]) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status, {"content-type": "application/json"})


def health_routes(probe: ReadinessProbe) -> list[tuple[str, Any]]:
    @get(include_in_schema=False)
    async def live(scope: Any) -> AsgiResponse:
        # Answering at all proves the event loop is turning.
        return _json(200, {"status": "alive"})

    @get(include_in_schema=False)
    async def ready(scope: Any) -> AsgiResponse:
        readiness = await probe.check()
        status = "ready" if readiness.ready else "not ready"
        body: dict[str, Any] = {"status": status, "reason": readiness.reason}
        if readiness.blocked:
            body["blocked"] = list(readiness.blocked)
        return _json(200 if readiness.ready else 503, body)

    return [("/health/live", live), ("/health/ready", ready)]
