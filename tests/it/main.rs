//! Integration tests against a real PostgreSQL: each test gets its own fresh database on the
//! server named by CLOCKWATCH_TEST_DATABASE_URL (scripts/test starts one when none is reachable).
//! Databases are left behind on failure for debugging; scripts/test removes old ones.

mod support;

mod actors;
mod bench;
mod browser;
mod budget;
mod capture;
mod chain;
mod cli;
mod clients;
mod daemon;
mod escalation;
mod faults;
mod foreign_schema;
mod generated;
mod hostile;
mod install;
mod kimai;
mod linked;
mod log_database;
mod notify;
mod odoo;
mod pooler;
mod privileges;
mod report;
mod retention;
mod schema_fit;
mod serve;
mod shape;
mod single_workspace;
mod tls;
mod workspaces;
