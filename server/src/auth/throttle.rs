//! Password-login limits: per client address, and per (client address, account).
//!
//! An attempt is counted *before* its password is checked, in the write transaction that reads the counts:
//! counting after the check let 32 of 100 parallel guesses through a limit of 5. Within the allowance an
//! attempt just counts; after it, each further attempt must wait, 1 s and doubling with every failure up to
//! `auth.login_max_delay_secs`, and is answered 429 with `Retry-After` before any hashing. A success clears
//! its (address, account) count and takes its attempt back from the address count (it was no failure);
//! counts are forgotten `auth.login_forget_after_secs` after the last wait ends.
//!
//! Every key holds the client address, so an attacker slows down himself and not the account's owner, who
//! logs in from elsewhere; a strong login (a signed challenge, nothing to guess) never passes here at all.
//! The per-address count bounds what one address can try over all accounts, unknown usernames included.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use sha2::{Digest, Sha256};

use super::{error::ThrottleError, store};
use crate::{config::AuthSettings, db::Tx, error::ApiError};

/// The client's address as a throttle key: IPv4 as it is, IPv6 by its /64 network (what one subscriber
/// usually gets, so hopping addresses inside it starts no fresh count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    pub fn of(ip: IpAddr) -> ClientAddr {
        match ip {
            IpAddr::V4(_) => ClientAddr(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientAddr(IpAddr::V4(v4)),
                None => ClientAddr(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX))))),
            },
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The peer address of the connection, which the server must provide as `ConnectInfo<SocketAddr>`.
impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) =
            ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await.map_err(|e| {
                ApiError::Internal(anyhow::anyhow!(
                    "{e}: serve the router with into_make_service_with_connect_info"
                ))
            })?;
        Ok(ClientAddr::of(peer.ip()))
    }
}

/// The account a login names: a known user, or an unknown username (by digest: the name is the caller's,
/// any length, and only needs to be told apart).
pub fn account_of(user_id: Option<i64>, username: &str) -> String {
    match user_id {
        Some(id) => format!("user:{id}"),
        None => format!("username:{}", hex::encode(&Sha256::digest(username.as_bytes())[..16])),
    }
}

/// A counted attempt, to be taken back if its password turns out right.
#[derive(Debug)]
pub struct Attempt {
    address_key: String,
    account_key: String,
}

/// How long the attempt after `failures` counted ones must wait, in ms.
fn delay_ms(failures: u32, allowance: u32, max_ms: i64) -> i64 {
    match failures.checked_sub(allowance) {
        None => 0,
        Some(beyond) => {
            2i64.checked_pow(beyond).and_then(|f| f.checked_mul(1000)).map_or(max_ms, |d| d.min(max_ms))
        }
    }
}

/// Counts an attempt for `client` on `account`, or refuses it (429) while either count makes it wait.
/// Nothing is written for a refused attempt: waiting it out is all it takes.
pub fn reserve(
    tx: &Tx<'_>,
    limits: &AuthSettings,
    client: ClientAddr,
    account: &str,
    now: i64,
) -> Result<Attempt, ThrottleError> {
    store::forget_login_limits(tx, now - limits.login_forget_after_secs * 1000)?;
    let attempt =
        Attempt { address_key: format!("addr:{client}"), account_key: format!("addr:{client} {account}") };
    let keys = [
        (&attempt.address_key, limits.login_failures_per_address, "from your address"),
        (&attempt.account_key, limits.login_failures_per_account, "for this account from your address"),
    ];
    let mut counted = Vec::with_capacity(keys.len());
    for (key, allowance, scope) in keys {
        let (failures, next_at) = store::login_limit(tx, key)?.unwrap_or((0, now));
        if now < next_at {
            let secs = ((next_at - now + 999) / 1000) as u64;
            return Err(ThrottleError::TooManyAttempts { scope, retry_after_secs: secs });
        }
        counted.push((
            key,
            failures + 1,
            now + delay_ms(failures + 1, allowance, limits.login_max_delay_secs * 1000),
        ));
    }
    for (key, failures, next_at) in counted {
        store::set_login_limit(tx, key, failures, next_at)?;
    }
    Ok(attempt)
}

