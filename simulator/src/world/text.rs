//! Word lists the seeded world draws its people and its texts from.

use rand::Rng;
use rand::seq::IndexedRandom;

const FIRST_NAMES: &[&str] = &[
    "John", "Maria", "Aisha", "Chen", "Lucas", "Sofia", "Omar", "Emma", "Kenji", "Priya", "Noah",
    "Fatima", "Liam", "Olga", "Mateo", "Zoe", "Ivan", "Amara", "Ethan", "Yuki", "Hannah", "Diego",
    "Leila", "Tom",
];

const LAST_NAMES: &[&str] = &[
    "Smith", "Garcia", "Khan", "Wang", "Martin", "Rossi", "Haddad", "Brown", "Sato", "Patel",
    "Miller", "Ali", "Murphy", "Ivanova", "Lopez", "Clark", "Petrov", "Okafor", "Nguyen", "Tanaka",
    "Schmidt", "Silva", "Rahimi", "Baker",
];

const EMAIL_DOMAINS: &[&str] = &["gmail.com", "outlook.com", "proton.me", "icloud.com"];

const POST_OPENERS: &[&str] = &[
    "Just in:",
    "Big news!",
    "Weekend plans?",
    "Behind the scenes:",
    "Customer story:",
    "New arrival:",
    "Tip of the day:",
    "Save the date:",
];

const POST_TOPICS: &[&str] = &[
    "our lightweight trail tent is back in stock",
    "meet the team that tests every backpack on the Pacific Crest Trail",
    "spring sale starts Friday with 20% off all rain jackets",
    "how to pick the right sleeping bag for cold nights",
    "our repair program has fixed 10,000 jackets this year",
    "the new recycled fleece collection",
    "free trail maps with every order this week",
    "join our community clean-up hike on Sunday",
    "five things to pack for your first overnight hike",
    "we are opening a new store downtown",
];

const COMMENTS: &[&str] = &[
    "Love this!",
    "When does the sale start?",
    "Is this available in size XL?",
    "My order still hasn't arrived, can someone help?",
    "Great quality, bought two already.",
    "Do you ship to Canada?",
    "The zipper on mine broke after a week :(",
    "Amazing photos!",
    "How heavy is the tent exactly?",
    "Can I return an item bought online in the store?",
    "Best customer service ever, thank you!",
    "Any discount for students?",
    "Is the fleece machine washable?",
    "I've been waiting for this restock for months",
    "What colours does it come in?",
    "Still no reply to my email from last week...",
    "Where is the new store?",
    "Count me in for Sunday!",
    "Does the repair program cover older jackets?",
    "This is exactly what I needed for my trip",
];

const REPLIES: &[&str] = &[
    "Same question here!",
    "Agreed, it's great.",
    "I had the same problem, support fixed it quickly.",
    "Following for the answer.",
    "Mine arrived in three days.",
    "They do, I returned one last month.",
    "Thanks for asking this!",
    "+1",
];

const CUSTOMER_MESSAGES: &[&str] = &[
    "Hi, I have a question about my order.",
    "Can you tell me when the tent will be back in stock?",
    "My package says delivered but I can't find it.",
    "Do you offer gift cards?",
    "I'd like to exchange a jacket for a bigger size.",
    "Is the downtown store open on Sundays?",
    "Thanks for the quick help yesterday!",
    "The discount code from your post doesn't work.",
];

const OUR_MESSAGES: &[&str] = &[
    "Hi! Happy to help. Could you send us your order number?",
    "Thanks for reaching out, we're looking into it.",
    "Yes, it should be back next week.",
    "Sorry about that, we've sent you a new code.",
    "You're welcome, enjoy the trail!",
];

/// A person's display name.
pub(super) fn person_name(rng: &mut impl Rng) -> (&'static str, &'static str) {
    (pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES))
}

/// An email-like address for a person (Bluesky authors come back like this).
pub(super) fn email(rng: &mut impl Rng, first: &str, last: &str) -> String {
    format!(
        "{}.{}@{}",
        first.to_lowercase(),
        last.to_lowercase(),
        pick(rng, EMAIL_DOMAINS)
    )
}

pub(super) fn post_text(rng: &mut impl Rng) -> String {
    format!("{} {}", pick(rng, POST_OPENERS), pick(rng, POST_TOPICS))
}

/// The text of a top-level comment.
pub(crate) fn comment_text(rng: &mut impl Rng) -> String {
    pick(rng, COMMENTS).to_owned()
}

/// The text of a reply written by a customer.
pub(crate) fn reply_text(rng: &mut impl Rng) -> String {
    pick(rng, REPLIES).to_owned()
}

/// A message a customer sends us.
pub(crate) fn customer_message(rng: &mut impl Rng) -> String {
    pick(rng, CUSTOMER_MESSAGES).to_owned()
}

/// A message we send a customer.
pub(super) fn our_message(rng: &mut impl Rng) -> String {
    pick(rng, OUR_MESSAGES).to_owned()
}

fn pick(rng: &mut impl Rng, list: &[&'static str]) -> &'static str {
    list.choose(rng).copied().unwrap_or_default()
}
