//! Identifier formats: Ayrshare ids and each network's own id shapes.
//!
//! Every id is derived from a number `n` that the caller guarantees unique (the seeded world
//! numbers its objects in order; objects created at run time take numbers from
//! [`RUNTIME_BASE`] upwards and keep counting across resets, so an id is never reused).
//! Numeric networks get numbers of the usual length (X: 19 digits, Instagram: 17, …); the
//! others get their recognisable shapes (`urn:li:…`, `at://did:plc:…`, YouTube's `Ugz…`).

use crate::platform::Platform;

/// First number handed out at run time; seeded numbers stay below it.
pub(crate) const RUNTIME_BASE: u64 = 1_000_000_000_000;

/// Our own page / account number on every network (customers start at 1).
pub(crate) const OUR_ACCOUNT_N: u64 = 0;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE32_SORT: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// SplitMix64's finaliser: a bijection on `u64`, so distinct inputs give distinct outputs.
pub(crate) fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn encode(alphabet: &[u8], mut x: u128, len: usize) -> String {
    let base = alphabet.len() as u128;
    let mut out = vec![0u8; len];
    for slot in out.iter_mut().rev() {
        *slot = alphabet[(x % base) as usize];
        x /= base;
    }
    out.into_iter().map(char::from).collect()
}

fn wide(n: u64) -> u128 {
    (u128::from(mix(n)) << 64) | u128::from(mix(n ^ 0x5DEE_CE66_D1CE_4E5B))
}

fn base62(n: u64, len: usize) -> String {
    encode(BASE62, wide(n), len)
}

/// A 20-character Ayrshare id (post or comment), like `rhn6u7wwz2WxGv6MZGK9`.
pub(crate) fn ayrshare_id(n: u64) -> String {
    base62(n, 20)
}

/// Bluesky record keys ("TIDs") are 13 sortable base32 characters.
fn bluesky_tid(n: u64) -> String {
    encode(BASE32_SORT, u128::from(0x0180_0000_0000_0000 + n), 13)
}

/// Our Facebook page id (the prefix of its post ids).
const FACEBOOK_PAGE: &str = "104923907983682";

/// The id of an account (a customer, or ours with [`OUR_ACCOUNT_N`]) on `platform`.
pub(crate) fn account_id(platform: Platform, n: u64) -> String {
    match platform {
        Platform::Facebook if n == OUR_ACCOUNT_N => FACEBOOK_PAGE.to_owned(),
        Platform::Facebook => (7_101_149_700_000_000 + n).to_string(),
        Platform::Instagram => (17_841_400_000_000_000 + n).to_string(),
        Platform::Threads => (25_132_600_000_000_000 + n).to_string(),
        Platform::Tiktok => (6_812_000_000_000_000_000 + n).to_string(),
        Platform::Twitter => (1_300_000_000 + n).to_string(),
        Platform::Linkedin => format!("urn:li:person:{}", base62(n, 10)),
        Platform::Youtube => format!("UC{}", base62(n, 22)),
        Platform::Bluesky => format!("did:plc:{}", encode(BASE32_SORT, wide(n), 24)),
        _ => (900_000_000 + n).to_string(),
    }
}

pub(crate) fn post_social_id(platform: Platform, n: u64) -> String {
    match platform {
        Platform::Twitter => (1_850_000_000_000_000_000 + n).to_string(),
        Platform::Facebook => format!("{FACEBOOK_PAGE}_{}", 100_000_000_000_000 + n),
        Platform::Instagram => (18_000_000_000_000_000 + n).to_string(),
        Platform::Threads => (17_800_000_000_000_000 + n).to_string(),
        Platform::Tiktok => (7_300_000_000_000_000_000 + n).to_string(),
        Platform::Linkedin => format!("urn:li:share:{}", 7_200_000_000_000_000_000 + n),
        Platform::Youtube => base62(n, 11),
        Platform::Bluesky => format!(
            "at://{}/app.bsky.feed.post/{}",
            account_id(Platform::Bluesky, OUR_ACCOUNT_N),
            bluesky_tid(n)
        ),
        _ => (10_000_000_000_000 + n).to_string(),
    }
}

/// The public URL of a post.
pub(crate) fn post_url(platform: Platform, social_id: &str, n: u64) -> String {
    match platform {
        Platform::Twitter => format!("https://x.com/AcmeOutdoors/status/{social_id}"),
        Platform::Facebook => format!("https://www.facebook.com/{social_id}"),
        Platform::Instagram => format!("https://www.instagram.com/p/{}/", base62(n, 11)),
        Platform::Threads => format!(
            "https://www.threads.net/@acme_outdoors/post/{}",
            base62(n, 11)
        ),
        Platform::Tiktok => format!("https://www.tiktok.com/@acmeoutdoors/video/{social_id}"),
        Platform::Linkedin => format!("https://www.linkedin.com/feed/update/{social_id}"),
        Platform::Youtube => format!("https://www.youtube.com/watch?v={social_id}"),
        Platform::Bluesky => format!(
            "https://bsky.app/profile/acme-outdoors.bsky.social/post/{}",
            bluesky_tid(n)
        ),
        other => format!("https://{other}.example/acme/{social_id}"),
    }
}

