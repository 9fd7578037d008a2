"""``/api/v1/rules`` and ``/api/v1/alerts``: threshold rules and the alerts they open."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import ConfigDict, Field, model_validator
from sqlalchemy import Engine

from arserver.api.deps import get_alerts, get_engine, optional_token, require_reader
from arserver.api.models import CheckedModel
from arserver.errors import NotFoundError
from arserver.security.actors import person_of
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.alerts import AlertService
from arserver.services.checks import storable_text
from arserver.store.alerts import AlertRow, list_alerts
from arserver.store.rules import RuleRow, list_rules

WINDOWS = {"raw": 0, "1m": 60, "15m": 900, "1h": 3600, "1d": 86400}


class RuleIn(CheckedModel):
    """Example: NO2 hourly mean above 40 opens an alert, below 35 for 30 minutes resolves it:
    ``{"kind": "no2", "operator": "above", "threshold": 40, "reset": 35, "window": "1h",
    "resolve_after_s": 1800}``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(pattern=r"^[a-z0-9_]{1,50}$")
    sensor: str | None = Field(default=None, description="Only this sensor (default: all)")
    operator: Literal["above", "below"] = "above"
    threshold: float
    reset: float = Field(description="The value must come back past this to resolve (hysteresis)")
    window: Literal["raw", "1m", "15m", "1h", "1d"] = "raw"
    open_after_s: int = Field(default=0, ge=0, le=7 * 86400)
    resolve_after_s: int = Field(default=0, ge=0, le=7 * 86400)

    @model_validator(mode="after")
    def _band(self) -> RuleIn:
        if (self.operator == "above" and self.reset > self.threshold) or (
            self.operator == "below" and self.reset < self.threshold
        ):
            raise ValueError("reset must lie on the safe side of threshold (hysteresis)")
        return self


def _rule_out(row: RuleRow) -> dict[str, Any]:
    window = next(name for name, seconds in WINDOWS.items() if seconds == row["window_s"])
    return {
        "id": row["id"], "name": row["name"], "kind": row["kind"], "sensor": row["sensor_id"],
        "operator": "above" if row["above"] else "below", "threshold": row["threshold"],
        "reset": row["reset"], "window": window, "open_after_s": row["open_after_s"],
        "resolve_after_s": row["resolve_after_s"],
    }  # fmt: skip


def _alert_out(row: AlertRow) -> dict[str, Any]:
    fields: dict[str, Any] = dict(row)
    out = {k: fields[k] for k in ("id", "rule_id", "sensor_id", "kind", "status", "value")}
    for key in ("opened_at", "acknowledged_at", "resolved_at"):
        moment = fields[key]
        out[key] = None if moment is None else moment.isoformat()
    out["acknowledged_by"] = row["acknowledged_by"]
    return out


def alerts_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["alerts"])

    @router.post("/rules", status_code=status.HTTP_201_CREATED, summary="Add a threshold rule")
    def add_rule(
        body: RuleIn,
        service: Annotated[AlertService, Depends(get_alerts)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        authorize(token, Action.ADD_RULES)
        row = service.add_rule(
            {
                "name": body.name, "kind": body.kind, "sensor_id": body.sensor,
                "above": body.operator == "above", "threshold": body.threshold,
                "reset": body.reset, "window_s": WINDOWS[body.window],
                "open_after_s": body.open_after_s, "resolve_after_s": body.resolve_after_s,
            },
        )  # fmt: skip
        return _rule_out(row)

    @router.get("/rules", summary="Threshold rules")
    def rules_index(
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        require_reader(token)
        return {"rules": [_rule_out(r) for r in list_rules(engine)]}

    @router.get("/alerts", summary="Alerts, newest first")
    def alerts_index(
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        state: Annotated[
            Literal["open", "acknowledged", "resolved"] | None, Query(alias="status")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        require_reader(token)
        return {"alerts": [_alert_out(a) for a in list_alerts(engine, state, limit)]}

    @router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge an open alert")
    def acknowledge_alert(
        alert_id: str,
        service: Annotated[AlertService, Depends(get_alerts)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        caller = authorize(token, Action.ACKNOWLEDGE_ALERTS)
        if len(alert_id) > 32 or not storable_text(alert_id):  # no such id can exist
            raise NotFoundError("no such alert")
        row = service.acknowledge(alert_id, person_of(caller))
        if row is None:
            raise NotFoundError(f"no alert {alert_id!r}")
        return _alert_out(row)

    return router