/// The password was right: the (address, account) count starts over and the address gets its attempt back
/// (a success there never clears it: an attacker with an account of his own would reset it between guesses).
pub fn succeeded(tx: &Tx<'_>, attempt: &Attempt) -> Result<(), ThrottleError> {
    Ok(store::login_succeeded(tx, &attempt.account_key, &attempt.address_key)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    const T0: i64 = 1_800_000_000_000;

    fn limits() -> AuthSettings {
        AuthSettings {
            login_failures_per_account: 3,
            login_failures_per_address: 5,
            ..AuthSettings::default()
        }
    }

    fn addr(s: &str) -> ClientAddr {
        ClientAddr::of(s.parse().unwrap())
    }

    fn try_at(db: &Db, client: &str, account: &str, now: i64) -> Result<Attempt, u64> {
        let (client, account) = (addr(client), account.to_string());
        db.write_blocking(|tx| Ok::<_, crate::db::StoreError>(reserve(tx, &limits(), client, &account, now)))
            .unwrap()
            .map_err(|e| match e {
                ThrottleError::TooManyAttempts { retry_after_secs, .. } => retry_after_secs,
                other => panic!("not a wait: {other:?}"),
            })
    }

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 1).unwrap();
        (dir, db)
    }

    #[test]
    fn the_wait_starts_after_the_allowance_at_one_second_and_doubles_up_to_the_maximum() {
        let max = 900_000;
        let waits: Vec<i64> = (1..=16).map(|failures| delay_ms(failures, 5, max)).collect();
        assert_eq!(&waits[..4], &[0, 0, 0, 0]);
        assert_eq!(&waits[4..10], &[1000, 2000, 4000, 8000, 16_000, 32_000]);
        assert_eq!(waits[15], max);
        assert_eq!(delay_ms(u32::MAX, 5, max), max, "no overflow however long it goes on");
    }

    #[test]
    fn attempts_after_the_allowance_wait_longer_each_time() {
        let (_dir, db) = db();
        for _ in 0..3 {
            try_at(&db, "192.0.2.1", "user:1", T0).unwrap();
        }
        assert_eq!(try_at(&db, "192.0.2.1", "user:1", T0).unwrap_err(), 1);
        try_at(&db, "192.0.2.1", "user:1", T0 + 1000).unwrap();
        assert_eq!(try_at(&db, "192.0.2.1", "user:1", T0 + 1000).unwrap_err(), 2);
        assert_eq!(
            try_at(&db, "192.0.2.1", "user:1", T0 + 2500).unwrap_err(),
            1,
            "a partial second rounds up"
        );
    }

    #[test]
    fn one_address_waiting_for_an_account_does_not_slow_another_address() {
        let (_dir, db) = db();
        for _ in 0..3 {
            try_at(&db, "192.0.2.1", "user:1", T0).unwrap();
        }
        assert!(try_at(&db, "192.0.2.1", "user:1", T0).is_err());
        try_at(&db, "192.0.2.2", "user:1", T0).unwrap();
    }

    #[test]
    fn one_address_trying_many_accounts_waits_after_the_address_allowance() {
        let (_dir, db) = db();
        for account in ["user:1", "user:2", "username:a", "username:b", "username:c"] {
            try_at(&db, "192.0.2.1", account, T0).unwrap();
        }
        assert_eq!(try_at(&db, "192.0.2.1", "username:d", T0).unwrap_err(), 1);
        try_at(&db, "192.0.2.2", "username:d", T0).unwrap();
    }

    #[test]
    fn a_success_clears_its_account_count_and_returns_its_attempt_to_the_address() {
        let (_dir, db) = db();
        for _ in 0..2 {
            try_at(&db, "192.0.2.1", "user:1", T0).unwrap();
        }
        let right = try_at(&db, "192.0.2.1", "user:1", T0).unwrap();
        db.write_blocking(|tx| succeeded(tx, &right)).unwrap();
        let counts = db
            .write_blocking(|tx| -> Result<_, crate::db::StoreError> {
                let mut stmt = tx.prepare("SELECT key, failures FROM login_limits ORDER BY key")?;
                let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap();
        assert_eq!(counts, vec![("addr:192.0.2.1".to_string(), 2)]);
        for _ in 0..3 {
            try_at(&db, "192.0.2.1", "user:1", T0).unwrap();
        }
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let (_dir, db) = db();
        for _ in 0..3 {
            try_at(&db, "192.0.2.1", "user:1", T0).unwrap();
        }
        let forget_ms = limits().login_forget_after_secs * 1000;
        assert!(
            try_at(&db, "192.0.2.1", "user:1", T0 + 1000 + forget_ms - 1).is_ok(),
            "waited, still counted"
        );
        assert!(try_at(&db, "192.0.2.1", "user:1", T0 + 1000 + forget_ms).is_err(), "the count went on");
        let later = T0 + 1000 + forget_ms + 2000 + forget_ms;
        for _ in 0..3 {
            try_at(&db, "192.0.2.1", "user:1", later).unwrap();
        }
    }

    #[test]
    fn ipv6_clients_count_by_their_64_network_and_mapped_ipv4_as_ipv4() {
        assert_eq!(addr("2001:db8:1:2:aaaa::1"), addr("2001:db8:1:2:bbbb::2"));
        assert_ne!(addr("2001:db8:1:2::1"), addr("2001:db8:1:3::1"));
        assert_eq!(addr("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(addr("::ffff:192.0.2.7"), addr("192.0.2.7"));
        assert_eq!(addr("192.0.2.7").to_string(), "192.0.2.7");
    }

    #[test]
    fn an_unknown_username_is_keyed_by_a_short_digest_of_any_length_of_name() {
        assert_eq!(account_of(Some(7), "officer1"), "user:7");
        let long = account_of(None, &"x".repeat(100_000));
        assert!(long.starts_with("username:") && long.len() == "username:".len() + 32);
        assert_ne!(account_of(None, "alice"), account_of(None, "bob"));
    }
}
