"""Each API with operations that need a token declares how to get one, so that /docs can sign
in: OAuth2 authorization code (with PKCE) at the identity provider; the citizen's lookup PIN
where it is accepted instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from services.deadline.main import create_app as deadline_app
from services.intake.main import create_app as intake_app
from services.notifier.main import create_app as notifier_app
from tests.fakes.identity import ISSUER, LocalIssuer

SETTINGS = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "DATABASE_URL": "postgresql://u:p@db/onestop",
    "HTTP_PORT": "8000",
    "OIDC_ISSUER": ISSUER,
    "LOOKUP_PIN_KEY": "k" * 32,
    "LINK_SIGNING_KEY": "k" * 32,
    "SIGNING_DIRECTORY": "/nonexistent/signing",
}
APPS: dict[str, Callable[..., FastAPI]] = {
    "intake": intake_app,
    "deadline": deadline_app,
    "notifier": notifier_app,
}


@pytest.fixture(params=sorted(APPS))
def app(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    built: FastAPI = APPS[request.param](token_verifier=LocalIssuer().verifier())
    return built


def test_the_document_declares_sign_in_at_the_identity_provider(app: FastAPI) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]
    flow = schemes["keycloak"]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == f"{ISSUER}/protocol/openid-connect/auth"
    assert flow["tokenUrl"] == f"{ISSUER}/protocol/openid-connect/token"
    assert app.swagger_ui_init_oauth == {
        "clientId": "onestop-portal",
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "openid",
    }


def test_every_operation_but_health_and_public_reports_needs_a_token(app: FastAPI) -> None:
    public = {"/healthz", "/readyz", "/metrics", "/v1/reports/lateness", "/v1/reports/indicators"}
    public.add("/v1/letters/{token}")  # the citizen's signed link is its own credential
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            security: list[dict[str, Any]] = operation.get("security", [])
            if path in public:
                assert not security, (method, path)
                continue
            assert {"keycloak": []} in security, (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_the_citizens_pin_is_declared_where_it_opens_a_dossier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    document = intake_app(token_verifier=LocalIssuer().verifier()).openapi()
    assert document["components"]["securitySchemes"]["lookup-pin"]["name"] == "X-Lookup-PIN"
    for path in ("/v1/dossiers/{code}", "/v1/dossiers/{code}/timeline"):
        assert {"lookup-pin": []} in document["paths"][path]["get"]["security"]
