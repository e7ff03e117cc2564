//! `login_throttle` counts attempts per key, not per address only: `address:<ip>` and
//! `account:<lowercased email>`, so that guessing one account from many addresses is slowed
//! too. An attempt is counted before its password is checked (and taken back when it
//! succeeds), so a row may hold zero failures.

sql_migration! {
    /// Renames `login_throttle.address` to `key` and allows zero failures.
}

const UP: &str = r#"
ALTER TABLE login_throttle RENAME COLUMN address TO key;
UPDATE login_throttle SET key = 'address:' || key;
ALTER TABLE login_throttle
    DROP CONSTRAINT login_throttle_failures_check,
    ADD CONSTRAINT login_throttle_failures_check CHECK (failures >= 0);
COMMENT ON COLUMN login_throttle.key IS 'address:<ip> or account:<lowercased email>';
"#;

const DOWN: &str = r#"
DELETE FROM login_throttle WHERE key NOT LIKE 'address:%' OR failures = 0;
UPDATE login_throttle SET key = substr(key, length('address:') + 1);
ALTER TABLE login_throttle
    DROP CONSTRAINT login_throttle_failures_check,
    ADD CONSTRAINT login_throttle_failures_check CHECK (failures > 0);
ALTER TABLE login_throttle RENAME COLUMN key TO address;
COMMENT ON COLUMN login_throttle.address IS NULL;
"#;
