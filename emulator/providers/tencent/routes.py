"""Which path goes to which Tencent CI handler."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Tencent CI routes (POST /report/badcase arrives with the Tencent provider)."""
    del app
