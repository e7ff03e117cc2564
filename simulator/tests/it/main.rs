//! Integration tests: real HTTP against simulators started in-process on port 0 (and the
//! `ayrshare-sim` binary in `cli`).

mod auth_and_limits;
mod cli;
mod comments;
mod content_type;
mod control;
mod delete_comment;
mod deliveries;
mod faults;
mod history;
mod messages;
mod post_comment;
mod profiles;
mod reply;
mod support;
mod user;
mod webhooks;
