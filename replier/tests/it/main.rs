//! Integration tests of the `replier` crate: the reply job against the simulator, real
//! PostgreSQL and RabbitMQ, in-process and as the real binaries.

mod brands;
mod budget;
mod end_to_end;
mod protocol;
mod support;
