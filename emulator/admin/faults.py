"""Admin routes over the fault rules: list, add (rules or a scenario), remove."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.faults import RuleError
from ..core.scenarios import ScenarioError, load_requested, parse_scenario
from ..errors import AdminError
from ..keys import FAULTS, SETTINGS
from .common import json_body, namespace_of


def _bad_rule(message: str) -> AdminError:
    return AdminError(400, "bad_rule", message)


async def list_faults(request: web.Request) -> web.Response:
    ns = namespace_of(request)
    engine = request.config_dict[FAULTS]
    rules = engine.rules(ns)
    await engine.refresh_counts(rules, ns)
    return web.json_response({"rules": [r.to_dict(ns) for r in rules]})


async def add_faults(request: web.Request) -> web.Response:
    """Body: one rule, ``{"rules": [...]}``, or ``{"scenario": <name or inline scenario>}``."""
    data: Any = await json_body(request, kind="bad_rule")
    engine = request.config_dict[FAULTS]
    ns = namespace_of(request)
    try:
        if isinstance(data, dict) and "scenario" in data:
            ref = data["scenario"]
            if isinstance(ref, dict):
                scenario = parse_scenario(ref, "scenario")
            elif isinstance(ref, str):
                cfg = request.config_dict[SETTINGS].faults
                scenario = load_requested(ref, cfg.scenarios_dir, cfg.scenario_max_bytes)
            else:
                raise _bad_rule("scenario: must be a shipped scenario name, a file name or a scenario object")
            await engine.reserve(len(scenario.rules))
            rules = engine.add_all(scenario.rules, ns, "scenario.rules")
        elif isinstance(data, dict) and "rules" in data:
            if not isinstance(data["rules"], list):
                raise _bad_rule("rules: must be a list of rules")
            await engine.reserve(len(data["rules"]))
            rules = engine.add_all(data["rules"], ns, "rules")
        else:
            await engine.reserve(1)
            rules = [engine.add(data, ns)]
    except (RuleError, ScenarioError) as exc:
        # Not the generic bad_request: clients tell a wrong rule from a wrong call by this kind.
        raise _bad_rule(str(exc)) from exc
    return web.json_response({"rules": [r.to_dict() for r in rules]}, status=201)


async def delete_fault(request: web.Request) -> web.Response:
    rule_id = request.match_info["id"]
    if not request.config_dict[FAULTS].remove(rule_id, namespace_of(request)):
        raise AdminError(404, "not_found", f"no fault rule {rule_id!r}")
    return web.json_response({"deleted": rule_id})


async def delete_faults(request: web.Request) -> web.Response:
    return web.json_response({"deleted": request.config_dict[FAULTS].clear(namespace_of(request))})


def setup(admin: web.Application) -> None:
    admin.router.add_get("/faults", list_faults)
    admin.router.add_post("/faults", add_faults)
    admin.router.add_delete("/faults", delete_faults)
    admin.router.add_delete("/faults/{id}", delete_fault)
