-- Least-privilege roles for Sluice. Run once per database as an administrator:
--   psql "$ADMIN_URL" -f deploy/sql/roles.sql
-- then give the roles passwords (ALTER ROLE sluice_command PASSWORD '...').
--
-- sluice_command: the command API. Owns the write schema `cms` and nothing
--   else; its migrations create the CMS tables and the outbox there.
-- sluice_relay: the outbox relay. REPLICATION for its slot; reads the outbox
--   (SELECT) and deletes the rows the broker acknowledged (DELETE), nothing else.
-- sluice_projector_pg: the PostgreSQL projector. Owns its read schema
--   `cms_read` (it creates its tables there at start), and `cms_read_next`
--   and `cms_read_old` where `sluice projection rebuild` builds and retires
--   generations, and nothing else: it cannot read the write schema, create
--   schemas or write anywhere else.
do $$
begin
  if not exists (select from pg_roles where rolname = 'sluice_command') then
    create role sluice_command login;
  end if;
  if not exists (select from pg_roles where rolname = 'sluice_relay') then
    create role sluice_relay login replication;
  end if;
  if not exists (select from pg_roles where rolname = 'sluice_projector_pg') then
    create role sluice_projector_pg login;
  end if;
end
$$;

create schema if not exists cms authorization sluice_command;
grant usage on schema cms to sluice_relay;
-- SELECT and DELETE on the outbox only: the migrations that create the outbox
-- (sluice_outbox::ensure_table, run as sluice_command) grant them to
-- sluice_relay when this role exists. For an outbox made another way:
--   grant select, delete on cms.outbox to sluice_relay;

-- The relay keeps its own tables (slot state, relayed rows kept for a retention)
-- in a schema it owns.
create schema if not exists sluice_relay authorization sluice_relay;

-- The PostgreSQL read model. `sluice projection rebuild` (run as
-- sluice_projector_pg) builds the next generation in cms_read_next, then moves
-- the tables of cms_read to cms_read_old and those of cms_read_next to
-- cms_read in one transaction, and empties cms_read_old. Grant readers USAGE
-- on cms_read; their table grants are copied to each new generation. A read
-- model in another schema S needs S_next and S_old created the same way.
create schema if not exists cms_read authorization sluice_projector_pg;
create schema if not exists cms_read_next authorization sluice_projector_pg;
create schema if not exists cms_read_old authorization sluice_projector_pg;

-- The publication the relay reads. CREATE PUBLICATION needs CREATE on the
-- database and ownership of the tables, which neither role has: the
-- administrator makes it once the outbox exists. Run this file again after the
-- command API's first migration (it is idempotent), or run the statement below.
do $$
begin
  if to_regclass('cms.outbox') is not null
     and not exists (select from pg_publication where pubname = 'sluice_outbox') then
    create publication sluice_outbox for table cms.outbox with (publish = 'insert');
  end if;
end
$$;
