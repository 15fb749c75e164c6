"""`schema --format mermaid`: the tables, their columns and keys, and the foreign keys as
relationships with cardinality, read from a real database."""
from __future__ import annotations

import re

from tests.conftest import ROOT, run_cli


def diagram(database: str, *args) -> str:
    result = run_cli("schema", "--database-url", database, "--format", "mermaid", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def entity(text: str, name: str) -> list[str]:
    match = re.search(rf"^    {re.escape(name)} \{{\n(.*?)^    \}}$", text, re.MULTILINE | re.DOTALL)
    assert match, f"no entity {name} in:\n{text}"
    return [line.strip() for line in match.group(1).splitlines()]


def test_the_seed_schema_as_an_er_diagram(database):
    assert run_cli("up", "--dir", ROOT / "migrations", "--database-url", database).exit_code == 0
    text = diagram(database)
    assert text.startswith("erDiagram\n")
    assert sorted(re.findall(r"^    (\w+) \{$", text, re.MULTILINE)) == [
        "api_keys", "billing_info", "usage_tracking", "user_preferences", "users", "webhook_deliveries", "webhooks"]
    assert "schema_migrations" not in text  # the tracking table is left out, as in `schema`
    assert entity(text, "users")[:2] == ["uuid id PK", "text email"]
    assert "timestamptz created_at" in entity(text, "users")
    assert "uuid user_id FK, UK" in entity(text, "billing_info")  # one billing row per user
    assert "uuid user_id PK, FK" in entity(text, "user_preferences")
    assert "text[] scopes" in entity(text, "api_keys")
    relationships = [line.strip() for line in text.splitlines() if "--" in line]
    assert 'users ||--o{ api_keys : "user_id"' in relationships
    assert 'users ||--o| billing_info : "user_id"' in relationships  # unique in the child: zero or one
    assert 'api_keys |o--o{ usage_tracking : "api_key_id"' in relationships  # nullable: zero or one parent
    assert len(relationships) == 7


def test_schemas_odd_names_composite_keys_and_types(database, db):
    db.execute("""
        create schema billing;
        create table billing.invoices (id bigint generated always as identity primary key,
                                       amount numeric(10,2) not null, "Due Date" timestamp);
        create table "Line Items" (invoice_id bigint not null, line int not null, price double precision,
                                   primary key (invoice_id, line),
                                   foreign key (invoice_id) references billing.invoices (id));
        create table notes (invoice_id bigint, line int, body varchar(80),
                            foreign key (invoice_id, line) references "Line Items" (invoice_id, line));
    """)
    text = diagram(database)
    assert entity(text, '"billing.invoices"') == ["bigint id PK", "numeric(10_2) amount", "timestamp Due_Date"]
    assert entity(text, '"Line Items"') == ["bigint invoice_id PK, FK", "integer line PK", "float8 price"]
    assert "varchar(80) body" in entity(text, "notes")
    relationships = [line.strip() for line in text.splitlines() if "--" in line]
    assert '"billing.invoices" ||--o{ "Line Items" : "invoice_id"' in relationships
    assert '"Line Items" |o--o{ notes : "invoice_id, line"' in relationships


def test_the_diagram_can_be_written_to_a_file(database, tmp_path):
    assert run_cli("up", "--dir", ROOT / "migrations", "--database-url", database).exit_code == 0
    output = tmp_path / "er.mmd"
    result = run_cli("schema", "--database-url", database, "--format", "mermaid", "--output", output)
    assert result.exit_code == 0
    assert result.stdout.startswith("wrote an ER diagram of the schema of ")
    assert output.read_text() == diagram(database)
