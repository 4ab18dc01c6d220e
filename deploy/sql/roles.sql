-- Least-privilege roles for Sluice. Run once per database as an administrator:
--   psql "$ADMIN_URL" -f deploy/sql/roles.sql
-- then give the roles passwords (ALTER ROLE sluice_command PASSWORD '...').
--
-- sluice_command: the command API. Owns the write schema `cms` and nothing
--   else; its migrations create the CMS tables and the outbox there.
-- sluice_relay: the outbox relay. REPLICATION for its slot; reads the outbox.
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
alter default privileges for role sluice_command in schema cms grant select on tables to sluice_relay;

-- The relay keeps its own tables (slot state, heartbeat, relayed transactions)
-- in a schema it owns. Note: CREATE PUBLICATION ... FOR TABLE needs ownership
-- of the outbox table; create the publication as sluice_command (or a
-- superuser) when the relay's role does not own the outbox.
create schema if not exists sluice_relay authorization sluice_relay;
