-- Least-privilege roles for Sluice. Run once per database as an administrator:
--   psql "$ADMIN_URL" -f deploy/sql/roles.sql
-- then give the roles passwords (ALTER ROLE sluice_command PASSWORD '...').
--
-- sluice_command: the command API. Owns the write schema `cms` and nothing
--   else; its migrations create the CMS tables and the outbox there.
-- sluice_relay: the outbox relay. REPLICATION for its slot; reads the outbox
--   (SELECT) and deletes the rows the broker acknowledged (DELETE), nothing else.
do $$
begin
  if not exists (select from pg_roles where rolname = 'sluice_command') then
    create role sluice_command login;
  end if;
  if not exists (select from pg_roles where rolname = 'sluice_relay') then
    create role sluice_relay login replication;
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
