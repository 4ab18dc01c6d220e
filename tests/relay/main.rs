//! The outbox relay against real PostgreSQL and tansu, running as the
//! least-privilege role of deploy/sql/roles.sql: order, crashes, two relays,
//! idle WAL, housekeeping, poison rows, broker outages, replay.

mod crashes;
mod harness;
mod housekeeping;
mod outage;
mod poison;
mod replay;
mod streaming;