/// The Social Comment ID of a comment on the post `post_social_id`, written by `author_id`.
pub(crate) fn comment_social_id(
    platform: Platform,
    n: u64,
    post_social_id: &str,
    author_id: &str,
) -> String {
    match platform {
        Platform::Twitter => (1_860_000_000_000_000_000 + n).to_string(),
        Platform::Facebook => {
            let post_part = post_social_id.rsplit('_').next().unwrap_or(post_social_id);
            format!("{post_part}_{}", 1_000_000_000_000_000 + n)
        }
        Platform::Instagram => (17_900_000_000_000_000 + n).to_string(),
        Platform::Threads => (17_850_000_000_000_000 + n).to_string(),
        Platform::Tiktok => (7_400_000_000_000_000_000 + n).to_string(),
        Platform::Linkedin => {
            let activity = post_social_id.rsplit(':').next().unwrap_or(post_social_id);
            format!(
                "urn:li:comment:(urn:li:activity:{activity},{})",
                7_250_000_000_000_000_000 + n
            )
        }
        Platform::Youtube => format!("Ugz{}4AaABAg", base62(n, 19)),
        Platform::Bluesky => format!("at://{author_id}/app.bsky.feed.post/{}", bluesky_tid(n)),
        _ => (20_000_000_000_000 + n).to_string(),
    }
}

/// The public profile page of our account (`id`, `handle`) on `platform`.
pub(crate) fn profile_url(platform: Platform, id: &str, handle: &str) -> String {
    match platform {
        Platform::Twitter => format!("https://x.com/{handle}"),
        Platform::Facebook => format!("https://www.facebook.com/{id}"),
        Platform::Instagram => format!("https://www.instagram.com/{handle}/"),
        Platform::Threads => format!("https://www.threads.net/@{handle}"),
        Platform::Tiktok => format!("https://www.tiktok.com/@{handle}"),
        Platform::Linkedin => format!("https://www.linkedin.com/company/{handle}"),
        Platform::Youtube => format!("https://www.youtube.com/channel/{id}"),
        Platform::Bluesky => "https://bsky.app/profile/acme-outdoors.bsky.social".to_owned(),
        other => format!("https://{other}.example/{handle}"),
    }
}

/// A stable 64-bit digest of a string (an id, a profile key), for values derived from it.
pub(crate) fn digest(s: &str) -> u64 {
    s.bytes()
        .fold(0x243F_6A88_85A3_08D3, |h, b| mix(h ^ u64::from(b)))
}

/// A 40-hex-digit Ayrshare profile `refId`, derived from the world's salt and the profile key
/// (empty for the primary profile).
pub(crate) fn ref_id(salt: u64, profile: &str) -> String {
    let h = digest(profile) ^ salt;
    format!(
        "{:016x}{:016x}{:08x}",
        mix(h),
        mix(h ^ 1),
        mix(h ^ 2) as u32
    )
}

/// A Bluesky record CID (`bafyrei…`, 59 characters), derived from `h`.
pub(crate) fn bluesky_cid(h: u64) -> String {
    format!(
        "bafyrei{}{}",
        encode(BASE32_SORT, wide(h), 26),
        encode(BASE32_SORT, wide(h ^ 1), 26)
    )
}

/// The id of a direct message.
pub(crate) fn message_id(platform: Platform, n: u64) -> String {
    match platform {
        Platform::Twitter => (1_870_000_000_000_000_000 + n).to_string(),
        Platform::Instagram => format!("aWdfZAG1faXRlbToxOklH{}", base62(n, 24)),
        _ => format!("m_{}", base62(n, 20)),
    }
}

/// The id of a direct-message conversation between a customer and us.
pub(crate) fn conversation_id(platform: Platform, n: u64, customer_id: &str) -> String {
    match platform {
        Platform::Twitter => format!(
            "{customer_id}-{}",
            account_id(Platform::Twitter, OUR_ACCOUNT_N)
        ),
        Platform::Instagram => format!("aWdfZAG06{}", base62(n, 30)),
        _ => format!("t_{}", 10_161_117_000_000_000 + n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_networks_shapes() {
        assert_eq!(ayrshare_id(7).len(), 20);
        assert_ne!(ayrshare_id(7), ayrshare_id(8));
        assert_eq!(post_social_id(Platform::Twitter, 5).len(), 19);
        assert_eq!(post_social_id(Platform::Instagram, 5).len(), 17);
        assert_eq!(post_social_id(Platform::Youtube, 5).len(), 11);
        assert!(post_social_id(Platform::Bluesky, 5).starts_with("at://did:plc:"));
        let fb_post = post_social_id(Platform::Facebook, 5);
        let fb_comment = comment_social_id(Platform::Facebook, 9, &fb_post, "x");
        assert!(fb_comment.starts_with("100000000000005_"));
        assert_eq!(ref_id(1, "").len(), 40);
        assert_ne!(ref_id(1, ""), ref_id(1, "brand-b"));
        assert_eq!(bluesky_cid(3).len(), 59);
    }
}
