"""Reading a live database's schema from pg_catalog into a Snapshot.

Needs a connection (psycopg, db.py); diff and the text forms never import it.
"""
from __future__ import annotations

from typing import Any, Mapping, cast

import psycopg

from sqlmigrate import db
from sqlmigrate.schema.records import Key, Snapshot
from sqlmigrate.schema.text import qualify, sequence_text

_USER_SCHEMA = "n.nspname <> 'information_schema' and n.nspname !~ '^pg_'"

# Output of the deparsing functions depends on these: fixed, so that two
# sessions with different settings read the same snapshot.
_SESSION = (
    "set local search_path = public; set local timezone = 'UTC'; set local datestyle = 'ISO, MDY'; "
    "set local intervalstyle = 'postgres'; set local extra_float_digits = 1; set local bytea_output = 'hex'; "
    "set local quote_all_identifiers = off"
)


def _not_extension_member(catalog: str, oid: str) -> str:
    """SQL true unless the object is an extension's member: the rows _Reader._skip drops,
    left out by the server before it deparses them (extensions in public bring hundreds)."""
    return (f"not exists (select 1 from pg_depend x where x.classid = '{catalog}'::regclass "
            f"and x.objid = {oid} and x.deptype = 'e' and x.objid >= 16384)")


def snapshot(conn: psycopg.Connection, *, exclude: tuple[str, str] | None = None,
             detailed: bool = False) -> Snapshot:
    """Read the schema of the connected database from pg_catalog.

    `exclude` is (schema, table) of the tracking table, left out with
    everything on it. Objects that belong to an extension are left out (the
    extension stands for them). `detailed` also reads what the DDL generator
    needs (Snapshot.dependencies and .facts), which a comparison alone does
    not. Runs in one read-only transaction, never writes. Raises
    DatabaseUnavailable.
    """
    try:
        with conn.transaction():
            conn.execute("set transaction isolation level repeatable read, read only")
            conn.execute(_SESSION)
            with conn.pipeline():
                return _PipelinedReader(conn, exclude, detailed).read()
    except psycopg.Error as exc:
        raise db.database_error(exc, f"reading the schema of {conn.info.dbname}") from exc


