"""Admin routes over the fault rules: list, add (rules or a scenario), remove."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..core.faults import RuleError
from ..core.scenarios import ScenarioError, load_scenario, parse_scenario
from ..keys import FAULTS
from .common import namespace_of


def _bad(message: str) -> web.Response:
    return web.json_response({"error": "bad_rule", "message": message}, status=400)


async def list_faults(request: web.Request) -> web.Response:
    rules = request.app[FAULTS].rules(namespace_of(request))
    return web.json_response({"rules": [r.to_dict() for r in rules]})


async def add_faults(request: web.Request) -> web.Response:
    """Body: one rule, ``{"rules": [...]}``, or ``{"scenario": <name or inline scenario>}``."""
    try:
        data: Any = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return _bad(f"the body is not JSON: {exc}")
    engine = request.app[FAULTS]
    ns = namespace_of(request)
    try:
        if isinstance(data, dict) and "scenario" in data:
            ref = data["scenario"]
            scenario = parse_scenario(ref, "scenario") if isinstance(ref, dict) else load_scenario(str(ref))
            rules = engine.add_all(scenario.rules, ns, "scenario.rules")
        elif isinstance(data, dict) and "rules" in data:
            if not isinstance(data["rules"], list):
                return _bad("rules: must be a list of rules")
            rules = engine.add_all(data["rules"], ns, "rules")
        else:
            rules = [engine.add(data, ns)]
    except (RuleError, ScenarioError) as exc:
        return _bad(str(exc))
    return web.json_response({"rules": [r.to_dict() for r in rules]}, status=201)


async def delete_fault(request: web.Request) -> web.Response:
    rule_id = request.match_info["id"]
    if not request.app[FAULTS].remove(rule_id, namespace_of(request)):
        return web.json_response({"error": "not_found", "message": f"no fault rule {rule_id!r}"}, status=404)
    return web.json_response({"deleted": rule_id})


async def delete_faults(request: web.Request) -> web.Response:
    return web.json_response({"deleted": request.app[FAULTS].clear(namespace_of(request))})


def setup(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/faults", list_faults)
    app.router.add_post(f"{prefix}/faults", add_faults)
    app.router.add_delete(f"{prefix}/faults", delete_faults)
    app.router.add_delete(f"{prefix}/faults/{{id}}", delete_fault)
