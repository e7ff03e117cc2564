//! Several brands (Ayrshare User Profiles) per installation.
//!
//! - `brands`: a name (unique, case-insensitive), the Ayrshare Profile-Key sealed with
//!   `BRANDS_KEY` (XChaCha20-Poly1305; never stored in clear), a keyed hash of it that makes
//!   two brands with the same Profile-Key impossible, the platforms it watches (`NULL`: every
//!   configured platform) and `disabled_at` (a brand is disabled, never deleted: its history
//!   stays). At most one brand has no Profile-Key: it is the account's primary profile.
//! - The default brand (id `00000000-0000-0000-0000-000000000001`) is created here. It stands
//!   for the profile the environment configures (`SOCIAL_MEDIA_API_PROFILE_KEY`, or none), so
//!   an installation migrated from the single-profile schema keeps every row: its posts,
//!   mentions, tasks, platform status and webhook rows become the default brand's.
//! - `brand_id` on `posts`, `mentions`, `tasks`, `platform_status`, `webhook_registrations` and
//!   `webhook_deliveries`; the unique keys include it (a mention is stored once per brand), and
//!   one active task per dedup key per brand. Writers that name no brand write the default
//!   brand's rows (the column default), as every writer did before brands.
//! - `user_brands`: which brands a user works for (many to many). Agents see the mentions of
//!   their brands only; admins see every brand. A mention can be assigned only to an admin or
//!   to a user of its brand (trigger `mentions_assignee_of_brand`); a new user works for the
//!   default brand until given others (trigger `users_join_default_brand`).

sql_migration! {
    /// Creates `brands` and `user_brands`, and keys the provider's rows by brand.
}

const UP: &str = r#"
CREATE TABLE brands (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    profile_key      bytea,
    profile_key_hash bytea,
    platforms        text[] CHECK (platforms <@ ARRAY['bluesky', 'facebook', 'instagram',
                         'linkedin', 'threads', 'tiktok', 'twitter', 'youtube']),
    disabled_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((profile_key IS NULL) = (profile_key_hash IS NULL))
);
CREATE UNIQUE INDEX brands_name_key ON brands (lower(name));
CREATE UNIQUE INDEX brands_profile_key_hash_key ON brands (profile_key_hash);
-- One brand only may use the primary profile (no Profile-Key).
CREATE UNIQUE INDEX brands_one_primary_profile ON brands ((true)) WHERE profile_key_hash IS NULL;
COMMENT ON COLUMN brands.profile_key IS 'the Profile-Key sealed with BRANDS_KEY: nonce || ciphertext';
COMMENT ON COLUMN brands.profile_key_hash IS 'HMAC-SHA256 of the Profile-Key under BRANDS_KEY';
INSERT INTO brands (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'Default');

CREATE TABLE user_brands (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    brand_id uuid NOT NULL REFERENCES brands (id),
    PRIMARY KEY (user_id, brand_id)
);
CREATE INDEX user_brands_brand_id_idx ON user_brands (brand_id);
-- Every existing user works for the default brand, as before.
INSERT INTO user_brands (user_id, brand_id)
    SELECT id, '00000000-0000-0000-0000-000000000001' FROM users;

ALTER TABLE posts ADD COLUMN brand_id uuid NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES brands (id);
ALTER TABLE posts DROP CONSTRAINT posts_platform_post_key;
ALTER TABLE posts ADD CONSTRAINT posts_brand_platform_post_key
    UNIQUE (brand_id, platform, platform_post_id);
DROP INDEX posts_platform_next_fetch_at_idx;
CREATE INDEX posts_brand_platform_next_fetch_at_idx ON posts (brand_id, platform, next_fetch_at);

ALTER TABLE mentions ADD COLUMN brand_id uuid NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES brands (id);
ALTER TABLE mentions DROP CONSTRAINT mentions_platform_type_ref_key;
ALTER TABLE mentions ADD CONSTRAINT mentions_brand_platform_type_ref_key
    UNIQUE (brand_id, platform, type, platform_ref);
DROP INDEX mentions_provider_post_ref_idx;
CREATE INDEX mentions_provider_post_ref_idx ON mentions (brand_id, platform, provider_post_ref);
CREATE INDEX mentions_brand_created_at_id_idx ON mentions (brand_id, created_at DESC, id DESC);

ALTER TABLE tasks ADD COLUMN brand_id uuid NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES brands (id);
DROP INDEX tasks_active_dedup_key;
CREATE UNIQUE INDEX tasks_active_dedup_key ON tasks (brand_id, dedup_key)
    WHERE status IN ('pending', 'published', 'running');

ALTER TABLE platform_status ADD COLUMN brand_id uuid NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES brands (id);
ALTER TABLE platform_status DROP CONSTRAINT platform_status_pkey;
ALTER TABLE platform_status ADD PRIMARY KEY (brand_id, platform);

ALTER TABLE webhook_registrations ADD COLUMN brand_id uuid NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES brands (id);
ALTER TABLE webhook_registrations DROP CONSTRAINT webhook_registrations_pkey;
ALTER TABLE webhook_registrations DROP COLUMN profile;
ALTER TABLE webhook_registrations ADD PRIMARY KEY (brand_id, action);