class _Reader:
    def __init__(self, conn: psycopg.Connection, exclude: tuple[str, str] | None, detailed: bool = False) -> None:
        self.conn = conn
        self.version = conn.info.server_version
        self.detailed = detailed
        self.objects: dict[Key, dict[str, str]] = {}
        self.facts: dict[Key, dict[str, str]] = {}
        self.oids: dict[tuple[str, int, int], Key] = {}  # (catalog, oid, subid) -> key, for comments
        # FirstNormalObjectId: what initdb made is in pg_catalog and left out anyway
        rows = self._rows("select classid::regclass::text, objid, refobjid from pg_depend "
                          "where deptype = 'e' and objid >= 16384")
        self.extension_members = {(r[0], r[1]): r[2] for r in rows}  # -> the extension's oid
        self.excluded = 0
        if exclude is not None:
            row = self._rows(
                "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relname = %s", exclude)
            self.excluded = row[0][0] if row else 0

    def _rows(self, query: str, params: Any = None) -> list[tuple]:
        return self.conn.execute(query, params).fetchall()

    def _add(self, key: Key, attrs: Mapping[str, str | None], catalog: str, oid: int, subid: int = 0) -> None:
        self.objects[key] = {k: v for k, v in attrs.items() if v is not None}
        self.oids[(catalog, oid, subid)] = key

    def _skip(self, catalog: str, oid: int) -> bool:
        return (catalog, oid) in self.extension_members

    def _fact(self, key: Key, name: str, value: str | None) -> None:
        if value is not None:
            self.facts.setdefault(key, {})[name] = value

    def read(self) -> Snapshot:
        self._schemas()
        self._extensions()
        relations = self._relations()
        self._columns(relations)
        self._sequences(relations)
        self._constraints(relations)
        self._indexes(relations)
        self._triggers(relations)
        self._policies(relations)
        self._rules(relations)
        self._types()
        self._domain_constraints()
        self._functions()
        self._statistics()
        self._comments()
        if not self.detailed:
            return Snapshot({k: dict(v) for k, v in self.objects.items()})
        return Snapshot({k: dict(v) for k, v in self.objects.items()}, self._dependencies(),
                        {k: dict(v) for k, v in self.facts.items() if k in self.objects})

    def _schemas(self) -> None:
        for oid, name in self._rows(f"select n.oid, n.nspname from pg_namespace n where {_USER_SCHEMA}"):
            if not self._skip("pg_namespace", oid):
                self._add(Key("schema", "", name), {}, "pg_namespace", oid)

    def _extensions(self) -> None:
        rows = self._rows("select e.oid, e.extname, e.extversion, n.nspname from pg_extension e "
                          "join pg_namespace n on n.oid = e.extnamespace")
        for oid, name, version, schema in rows:
            self._add(Key("extension", "", name), {"version": version, "schema": schema}, "pg_extension", oid)

    def _relations(self) -> dict[int, Key]:
        """Tables, views and materialized views: oid -> key, for their members."""
        rows = self._rows(f"""
            select c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity,
                   c.relforcerowsecurity, c.reloptions, c.relispartition,
                   case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end,
                   case when c.relispartition then pg_get_expr(c.relpartbound, c.oid) end,
                   (select string_agg(i.inhparent::regclass::text, ', ' order by i.inhseqno)
                      from pg_inherits i where i.inhrelid = c.oid),
                   case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid, true) end,
                   am.amname, ts.spcname, c.relreplident, fs.srvname, ft.ftoptions, c.relispopulated,
                   (select ic.relname from pg_index i join pg_class ic on ic.oid = i.indexrelid
                     where i.indrelid = c.oid and i.indisreplident)
            from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            left join pg_am am on am.oid = c.relam
            left join pg_tablespace ts on ts.oid = c.reltablespace
            left join pg_foreign_table ft on ft.ftrelid = c.oid
            left join pg_foreign_server fs on fs.oid = ft.ftserver
            where c.relkind in ('r', 'p', 'f', 'v', 'm') and {_USER_SCHEMA}""")
        relations: dict[int, Key] = {}
        for (oid, schema, name, relkind, persistence, rls, force_rls, options, is_partition, partkey, bound,
             parents, viewdef, am, tablespace, replident, server, foreign_options, populated, replident_index) in rows:
            if oid == self.excluded or self._skip("pg_class", oid):
                continue
            kind = {"v": "view", "m": "materialized view"}.get(relkind, "table")
            attrs: dict[str, str | None] = {}
            if persistence == "u":
                attrs["persistence"] = "unlogged"
            if partkey:
                attrs["partition by"] = partkey
            if is_partition:
                attrs["partition of"] = f"{parents} {bound}"
            elif parents:
                attrs["inherits"] = parents
            if server:
                attrs["foreign server"] = server
                attrs["foreign options"] = ", ".join(foreign_options or []) or None
            if kind != "table":
                attrs["definition"] = (viewdef or "").strip()
            if options:
                attrs["options"] = ", ".join(sorted(options))
            if am and am != "heap":
                attrs["access method"] = am
            if tablespace:
                attrs["tablespace"] = tablespace
            if rls:
                attrs["row level security"] = "enabled, forced" if force_rls else "enabled"
            if relkind in ("r", "p") and replident != "d":
                attrs["replica identity"] = {"n": "nothing", "f": "full", "i": "index"}.get(replident, replident)
            key = Key(kind, schema, name)
            self._add(key, attrs, "pg_class", oid)
            relations[oid] = key
            self._fact(key, "replica identity index", replident_index if replident == "i" else None)
            self._fact(key, "populated", None if populated or relkind != "m" else "no")
        return relations

    def _columns(self, relations: dict[int, Key]) -> None:
        rows = self._rows("""
            select a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   {not_null_name}, {not_null_validated},
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                   case when a.attcollation <> t.typcollation then
                        quote_ident(cn.nspname) || '.' || quote_ident(co.collname) end,
                   a.attinhcount > 0, t.typcategory
            from pg_attribute a
            join pg_class c on c.oid = a.attrelid
            join pg_type t on t.oid = a.atttypid
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            left join pg_collation co on co.oid = a.attcollation
            left join pg_namespace cn on cn.oid = co.collnamespace
            where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p', 'f')
              and a.attrelid = any (%s::oid[])
            order by a.attrelid, a.attnum""".format(**self._not_null_constraint()),
                          (list(relations),))
        positions: dict[int, int] = {}
        self.columns: dict[tuple[int, int], Key] = {}
        for (relid, attnum, name, type_, notnull, constraint_name, validated, default, identity, generated, collation,
             inherited, category) in rows:
            table = relations.get(relid)
            if table is None:
                continue
            positions[relid] = positions.get(relid, 0) + 1
            attrs: dict[str, str | None] = {
                "type": type_,
                "nullable": ("not null" if validated else "not null (not valid)") if notnull else "nullable",
                "collation": collation,
                "position": str(positions[relid]),
            }
            if generated in ("s", "v"):  # 'v': virtual generated columns, PostgreSQL 18
                attrs["generated"] = default
                attrs["generated kind"] = "stored" if generated == "s" else "virtual"
            else:
                attrs["default"] = default
            if identity:
                attrs["identity"] = {"a": "always", "d": "by default"}[identity]
            key = Key("column", table.schema, table.name, name, table.kind)
            self._add(key, attrs, "pg_class", relid, attnum)
            self.columns[(relid, attnum)] = key
            self._fact(key, "inherited", "yes" if inherited else None)
            self._fact(key, "type category", category)  # pg_type.typcategory: how a type change converts
            self._fact(key, "not null constraint", constraint_name)

    def _not_null_constraint(self) -> dict[str, str]:
        """The name of the column's NOT NULL constraint and whether it is validated: a catalog
        object of its own since PostgreSQL 18 (named, possibly NOT VALID); before, nullability
        is the column's alone."""
        if self.version < 180000:
            return {"not_null_name": "null::name", "not_null_validated": "true"}
        of_column = "from pg_constraint n where n.conrelid = a.attrelid and n.contype = 'n' and n.conkey[1] = a.attnum"
        return {"not_null_name": f"(select n.conname {of_column})",
                "not_null_validated": f"coalesce((select n.convalidated {of_column}), true)"}

    def _sequences(self, relations: dict[int, Key]) -> None:
        rows = self._rows(f"""
            select c.oid, n.nspname, c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement,
                   s.seqmin, s.seqmax, s.seqcache, s.seqcycle, d.deptype, d.refobjid, d.refobjsubid
            from pg_sequence s
            join pg_class c on c.oid = s.seqrelid
            join pg_namespace n on n.oid = c.relnamespace
            left join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = c.oid
                 and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
            where {_USER_SCHEMA}""")
        for oid, schema, name, type_, start, increment, low, high, cache, cycle, deptype, refobj, refsub in rows:
            if self._skip("pg_class", oid) or (refobj and refobj == self.excluded):
                continue
            attrs = {"type": type_, "start": str(start), "increment": str(increment), "min": str(low),
                     "max": str(high), "cache": str(cache), "cycle": "yes" if cycle else "no"}
            column = self.columns.get((refobj, refsub)) if refobj else None
            if deptype == "i":
                # an identity column's sequence is part of the column: its name is generated
                options = sequence_text(attrs)[len(type_):].strip()
                if options and column is not None:
                    self.objects[column]["identity options"] = options
                continue
            key = Key("sequence", schema, name)
            if deptype == "a" and column is not None:
                attrs["owned by"] = f"{qualify(column.schema, column.name)}.{column.member}"
                self._fact(key, "owner", column.member)  # the column's key, as names: see ddl
                self._fact(key, "owner schema", column.schema)
                self._fact(key, "owner table", column.name)
            self._add(key, attrs, "pg_class", oid)

    def _constraints(self, relations: dict[int, Key]) -> None:
        rows = self._rows("""
            select con.oid, con.conrelid, con.conname, pg_get_constraintdef(con.oid), con.convalidated,
                   con.coninhcount > 0 or con.conparentid <> 0,
                   case when con.contype = 'n' then (select a.attname from pg_attribute a
                        where a.attrelid = con.conrelid and a.attnum = con.conkey[1]) end,
                   con.conislocal
            from pg_constraint con
            where con.conrelid = any (%s::oid[]) and con.contype in ({kinds})""".format(kinds=self._constraint_kinds()),
                          (list(relations),))
        for oid, relid, name, definition, validated, inherited, not_null_column, is_local in rows:
            table = relations.get(relid)
            if table is None:
                continue
            key = Key("constraint", table.schema, table.name, name, table.kind)
            # an inherited NOT NULL also made on the table itself stays when the parent's goes
            local = "yes" if not_null_column is not None and inherited and is_local else None
            self._add(key, {"definition": definition, "also local": local}, "pg_constraint", oid)
            self._fact(key, "inherited", "yes" if inherited else None)
            self._fact(key, "not null column", not_null_column)

    def _constraint_kinds(self) -> str:
        """pg_constraint.contype of a table's constraints: NOT NULL ('n') is one since PostgreSQL 18."""
        return "'c', 'f', 'p', 'u', 'x'" + (", 'n'" if self.version >= 180000 else "")

    def _indexes(self, relations: dict[int, Key]) -> None:
        # an index that implements a primary key, unique or exclusion constraint is that constraint
        rows = self._rows("""
            select ic.oid, i.indrelid, ic.relname, pg_get_indexdef(ic.oid), i.indisvalid,
                   exists (select 1 from pg_inherits h where h.inhrelid = ic.oid)
            from pg_index i join pg_class ic on ic.oid = i.indexrelid
            where i.indrelid = any (%s::oid[])
              and not exists (select 1 from pg_constraint k where k.conrelid = i.indrelid
                              and k.conindid = i.indexrelid and k.contype in ('p', 'u', 'x'))""",
                          (list(relations),))
        for oid, relid, name, definition, valid, inherited in rows:
            table = relations.get(relid)
            if table is None:
                continue
            attrs = {"definition": definition, "valid": None if valid else "no"}
            key = Key("index", table.schema, table.name, name, table.kind)
            self._add(key, attrs, "pg_class", oid)
            self._fact(key, "inherited", "yes" if inherited else None)

    def _triggers(self, relations: dict[int, Key]) -> None:
        cloned = "t.tgparentid <> 0" if self.version >= 130000 else "false"  # a partition's copy of its parent's
        rows = self._rows(f"select t.oid, t.tgrelid, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled, {cloned} "
                          "from pg_trigger t where not t.tgisinternal and t.tgrelid = any (%s::oid[])",
                          (list(relations),))
        states = {"O": None, "D": "disabled", "R": "replica", "A": "always"}
        for oid, relid, name, definition, enabled, inherited in rows:
            table = relations.get(relid)
            if table is None:
                continue
            attrs = {"definition": definition, "enabled": states.get(enabled, enabled)}
            key = Key("trigger", table.schema, table.name, name, table.kind)
            self._add(key, attrs, "pg_trigger", oid)
            self._fact(key, "inherited", "yes" if inherited else None)

    def _policies(self, relations: dict[int, Key]) -> None:
        rows = self._rows("""
            select p.oid, p.polrelid, p.polname, p.polpermissive, p.polcmd,
                   case when p.polroles = '{0}' then 'public' else
                        (select string_agg(quote_ident(r.rolname), ', ' order by r.rolname)
                           from pg_roles r where r.oid = any (p.polroles)) end,
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
            from pg_policy p where p.polrelid = any (%s::oid[])""", (list(relations),))
        commands = {"r": "select", "a": "insert", "w": "update", "d": "delete", "*": "all"}
        for oid, relid, name, permissive, command, roles, using, check in rows:
            table = relations.get(relid)
            if table is None:
                continue
            attrs = {"as": "permissive" if permissive else "restrictive", "for": commands.get(command, command),
                     "to": roles, "using": using, "with check": check}
            self._add(Key("policy", table.schema, table.name, name, table.kind), attrs, "pg_policy", oid)

    def _rules(self, relations: dict[int, Key]) -> None:
        rows = self._rows("select r.oid, r.ev_class, r.rulename, pg_get_ruledef(r.oid) from pg_rewrite r "
                          "where r.rulename <> '_RETURN' and r.ev_class = any (%s::oid[])", (list(relations),))
        for oid, relid, name, definition in rows:
            table = relations.get(relid)
            if table is None:
                continue
            self._add(Key("rule", table.schema, table.name, name, table.kind), {"definition": definition},
                      "pg_rewrite", oid)

    def _types(self) -> None:
        rows = self._rows(f"""
            select t.oid, n.nspname, t.typname, t.typtype,
                   (select string_agg(quote_literal(e.enumlabel), ', ' order by e.enumsortorder)
                      from pg_enum e where e.enumtypid = t.oid),
                   (select string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                                      || coalesce(' collate ' || quote_ident(co.collname), ''), ', '
                                      order by a.attnum)
                      from pg_attribute a
                      left join pg_collation co on co.oid = a.attcollation
                           and a.attcollation <> (select typcollation from pg_type where oid = a.atttypid)
                      where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped),
                   case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod) end,
                   t.typnotnull, t.typdefault,
                   case when t.typtype = 'd' and t.typcollation <> bt.typcollation then co.collname end,
                   (select format_type(r.rngsubtype, null) from pg_range r where r.rngtypid = t.oid)
            from pg_type t
            join pg_namespace n on n.oid = t.typnamespace
            left join pg_type bt on bt.oid = t.typbasetype
            left join pg_collation co on co.oid = t.typcollation
            left join pg_class rc on rc.oid = t.typrelid
            where {_USER_SCHEMA} and t.typisdefined
              and (t.typtype in ('e', 'd', 'r') or (t.typtype = 'c' and rc.relkind = 'c')
                   or (t.typtype = 'b' and not (t.typelem <> 0 and t.typlen = -1)))
              and {_not_extension_member('pg_type', 't.oid')}""")
        forms = {"e": "enum", "c": "composite", "d": "domain", "r": "range", "b": "base"}
        self.domains: dict[int, Key] = {}
        for oid, schema, name, typtype, labels, attributes, base, notnull, default, collation, subtype in rows:
            if self._skip("pg_type", oid):
                continue
            attrs: dict[str, str | None] = {"form": forms[typtype]}
            if typtype == "e":
                attrs["labels"] = labels or ""
            elif typtype == "c":
                attrs["attributes"] = attributes or ""
            elif typtype == "d":
                attrs.update({"base type": base, "nullable": "not null" if notnull else "nullable",
                              "default": default, "collation": collation})
            elif typtype == "r":
                attrs["subtype"] = subtype
            key = Key("type", schema, name)
            self._add(key, attrs, "pg_type", oid)
            if typtype == "d":
                self.domains[oid] = key

    def _domain_constraints(self) -> None:
        rows = self._rows("select con.oid, con.contypid, con.conname, pg_get_constraintdef(con.oid) "
                          # 'n': PostgreSQL 17+ also records a domain's NOT NULL here,
                          # which the domain's own nullability already says
                          "from pg_constraint con where con.contypid <> 0 and con.contype <> 'n'")
        for oid, typid, name, definition in rows:
            domain = self.domains.get(typid)
            if domain is not None:
                key = Key("constraint", domain.schema, domain.name, name, "type")
                self._add(key, {"definition": definition}, "pg_constraint", oid)

    def _functions(self) -> None:
        sqlbody = "case when p.prosqlbody is not null then pg_get_function_sqlbody(p.oid) end" \
            if self.version >= 140000 else "null"
        rows = self._rows(f"""
            select p.oid, n.nspname, p.proname, oidvectortypes(p.proargtypes), p.prokind,
                   pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), l.lanname,
                   p.provolatile, p.proisstrict, p.prosecdef, p.proleakproof, p.proparallel, p.procost,
                   p.prorows, p.proretset, p.proconfig, p.prosrc, {sqlbody}, p.probin,
                   case when p.prokind = 'a' then (
                       select concat_ws(', ', 'sfunc ' || a.aggtransfn::regproc::text,
                                        'stype ' || format_type(a.aggtranstype, null),
                                        'finalfunc ' || nullif(a.aggfinalfn, 0)::regproc::text,
                                        'combinefunc ' || nullif(a.aggcombinefn, 0)::regproc::text,
                                        'initcond ' || quote_literal(a.agginitval),
                                        'sortop ' || nullif(a.aggsortop, 0)::regoperator::text)
                       from pg_aggregate a where a.aggfnoid = p.oid) end
            from pg_proc p
            join pg_namespace n on n.oid = p.pronamespace
            join pg_language l on l.oid = p.prolang
            where {_USER_SCHEMA}
              -- made with another object (the constructors of a range type): that object stands for it
              and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                              and d.objid = p.oid and d.deptype = 'i')
              and {_not_extension_member('pg_proc', 'p.oid')}""")
        for (oid, schema, name, identity, prokind, arguments, result, language, volatility, strict, definer,
             leakproof, parallel, cost, rows_, retset, configs, source, sql_body, library, aggregate) in rows:
            if self._skip("pg_proc", oid):
                continue
            kind = {"p": "procedure", "a": "aggregate"}.get(prokind, "function")
            attrs: dict[str, str | None] = {
                "arguments": arguments,
                "returns": result,
                "language": language,
            }
            if kind == "function":
                attrs.update({
                    "volatility": {"i": "immutable", "s": "stable", "v": "volatile"}[volatility],
                    "strict": "strict" if strict else "called on null input",
                    "leakproof": "leakproof" if leakproof else "not leakproof",
                    "parallel": {"s": "parallel safe", "r": "parallel restricted",
                                 "u": "parallel unsafe"}[parallel],
                    "window": "yes" if prokind == "w" else None,
                })
            if kind != "aggregate":
                attrs["security"] = "security definer" if definer else "security invoker"
                default_cost = 1 if language in ("c", "internal") else 100
                attrs["cost"] = None if float(cost) == default_cost else f"{float(cost):g}"
                attrs["rows"] = None if not retset or float(rows_) == 1000 else f"{float(rows_):g}"
                # one entry per setting name; their order means nothing to PostgreSQL
                attrs["config"] = "\n".join(sorted(configs)) if configs else None
                attrs["body"] = sql_body if sql_body is not None else source
                attrs["library"] = library
            else:
                attrs["aggregate"] = aggregate
            key = Key(kind, schema, f"{name}({identity})")
            self._add(key, attrs, "pg_proc", oid)
            self._fact(key, "name", name)
            self._fact(key, "sql body", "yes" if sql_body is not None else None)

    def _statistics(self) -> None:
        rows = self._rows(f"""
            select s.oid, n.nspname, s.stxname, pg_get_statisticsobjdef(s.oid)
            from pg_statistic_ext s join pg_namespace n on n.oid = s.stxnamespace
            where {_USER_SCHEMA} and s.stxrelid <> %s""", (self.excluded,))
        for oid, schema, name, definition in rows:
            if not self._skip("pg_statistic_ext", oid):
                self._add(Key("statistics", schema, name), {"definition": definition}, "pg_statistic_ext", oid)

    def _dependencies(self) -> dict[Key, frozenset[Key]]:
        """What each object needs, from pg_depend, as keys of this snapshot.

        Catalog rows that are part of a keyed object stand for it: a view's
        _RETURN rule, a column's default, the index of a primary key, unique or
        exclusion constraint, a table's row type, an array type, a composite
        type's relation; an extension's member stands for its extension. A
        sequence's OWNED BY is left out: the sequence comes before the column
        whose default uses it, and its owner is set after (ddl says so).
        """
        stands_for: dict[tuple[str, int], Key] = {}

        def alias(catalog: str, oid: int, key: Key | None) -> None:
            if key is not None:
                stands_for[(catalog, oid)] = key

        for oid, relid in self._rows("select oid, ev_class from pg_rewrite where rulename = '_RETURN'"):
            alias("pg_rewrite", oid, self.oids.get(("pg_class", relid, 0)))
        for oid, relid, attnum in self._rows("select oid, adrelid, adnum from pg_attrdef"):
            alias("pg_attrdef", oid, self.oids.get(("pg_class", relid, attnum)))
        for oid, index in self._rows("select oid, conindid from pg_constraint "
                                     "where conindid <> 0 and contype in ('p', 'u', 'x')"):
            alias("pg_class", index, self.oids.get(("pg_constraint", oid, 0)))
        types = self._rows("""
            select t.oid, t.typrelid, t.typelem, t.typcategory = 'A',
                   (select r.rngtypid from pg_range r where r.rngmultitypid = t.oid)
            from pg_type t where t.oid >= 16384""")
        for oid, relid, _elem, _is_array, _range in types:
            if relid:
                own = self.oids.get(("pg_type", oid, 0))
                if own is not None:  # a composite type: its relation's columns are its attributes
                    alias("pg_class", relid, own)
                else:
                    alias("pg_type", oid, self.oids.get(("pg_class", relid, 0)))
        for oid, _relid, elem, is_array, range_ in types:
            whole = elem if is_array and elem else range_
            if whole:
                alias("pg_type", oid, self.oids.get(("pg_type", whole, 0)) or stands_for.get(("pg_type", whole)))
        extensions = {oid: key for (catalog, oid, _), key in self.oids.items() if catalog == "pg_extension"}

        def resolve(catalog: str, oid: int, subid: int) -> Key | None:
            key = self.oids.get((catalog, oid, subid))
            if key is None and subid:
                key = self.oids.get((catalog, oid, 0))  # a view's column: the view
            if key is None:
                key = stands_for.get((catalog, oid))
            if key is None and (catalog, oid) in self.extension_members:
                key = extensions.get(self.extension_members[(catalog, oid)])
            return key

        needs: dict[Key, set[Key]] = {}
        rows = self._rows("""
            select classid::regclass::text, objid, objsubid, refclassid::regclass::text, refobjid, refobjsubid,
                   deptype
            from pg_depend where deptype in ('n', 'a') and objid >= 16384""")
        for catalog, oid, subid, ref_catalog, ref_oid, ref_subid, deptype in rows:
            key = resolve(catalog, oid, subid)
            if key is None or (deptype == "a" and key.kind == "sequence"):
                continue
            needed = resolve(ref_catalog, ref_oid, ref_subid)
            if needed is not None and needed != key:
                needs.setdefault(key, set()).add(needed)
        return {key: frozenset(keys) for key, keys in needs.items()}

    def _comments(self) -> None:
        rows = self._rows("select classoid::regclass::text, objoid, objsubid, description from pg_description "
                          "where objoid >= 16384 or classoid = 'pg_namespace'::regclass")
        for catalog, oid, subid, text in rows:
            key = self.oids.get((catalog, oid, subid))
            if key is not None:
                self.objects[key]["comment"] = text



