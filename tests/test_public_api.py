from __future__ import annotations

import emulator


def test_all_names_exist_and_are_sorted() -> None:
    assert sorted(emulator.__all__) == emulator.__all__
    for name in emulator.__all__:
        assert hasattr(emulator, name), name


async def test_serve_starts_on_a_free_loopback_port_and_stops() -> None:
    import aiohttp

    async with emulator.serve() as server:
        assert server.host == "127.0.0.1" and server.port > 0
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/_emulator/health") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
    async with aiohttp.ClientSession() as session:
        try:
            await session.get(f"{server.url}/_emulator/health")
        except aiohttp.ClientConnectionError:
            pass
        else:
            raise AssertionError("the server still answers after the block")


def test_every_error_a_user_meets_is_an_emulator_error() -> None:
    for name in ("AdminError", "ConfigError", "InvalidInput", "NotFound", "ServerStartError", "Timeout"):
        assert issubclass(getattr(emulator, name), emulator.EmulatorError), name
