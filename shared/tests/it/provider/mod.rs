//! The provider client and its resilience chain against the simulator (in-process, on a free
//! port) and a real PostgreSQL: typed calls, error classes, retries, the distributed circuit
//! breaker and the shared request budget.

mod breaker;
mod budget;
mod client;
mod retry;
mod support;