ALTER TABLE webhook_deliveries ADD COLUMN brand_id uuid NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES brands (id);
DROP INDEX webhook_deliveries_by_platform;
ALTER TABLE webhook_deliveries DROP COLUMN profile;
-- Delivery ids are the provider's per profile: one brand's id never hides another's delivery.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey;
ALTER TABLE webhook_deliveries ADD PRIMARY KEY (brand_id, id);
CREATE INDEX webhook_deliveries_by_platform
    ON webhook_deliveries (brand_id, platform, received_at);

-- A new user works for the default brand until given others (POST /v1/users with brandIds
-- replaces it in the same transaction): the users of a single-brand installation keep
-- seeing its inbox.
CREATE FUNCTION users_join_default_brand() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_brands (user_id, brand_id)
        VALUES (NEW.id, '00000000-0000-0000-0000-000000000001');
    RETURN NULL;
END
$$;
CREATE TRIGGER users_join_default_brand
    AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_join_default_brand();

-- A mention is assigned only to an admin or to a user of its brand (the user must exist:
-- an unknown id is left to the foreign key).
CREATE FUNCTION mentions_assignee_of_brand() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.assignee_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM users u
        WHERE u.id = NEW.assignee_id AND u.role <> 'admin'
          AND NOT EXISTS (SELECT 1 FROM user_brands ub
                          WHERE ub.user_id = u.id AND ub.brand_id = NEW.brand_id)) THEN
        RAISE EXCEPTION 'user % does not work for the brand of mention %', NEW.assignee_id, NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mentions_assignee_of_brand';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER mentions_assignee_of_brand
    BEFORE INSERT OR UPDATE OF assignee_id ON mentions
    FOR EACH ROW EXECUTE FUNCTION mentions_assignee_of_brand();

GRANT SELECT, INSERT, UPDATE ON brands TO social_messages_app;
GRANT SELECT, INSERT, DELETE ON user_brands TO social_messages_app;
"#;

// Rolling back would merge brands into one: refused while any other brand exists.
const DOWN: &str = r#"
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM brands WHERE id <> '00000000-0000-0000-0000-000000000001') THEN
        RAISE EXCEPTION 'cannot roll back brands while brands other than the default exist';
    END IF;
END $$;
DROP INDEX webhook_deliveries_by_platform;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey;
ALTER TABLE webhook_deliveries ADD COLUMN profile text NOT NULL DEFAULT 'default';
ALTER TABLE webhook_deliveries ALTER COLUMN profile DROP DEFAULT;
ALTER TABLE webhook_deliveries DROP COLUMN brand_id;
ALTER TABLE webhook_deliveries ADD PRIMARY KEY (id);
CREATE INDEX webhook_deliveries_by_platform ON webhook_deliveries (profile, platform, received_at);

ALTER TABLE webhook_registrations DROP CONSTRAINT webhook_registrations_pkey;
ALTER TABLE webhook_registrations ADD COLUMN profile text NOT NULL DEFAULT 'default';
ALTER TABLE webhook_registrations ALTER COLUMN profile DROP DEFAULT;
ALTER TABLE webhook_registrations DROP COLUMN brand_id;
ALTER TABLE webhook_registrations ADD PRIMARY KEY (profile, action);

ALTER TABLE platform_status DROP CONSTRAINT platform_status_pkey;
ALTER TABLE platform_status DROP COLUMN brand_id;
ALTER TABLE platform_status ADD PRIMARY KEY (platform);

DROP INDEX tasks_active_dedup_key;
ALTER TABLE tasks DROP COLUMN brand_id;
CREATE UNIQUE INDEX tasks_active_dedup_key ON tasks (dedup_key)
    WHERE status IN ('pending', 'published', 'running');

DROP INDEX mentions_brand_created_at_id_idx;
DROP INDEX mentions_provider_post_ref_idx;
ALTER TABLE mentions DROP CONSTRAINT mentions_brand_platform_type_ref_key;
ALTER TABLE mentions DROP COLUMN brand_id;
ALTER TABLE mentions ADD CONSTRAINT mentions_platform_type_ref_key
    UNIQUE (platform, type, platform_ref);
CREATE INDEX mentions_provider_post_ref_idx ON mentions (platform, provider_post_ref);

DROP INDEX posts_brand_platform_next_fetch_at_idx;
ALTER TABLE posts DROP CONSTRAINT posts_brand_platform_post_key;
ALTER TABLE posts DROP COLUMN brand_id;
ALTER TABLE posts ADD CONSTRAINT posts_platform_post_key UNIQUE (platform, platform_post_id);
CREATE INDEX posts_platform_next_fetch_at_idx ON posts (platform, next_fetch_at);

DROP TRIGGER users_join_default_brand ON users;
DROP FUNCTION users_join_default_brand();
DROP TRIGGER mentions_assignee_of_brand ON mentions;
DROP FUNCTION mentions_assignee_of_brand();
DROP TABLE user_brands;
DROP TABLE brands;
"#;
