"""PostgreSQL roles and schemas of the local stack: one login role per service, owning only its
schema, and a provisioning role that creates databases and hands each schema to its service.

The SQL is written here once and used three ways: deploy/local/postgres.sh pipes it into psql
(standard library only: it runs with the system's python3, before any virtual environment),
and clean_slate and the tests run it on a fresh database through `provision`.

    python3 -m deploy.local.databases roles      # as a superuser: the roles, passwords from
                                                 # the local secrets (.run/secrets.env)
    python3 -m deploy.local.databases database NAME   # as the provisioning role, connected to
                                                      # NAME: its schemas, owners, privileges
    python3 -m deploy.local.databases databases       # the databases postgres.sh creates
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

SERVICES = ("intake", "routing", "deadline", "notifier")  # each owns the schema named after it
PROVISIONER = "onestop"  # creates databases and schemas; no service connects as it
PROVISIONER_PASSWORD = "POSTGRES_ADMIN_PASSWORD"
# The services' database first; then the tests', simulated time's, the benchmark's, the demo's.
DATABASES = ("onestop", "onestop_test", "onestop_sim", "onestop_bench", "onestop_demo")
# Several test sessions may provision one database at once; catalog updates must not race.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('onestop provisioning'));"


def service_role(service: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    return f"onestop_{service}"


def password_name(service: str) -> str:
    """The local secret holding the service role's password."""
    service_role(service)
    return f"POSTGRES_{service.upper()}_PASSWORD"


def roles_sql(passwords: Mapping[str, str]) -> str:
    """Run by a superuser: the provisioning role and the service roles, created if missing and
    reset to exactly these attributes and passwords (`passwords` maps the secrets' names).

    The provisioning role is a member of every service role: PostgreSQL lets it hand a schema
    or table to a service role (ALTER … OWNER) only then, and the membership also lets it read
    and drop every service's tables (tests, demo, clean slate) without grants that each new
    migration would have to repeat. No service role is a member of anything."""
    statements = [_LOCK, _create_role(PROVISIONER)]
    statements.append(
        f"ALTER ROLE {PROVISIONER} LOGIN CREATEDB CREATEROLE NOSUPERUSER NOREPLICATION"
        f" NOBYPASSRLS INHERIT PASSWORD {_literal(passwords[PROVISIONER_PASSWORD])};"
    )
    for service in SERVICES:
        role = service_role(service)
        statements += [
            _create_role(role),
            f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
            f" NOBYPASSRLS PASSWORD {_literal(passwords[password_name(service)])};",
            f"GRANT {role} TO {PROVISIONER};",
        ]
    return "\n".join(statements) + "\n"


def database_sql(database: str, schemas: Mapping[str, str] | None = None) -> str:
    """Run by the provisioning role (or a superuser) connected to `database`: idempotent.

    Only the service roles may connect besides the owner; nobody creates in `public`; each
    schema (`schemas` maps schema to role; the services' own by default) exists, is owned by
    its role, and so is everything in it: a database made before the roles existed (schemas
    and tables owned by the provisioning role) is brought to this on every start."""
    owners = schemas if schemas is not None else {s: service_role(s) for s in SERVICES}
    roles = ", ".join(sorted({service_role(s) for s in SERVICES} | set(owners.values())))
    statements = [
        _LOCK,
        f"REVOKE ALL ON DATABASE {_identifier(database)} FROM PUBLIC;",
        f"GRANT CONNECT ON DATABASE {_identifier(database)} TO {roles};",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
    ]
    for schema, role in owners.items():
        statements += [
            f"CREATE SCHEMA IF NOT EXISTS {_identifier(schema)} AUTHORIZATION {role};",
            f"ALTER SCHEMA {_identifier(schema)} OWNER TO {role};",
            f"REVOKE ALL ON SCHEMA {_identifier(schema)} FROM PUBLIC;",
        ]
    statements.append(_HAND_OVER_CONTENTS.replace("$schemas$", _array(owners)))
    return "\n".join(statements) + "\n"


async def provision(
    connection: asyncpg.Connection, schemas: Mapping[str, str] | None = None
) -> None:
    """`database_sql` for the database `connection` is on, in one transaction."""
    database = await connection.fetchval("SELECT current_database()")
    async with connection.transaction():
        await connection.execute(database_sql(database, schemas))


# Every table, view and sequence (except those a column owns: they follow their table), every
# function and every free-standing type in the schemas, given to the schema's owner.
_HAND_OVER_CONTENTS = """DO $hand_over$
DECLARE
  statement text;
BEGIN
  FOR statement IN
    SELECT format('ALTER %s %s OWNER TO %I',
                  CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                 WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                                 ELSE 'TABLE' END,
                  c.oid::regclass, pg_get_userbyid(n.nspowner))
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY ($schemas$) AND c.relowner <> n.nspowner
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND (c.relkind <> 'S' OR NOT EXISTS (
             SELECT FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    UNION ALL
    SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, pg_get_userbyid(n.nspowner))
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = ANY ($schemas$) AND p.proowner <> n.nspowner
    UNION ALL
    SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                  t.oid::regtype, pg_get_userbyid(n.nspowner))
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = ANY ($schemas$) AND t.typowner <> n.nspowner
       AND t.typtype IN ('e', 'd', 'r') AND t.typrelid = 0
  LOOP
    EXECUTE statement;
  END LOOP;
END
$hand_over$;"""


def _create_role(role: str) -> str:
    return (
        "DO $create$ BEGIN"
        f" IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)})"
        f" THEN CREATE ROLE {role}; END IF; END $create$;"
    )


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _array(names: Iterable[str]) -> str:
    return "ARRAY[" + ", ".join(_literal(n) for n in names) + "]::text[]"


def main(argv: list[str]) -> int:
    if argv == ["roles"]:
        from deploy.local.local_secrets import load

        sys.stdout.write(roles_sql(load()))
        return 0
    if argv == ["databases"]:
        print(" ".join(DATABASES))
        return 0
    if len(argv) == 2 and argv[0] == "database":
        sys.stdout.write(database_sql(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