class Rows:
    """The rows the snapshot queries returned: a schema before it is made a Snapshot.

    The reader is a function of these rows (and of the server version and
    what is excluded), so equal Rows make equal snapshots: two states can be
    compared without building either. `snapshot()` builds it when needed.
    """

    def __init__(self, shape: tuple[int, bool, bool], exclude: tuple[str, str] | None,
                 answers: dict[tuple[str, str], list[tuple]], built: Snapshot | None = None) -> None:
        self.shape = shape
        self.exclude = exclude
        self.answers = answers  # (query, repr of its parameters) -> its rows
        self._built = built

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Rows) and (self.shape, self.exclude) == (other.shape, other.exclude)
                and self.answers == other.answers)

    __hash__ = None  # type: ignore[assignment]

    def snapshot(self) -> Snapshot:
        if self._built is None:
            self._built = _Replay(self).read()
        return self._built


def rows(conn: psycopg.Connection, *, exclude: tuple[str, str] | None = None) -> Rows:
    """What snapshot() reads, as Rows, without building the Snapshot when it can:
    the queries are those of the last read of the same shape, sent ahead in
    pipeline mode. Raises DatabaseUnavailable."""
    try:
        with conn.transaction():
            conn.execute("set transaction isolation level repeatable read, read only")
            conn.execute(_SESSION)
            with conn.pipeline():
                return _PipelinedReader(conn, exclude).fetch()
    except psycopg.Error as exc:
        raise db.database_error(exc, f"reading the schema of {conn.info.dbname}") from exc


