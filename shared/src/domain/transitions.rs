//! The one place where a mention's state transitions are checked.
//!
//! A mention starts without a state (new, written `new` in messages) and moves on through
//! [`MentionEvent`]s. Every writer (the API's assign and reply routes, the replier) asks
//! [`next_state`] first and turns an [`IllegalTransition`] into a 409 or a permanent failure.
//!
//! | event \ from   | new        | assignment | reply_attempt | provider_error | replied  |
//! |----------------|------------|------------|---------------|----------------|----------|
//! | assign         | assignment | assignment | –             | assignment     | –        |
//! | unassign       | new        | new        | –             | provider_error | –        |
//! | request reply  | reply_attempt | reply_attempt | –        | reply_attempt  | –        |
//! | reply sent     | –          | –          | replied       | replied        | replied  |
//! | reply rejected | –          | –          | provider_error| provider_error | –        |
//!
//! A reply in flight or sent freezes the assignment: who answered stays on record. A reply
//! found sent after a provider error (reconciliation) still counts as sent.

use super::MentionState;
use std::fmt;

/// Something that happens to a mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MentionEvent {
    /// An agent is assigned (or the mention is reassigned).
    Assign,
    /// The assignee is removed.
    Unassign,
    /// A reply is requested.
    RequestReply,
    /// The provider has the reply.
    ReplySent,
    /// The provider definitely refused the reply.
    ReplyRejected,
}

impl MentionEvent {
    /// A verb for messages (`cannot assign …`).
    pub fn verb(self) -> &'static str {
        match self {
            MentionEvent::Assign => "assign",
            MentionEvent::Unassign => "unassign",
            MentionEvent::RequestReply => "request a reply to",
            MentionEvent::ReplySent => "record a sent reply for",
            MentionEvent::ReplyRejected => "record a rejected reply for",
        }
    }

    /// The state the event aims at (for messages).
    fn target(self, from: Option<MentionState>) -> Option<MentionState> {
        match self {
            MentionEvent::Assign => Some(MentionState::Assignment),
            MentionEvent::Unassign => from.filter(|s| *s == MentionState::ProviderError),
            MentionEvent::RequestReply => Some(MentionState::ReplyAttempt),
            MentionEvent::ReplySent => Some(MentionState::Replied),
            MentionEvent::ReplyRejected => Some(MentionState::ProviderError),
        }
    }
}

/// A transition the rules do not allow; its message names both states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a mention in state {}: {} → {} is not allowed", .event.verb(), state_name(*.from), state_name(*.from), state_name(*.to))]
pub struct IllegalTransition {
    /// What was attempted.
    pub event: MentionEvent,
    /// The mention's current state.
    pub from: Option<MentionState>,
    /// The state the event would have led to.
    pub to: Option<MentionState>,
}

/// The spelling of a state in messages: its wire name, or `new` for none.
pub fn state_name(state: Option<MentionState>) -> &'static str {
    state.map_or("new", MentionState::as_str)
}

/// The state after `event`, or why the event is not allowed in state `from`.
pub fn next_state(
    from: Option<MentionState>,
    event: MentionEvent,
) -> Result<Option<MentionState>, IllegalTransition> {
    use MentionEvent as E;
    use MentionState as S;
    let next = match (event, from) {
        (E::Assign, None | Some(S::Assignment | S::ProviderError)) => Some(Some(S::Assignment)),
        (E::Unassign, None | Some(S::Assignment)) => Some(None),
        (E::Unassign, Some(S::ProviderError)) => Some(Some(S::ProviderError)),
        (E::RequestReply, None | Some(S::Assignment | S::ProviderError)) => {
            Some(Some(S::ReplyAttempt))
        }
        (E::ReplySent, Some(S::ReplyAttempt | S::ProviderError | S::Replied)) => {
            Some(Some(S::Replied))
        }
        (E::ReplyRejected, Some(S::ReplyAttempt | S::ProviderError)) => {
            Some(Some(S::ProviderError))
        }
        _ => None,
    };
    next.ok_or(IllegalTransition {
        event,
        from,
        to: event.target(from),
    })
}

impl fmt::Display for MentionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MentionEvent as E;
    use MentionState as S;

    #[test]
    fn a_new_mention_can_be_assigned_unassigned_and_reassigned() {
        let assigned = next_state(None, E::Assign).expect("assign new");
        assert_eq!(assigned, Some(S::Assignment));
        assert_eq!(next_state(assigned, E::Unassign), Ok(None));
        assert_eq!(next_state(assigned, E::Assign), Ok(Some(S::Assignment)));
    }

    #[test]
    fn a_replied_mention_cannot_be_reassigned_and_the_message_names_both_states() {
        let err = next_state(Some(S::Replied), E::Assign).expect_err("frozen");
        assert_eq!(
            err.to_string(),
            "cannot assign a mention in state replied: replied → assignment is not allowed"
        );
    }

    #[test]
    fn a_reply_in_flight_blocks_assignment_changes_and_a_second_reply() {
        for event in [E::Assign, E::Unassign, E::RequestReply] {
            assert!(next_state(Some(S::ReplyAttempt), event).is_err(), "{event}");
        }
    }

    #[test]
    fn reply_outcomes_only_follow_a_reply_attempt() {
        assert_eq!(
            next_state(Some(S::ReplyAttempt), E::ReplySent),
            Ok(Some(S::Replied))
        );
        assert_eq!(
            next_state(Some(S::ReplyAttempt), E::ReplyRejected),
            Ok(Some(S::ProviderError))
        );
        assert!(next_state(None, E::ReplySent).is_err());
        assert!(next_state(Some(S::Assignment), E::ReplyRejected).is_err());
    }
}
