"""The Keycloak realm `onestop`, generated from the procedure catalog: one group per unit, the
roles, a demo user per role and unit, the sign-in client and one client per service and per
downstream system.

`python -m deploy.tools.realm` (`make realm`) writes deploy/keycloak/onestop-realm.json, the
committed file that deploy/local/keycloak.sh and docker-compose import; a test
(tests/unit/test_realm.py) fails when the two drift apart.

The demo password is for local sign-in only and is not a secret. The downstream client's secret is
never written here: the file holds Keycloak's placeholder ${KEYCLOAK_DOWNSTREAM_CLIENT_SECRET},
resolved from the environment when the realm is imported."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.catalog import Catalog, Unit, load_catalog
from shared.settings import DEFAULT_CATALOG

REALM = "onestop"
REALM_FILE = Path(__file__).resolve().parents[2] / "deploy" / "keycloak" / "onestop-realm.json"
DEMO_PASSWORD = "onestop-demo"  # local demo users only; documented in the README
DEMO_EMAIL_DOMAIN = "onestop.example"  # reserved (RFC 2606): no mail ever leaves for it
ACCESS_TOKEN_LIFESPAN_SECONDS = 15 * 60

COUNTER_OFFICER = "counter-officer"
UNIT_OFFICER = "unit-officer"
UNIT_HEAD = "unit-head"
OPERATOR = "operator"
DOWNSTREAM_SYSTEM = "downstream-system"

PORTAL_CLIENT = "onestop-portal"
SERVICE_CLIENTS = ("onestop-intake", "onestop-routing", "onestop-deadline", "onestop-notifier")
DOWNSTREAM_CLIENT = "onestop-downstream"
DOWNSTREAM_SECRET_VARIABLE = "KEYCLOAK_DOWNSTREAM_CLIENT_SECRET"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
# Ports whose /docs may fetch tokens from a browser: `make run` and compose (8000 up), and the
# test suite's default port base (18000 up). Another port needs adding here, then `make realm`.
DOCS_PORTS = (*range(8000, 8004), *range(18000, 18004))

# Username prefix, role and the official's title (an official's name is a public duty).
UNIT_USERS = (
    ("counter", COUNTER_OFFICER, "Cán bộ tiếp nhận"),
    ("officer", UNIT_OFFICER, "Cán bộ xử lý"),
    ("head", UNIT_HEAD, "Thủ trưởng"),
)
# Users without a unit: username, title, whose.
CITY_USERS = (
    ("operator", "Cán bộ vận hành", "Hệ thống một cửa"),
    ("leader", "Lãnh đạo", "Ủy ban nhân dân Thành phố"),
)


def username(prefix: str, unit_code: str) -> str:
    """Keycloak keeps usernames in lower case; the unit code keeps its case in `unit_code`."""
    return f"{prefix}.{unit_code.lower()}"


def realm(catalog: Catalog) -> dict[str, Any]:
    return {
        "realm": REALM,
        "displayName": "Một cửa TP. Hồ Chí Minh",
        "enabled": True,
        "sslRequired": "external",
        "registrationAllowed": False,
        "resetPasswordAllowed": False,
        "editUsernameAllowed": False,
        "accessTokenLifespan": ACCESS_TOKEN_LIFESPAN_SECONDS,
        "bruteForceProtected": True,
        "permanentLockout": False,
        "failureFactor": 10,
        "waitIncrementSeconds": 60,
        "maxFailureWaitSeconds": 900,
        "maxDeltaTimeSeconds": 43200,
        "quickLoginCheckMilliSeconds": 1000,
        "minimumQuickLoginWaitSeconds": 60,
        "roles": {"realm": _roles()},
        "groups": [_group(unit) for unit in catalog.units],
        "users": _users(catalog),
        "clients": [_portal(), *map(_audience_only, SERVICE_CLIENTS), _downstream()],
        "components": {"org.keycloak.userprofile.UserProfileProvider": [_user_profile()]},
    }


def _roles() -> list[dict[str, Any]]:
    return [
        {
            "name": COUNTER_OFFICER,
            "description": "Receives dossiers at its unit's counter and returns results there",
        },
        {"name": UNIT_OFFICER, "description": "Acts on the dossiers its unit holds now"},
        {
            "name": UNIT_HEAD,
            "description": "What a unit officer can do, plus signing the unit's apologies",
            "composite": True,
            "composites": {"realm": [UNIT_OFFICER]},
        },
        {"name": OPERATOR, "description": "Reads everything, changes nothing"},
        {
            "name": DOWNSTREAM_SYSTEM,
            "description": "A downstream system: reads the public events only",
        },
    ]


def _group(unit: Unit) -> dict[str, Any]:
    return {
        "name": unit.code,
        "path": f"/{unit.code}",
        "attributes": {"unit_code": [unit.code], "unit_name": [unit.name]},
    }


def _user(name: str, first: str, last: str, roles: list[str]) -> dict[str, Any]:
    return {
        "username": name,
        "enabled": True,
        "firstName": first,
        "lastName": last,
        "email": f"{name}@{DEMO_EMAIL_DOMAIN}",
        "emailVerified": True,
        "credentials": [{"type": "password", "value": DEMO_PASSWORD, "temporary": False}],
        "requiredActions": [],
        "realmRoles": roles,
    }


def _users(catalog: Catalog) -> list[dict[str, Any]]:
    users = []
    for unit in catalog.units:
        for prefix, role, title in UNIT_USERS:
            user = _user(username(prefix, unit.code), title, unit.name, [role])
            user["attributes"] = {"unit_code": [unit.code]}
            user["groups"] = [f"/{unit.code}"]
            users.append(user)
    for name, title, whose in CITY_USERS:
        users.append(_user(name, title, whose, [OPERATOR]))
    users.append(
        {
            "username": f"service-account-{DOWNSTREAM_CLIENT}",
            "enabled": True,
            "serviceAccountClientId": DOWNSTREAM_CLIENT,
            "realmRoles": [DOWNSTREAM_SYSTEM],
        }
    )
    return users


def _portal() -> dict[str, Any]:
    """Where people sign in: Swagger UI's /docs and intake's officials' pages (code flow with
    PKCE), curl and tests (password)."""
    return {
        "clientId": PORTAL_CLIENT,
        "name": "One-stop portal and API docs",
        "enabled": True,
        "publicClient": True,
        "standardFlowEnabled": True,
        "directAccessGrantsEnabled": True,
        "implicitFlowEnabled": False,
        "serviceAccountsEnabled": False,
        # Keycloak matches a loopback redirect URI on any port (RFC 8252, 7.3): a service's /docs
        # may sign in whatever port it listens on.
        "redirectUris": [f"http://{host}/*" for host in LOOPBACK_HOSTS],
        # Web origins have no such rule: Swagger UI's token request (CORS) is allowed from these.
        "webOrigins": [f"http://{host}:{port}" for host in LOOPBACK_HOSTS for port in DOCS_PORTS],
        # "+": signing out of the pages may come back to any address sign-in may.
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "+"},
        "protocolMappers": [_unit_code_mapper(), *map(_audience_mapper, SERVICE_CLIENTS)],
    }


def _unit_code_mapper() -> dict[str, Any]:
    return {
        "name": "unit_code",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "config": {
            "user.attribute": "unit_code",
            "claim.name": "unit_code",
            "jsonType.label": "String",
            "access.token.claim": "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
            "introspection.token.claim": "true",
        },
    }


def _audience_mapper(client_id: str) -> dict[str, Any]:
    return {
        "name": f"audience {client_id}",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.client.audience": client_id,
            "access.token.claim": "true",
            "id.token.claim": "false",
            "introspection.token.claim": "true",
        },
    }


def _audience_only(client_id: str) -> dict[str, Any]:
    """A service's API: the audience its tokens must name; nobody signs in to it."""
    return {
        "clientId": client_id,
        "name": f"API of {client_id.removeprefix('onestop-')}",
        "enabled": True,
        "bearerOnly": True,
        "publicClient": False,
        "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "serviceAccountsEnabled": False,
    }