# The queries of the last read of each shape (server version, detailed, no
# exclusion), each with what its parameters were: none, the tracking table's
# name, the tracking table's oid, or the relations' oids.
_Plan = list[tuple[str, str]]
_UNKNOWN = object()
_QUERIES: dict[tuple[int, bool, bool], _Plan] = {}


class _PipelinedReader(_Reader):
    """A _Reader that sends the queries of the previous read of the same shape
    ahead, in pipeline mode, so that the server runs them while Python reads
    the results of earlier ones; it keeps every answer (Rows).

    All queries run in one repeatable-read, read-only transaction, so when a
    query runs makes no difference to its rows; a query sent ahead and not
    asked for is only wasted work.
    """

    def __init__(self, conn: psycopg.Connection, exclude: tuple[str, str] | None, detailed: bool = False) -> None:
        self.conn = conn
        self.exclude = exclude
        self.shape = (conn.info.server_version, detailed, exclude is None)
        self.plan: _Plan = []
        self.answers: dict[tuple[str, str], list[tuple]] = {}
        self.relation_oids: list[int] | None = None
        self.ahead: dict[tuple[str, str], psycopg.Cursor] = {}
        self._send_ahead("none")
        self._send_ahead("exclude")
        super().__init__(conn, exclude, detailed)
        self._send_ahead("excluded")

    def _params(self, kind: str) -> Any:
        if kind == "exclude":
            return self.exclude
        if kind == "excluded":  # known once _Reader.__init__ has looked it up
            return (self.excluded,) if hasattr(self, "excluded") else _UNKNOWN
        if kind == "relations":
            return (self.relation_oids,) if self.relation_oids is not None else _UNKNOWN
        return None

    def _kind(self, params: Any) -> str | None:
        return next((k for k in ("none", "exclude", "excluded", "relations") if params == self._params(k)), None)

    def _send_ahead(self, kind: str) -> None:
        for query, recorded in _QUERIES.get(self.shape, ()):
            if recorded == kind and (query, kind) not in self.ahead:
                self.ahead[(query, kind)] = self.conn.execute(query, self._params(kind))

    def _rows(self, query: str, params: Any = None) -> list[tuple]:
        kind = self._kind(params)
        cursor = self.ahead.pop((query, kind), None) if kind is not None else None
        answer = cursor.fetchall() if cursor is not None else super()._rows(query, params)
        if kind is not None:
            self.plan.append((query, kind))
        self.answers[(query, repr(params))] = answer
        return answer

    def _relations(self) -> dict[int, Key]:
        relations = super()._relations()
        self.relation_oids = list(relations)
        self._send_ahead("relations")
        return relations

    def read(self) -> Snapshot:
        snapshot = super().read()
        if len(self.plan) == len(self.answers):  # every query's parameters were of a known kind
            _QUERIES[self.shape] = self.plan
        return snapshot

    def fetch(self) -> Rows:
        """Every answer, the Snapshot built only when there was no plan to follow."""
        plan = _QUERIES.get(self.shape)
        if plan is None:
            built = self.read()
            return Rows(self.shape, self.exclude, self.answers, built)
        self._relations()
        for query, kind in plan:
            if (query, repr(self._params(kind))) not in self.answers:
                self._rows(query, self._params(kind))
        return Rows(self.shape, self.exclude, self.answers)


class _Replay(_Reader):
    """The reader run again on the rows it was given, to build their Snapshot."""

    def __init__(self, rows: Rows) -> None:
        self.given = rows
        self.version = rows.shape[0]
        super().__init__(cast(psycopg.Connection, _VersionOnly(rows.shape[0])), rows.exclude)

    def _rows(self, query: str, params: Any = None) -> list[tuple]:
        return self.given.answers[(query, repr(params))]


class _VersionOnly:
    """Stands for the connection in _Replay: the reader asks it for the server version only."""

    def __init__(self, version: int) -> None:
        self.info = self
        self.server_version = version
