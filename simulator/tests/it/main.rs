//! Integration tests: real HTTP against simulators started in-process on port 0 (and the
//! `ayrshare-sim` binary in `cli`).

mod auth_and_limits;
mod cli;
mod comments;
mod control;
mod faults;
mod history;
mod messages;
mod reply;
mod support;
