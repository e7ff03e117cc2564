//! The domain vocabulary: platforms, mention states and dispositions, reply and task statuses,
//! roles, typed ids, the one place where state transitions are checked, and saturating
//! instant arithmetic.
//!
//! The string forms are the seed's (the Node.js predecessor's) values; the database stores them
//! as text with CHECK constraints that list the same values.

mod ids;
mod time;
mod transitions;
mod values;

pub use ids::{BrandId, MentionId, PostId, ReplyId, TaskId, TokenId, UserId};
pub use time::saturating_add;
pub use transitions::{IllegalTransition, MentionEvent, next_state, state_name};
pub use values::{
    Disposition, JobKind, MentionState, MentionType, Platform, ReplyStatus, Role, TaskStatus,
    UnknownValue,
};
