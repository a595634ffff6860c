"""A store that is away, or a commit whose outcome is unknown, is a 503 that says so."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from tests.support.processes import free_port

from testfleet.hub.errors import install_error_handlers
from testfleet.store import Store
from testfleet.store.writer import CommitUnknown


def app() -> FastAPI:
    """An app whose routes fail the ways the store can."""
    application = FastAPI()
    install_error_handlers(application)

    @application.post("/unknown")
    async def unknown() -> None:
        raise CommitUnknown("the database connection broke while committing: gone")

    @application.get("/operational")
    async def operational() -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    @application.get("/dropped")
    async def dropped() -> None:
        closed = Exception("connection was closed")
        raise DBAPIError("COMMIT", {}, closed, connection_invalidated=True)

    @application.get("/nobody-listens")
    async def nobody_listens() -> None:
        store = Store(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
        try:
            await store.ping()  # a real PostgreSQL client meeting a closed port
        finally:
            await store.close()

    @application.get("/constraint")
    async def constraint() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    @application.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    return application


def request(method: str, path: str) -> httpx.Response:
    """One request to `app()`, in process."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return await client.request(method, path)

    return asyncio.run(send())


def test_a_commit_of_unknown_outcome_is_503_and_says_to_look_first() -> None:
    response = request("POST", "/unknown")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "commit_unknown"
    assert "broke while committing" in body["message"] and "look" in body["message"]


def test_a_store_that_is_away_is_503() -> None:
    for path, says in [
        ("/operational", "database is locked"),
        ("/dropped", "connection was closed"),
        ("/nobody-listens", ""),
    ]:
        response = request("GET", path)
        assert response.status_code == 503, (path, response.text)
        assert response.json()["code"] == "store_unavailable"
        assert says in response.json()["message"]


def test_anything_else_unexpected_stays_a_500() -> None:
    for path in ("/constraint", "/bug"):
        response = request("GET", path)
        assert (response.status_code, response.json()["code"]) == (500, "internal_error"), path
