//! The domain vocabulary: platforms, mention states and dispositions, reply and task statuses,
//! roles, typed ids, and the one place where state transitions are checked.
//!
//! The string forms are the seed's (the Node.js predecessor's) values; the database stores them
//! as text with CHECK constraints that list the same values.

mod ids;
mod transitions;
mod values;

pub use ids::{MentionId, PostId, ReplyId, TaskId, TokenId, UserId};
pub use transitions::{IllegalTransition, MentionEvent, next_state, state_name};
pub use values::{
    Disposition, MentionState, MentionType, Platform, ReplyStatus, Role, TaskStatus, UnknownValue,
};