def _downstream() -> dict[str, Any]:
    return {
        "clientId": DOWNSTREAM_CLIENT,
        "name": "Downstream system",
        "enabled": True,
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": "${" + DOWNSTREAM_SECRET_VARIABLE + "}",
        "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "serviceAccountsEnabled": True,
    }


def _user_profile() -> dict[str, Any]:
    """The user profile declares `unit_code`, editable by administrators only: a user who could
    change it in the account console would change the unit their token speaks for."""
    everyone = {"view": ["admin", "user"], "edit": ["admin", "user"]}
    attributes: list[dict[str, Any]] = [
        {
            "name": "username",
            "displayName": "Username",
            "validations": {
                "length": {"min": 3, "max": 255},
                "username-prohibited-characters": {},
                "up-username-not-idn-homograph": {},
            },
            "permissions": everyone,
            "multivalued": False,
        },
        {
            "name": "email",
            "displayName": "Email",
            "validations": {"email": {}, "length": {"max": 255}},
            "required": {"roles": ["user"]},
            "permissions": everyone,
            "multivalued": False,
        },
        *(
            {
                "name": name,
                "displayName": shown,
                "validations": {
                    "length": {"max": 255},
                    "person-name-prohibited-characters": {},
                },
                "required": {"roles": ["user"]},
                "permissions": everyone,
                "multivalued": False,
            }
            for name, shown in (("firstName", "First name"), ("lastName", "Last name"))
        ),
        {
            "name": "unit_code",
            "displayName": "Unit code",
            "validations": {
                "pattern": {
                    "pattern": "^[0-9A-Z.]{3,32}$",
                    "error-message": "a unit code of the catalog, such as 000.00.05.H29",
                }
            },
            "permissions": {"view": ["admin", "user"], "edit": ["admin"]},
            "multivalued": False,
        },
    ]
    config = {"attributes": attributes, "groups": []}
    return {
        "providerId": "declarative-user-profile",
        "subComponents": {},
        "config": {"kc.user.profile.config": [json.dumps(config, ensure_ascii=False)]},
    }


def render(catalog: Catalog) -> str:
    return json.dumps(realm(catalog), ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render(load_catalog(DEFAULT_CATALOG))
    if argv[:1] == ["--stdout"]:
        sys.stdout.write(text)
        return 0
    REALM_FILE.parent.mkdir(parents=True, exist_ok=True)
    REALM_FILE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
