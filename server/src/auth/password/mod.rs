//! Argon2id passwords: hashing, checking, and the gate every hash passes.
//!
//! A hash is slow on purpose and holds `auth.argon2_memory_kib` (19 MiB by default) while it runs, so
//! parallel logins for fresh usernames (each its own throttle key) used to run hundreds of hashes at once on
//! tokio's blocking pool and grew the process by gigabytes. [`Passwords`] lets at most
//! `auth.password_hash_concurrency` hashes run and `auth.password_hash_queue` more wait; anything beyond is
//! answered 503 at once. The working memory is mapped for argon2 directly ([`memory`]), handed from one
//! hash to the next while hashing is busy and unmapped as soon as it goes idle.

pub mod error;
mod memory;
pub mod strength;

use std::sync::{Arc, Mutex, MutexGuard};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng},
};
use prometheus::{IntCounter, Registry};
use tokio::sync::Semaphore;

use self::{error::HashError, memory::ArgonMemory};
use crate::config::AuthSettings;

pub const MIN_PASSWORD_CHARS: usize = 10;

/// Argon2id with `memory_kib`, two passes, one lane: OWASP's minimum for argon2id at the default memory.
fn argon2id(memory_kib: u32) -> Result<Params, HashError> {
    Params::new(memory_kib, 2, 1, None).map_err(|e| internal("argon2 parameters", e))
}

fn internal(what: &str, e: impl std::fmt::Display) -> HashError {
    HashError::Internal(anyhow::anyhow!("{what}: {e}"))
}

/// The PHC string stored in `users.password_hash`, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
fn phc(params: &Params, salt: &SaltString, output: Output) -> Result<String, HashError> {
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| internal("argon2 parameters", e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// A stored hash, parsed: what checking a password against it needs.
struct Stored {
    argon2: Argon2<'static>,
    blocks: usize,
    salt: Vec<u8>,
    expected: Output,
}

impl Stored {
    /// Parameters come from the stored hash, not from the settings, so older hashes keep working.
    fn parse(phc: &str) -> Result<Stored, HashError> {
        let unreadable = |e: argon2::password_hash::Error| internal("stored hash unreadable", e);
        let hash = PasswordHash::new(phc).map_err(unreadable)?;
        let params = Params::try_from(&hash).map_err(unreadable)?;
        let algorithm = Algorithm::try_from(hash.algorithm).map_err(unreadable)?;
        let version = hash.version.map(Version::try_from).transpose().map_err(|e| unreadable(e.into()))?;
        let expected = hash.hash.ok_or_else(|| internal("stored hash unreadable", "no hash value"))?;
        let mut salt = [0u8; 64];
        let salt =
            hash.salt.ok_or_else(|| internal("stored hash unreadable", "no salt"))?.decode_b64(&mut salt);
        Ok(Stored {
            blocks: params.block_count(),
            argon2: Argon2::new(algorithm, version.unwrap_or_default(), params),
            salt: salt.map_err(unreadable)?.to_vec(),
            expected,
        })
    }

    fn matches(&self, password: &[u8], memory: &mut ArgonMemory) -> Result<bool, HashError> {
        let computed = Output::init_with(self.expected.len(), |out| {
            Ok(self.argon2.hash_password_into_with_memory(
                password,
                &self.salt,
                out,
                memory.as_blocks_mut(),
            )?)
        })
        .map_err(|e| internal("argon2", e))?;
        // `Output` compares in constant time.
        Ok(computed == self.expected)
    }
}

/// Hashes `password` with a fresh salt, in `memory`.
fn hash_in(password: &[u8], params: &Params, memory: &mut ArgonMemory) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| internal("salt", e))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = Output::init_with(params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN), |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, memory.as_blocks_mut())?)
    })
    .map_err(|e| internal("argon2", e))?;
    phc(params, &salt, output)
}

/// Hashes a new password outside the server (CLI, demo data), with memory of its own.
pub fn hash_blocking(password: &str, memory_kib: u32) -> Result<String, HashError> {
    let params = argon2id(memory_kib)?;
    let mut memory = ArgonMemory::map(params.block_count()).map_err(|e| internal("argon2 memory", e))?;
    hash_in(password.as_bytes(), &params, &mut memory)
}

/// Longer passwords add nothing a person can remember and make every hash (and every guess) cost more.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// A password policy everyone can meet and nobody forgets what it is.
pub fn check_strength(password: &str) -> Result<(), strength::PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(strength::PasswordError::TooLong(MAX_PASSWORD_BYTES));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(strength::PasswordError::TooShort(MIN_PASSWORD_CHARS));
    }
    Ok(())
}

/// The server's password hashing: the gate, the memory, the dummy hash for unknown usernames.
pub struct Passwords {
    params: Params,
    gate: Arc<Gate>,
    /// Hashes running now; `spawn_blocking` is called only with a permit, so the blocking pool never holds
    /// more than this many hashes' memory.
    running: Arc<Semaphore>,
    /// Checked against when a login names no known user: same parameters as a new hash, random salt and
    /// value, so an unknown username costs one full hash, like a wrong password, and never matches.
    dummy: Arc<str>,
    /// Every argon2 run (logins, unknown usernames, new passwords).
    hashes: IntCounter,
    /// Requests refused because the hashing queue was full.
    refused: IntCounter,
}

/// Admitted hashes (running and waiting), and the memory finished hashes left for the next ones.
struct Gate {
    capacity: usize,
    state: Mutex<GateState>,
}

struct GateState {
    admitted: usize,
    spare: Vec<ArgonMemory>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Memory for `blocks` blocks: a finished hash's if one is left, else a new mapping.
    fn memory(&self, blocks: usize) -> Result<ArgonMemory, HashError> {
        let reused = {
            let mut state = self.lock();
            let fits = state.spare.iter().position(|m| m.blocks() >= blocks);
            fits.map(|i| state.spare.swap_remove(i))
        };
        match reused {
            Some(m) => Ok(m),
            None => ArgonMemory::map(blocks).map_err(|e| internal("argon2 memory", e)),
        }
    }

    fn give_back(&self, memory: ArgonMemory) {
        self.lock().spare.push(memory);
    }
}

/// A place among the admitted hashes, taken before a login does anything else and held until its hash is
/// done. The last ticket to go unmaps the spare memory: idle hashing holds none.
pub struct Ticket {
    gate: Arc<Gate>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let idle = {
            let mut state = self.gate.lock();
            state.admitted -= 1;
            if state.admitted == 0 { std::mem::take(&mut state.spare) } else { Vec::new() }
        };
        drop(idle);
    }
}

/// How long a client refused for overload should wait: a queue's worth of hashes takes about that long.
const OVERLOAD_RETRY_SECS: u64 = 1;

impl Passwords {
    pub fn new(settings: &AuthSettings, registry: &Registry) -> anyhow::Result<Passwords> {
        let params = argon2id(settings.argon2_memory_kib).map_err(|e| anyhow::anyhow!("{e}"))?;
        let concurrency = settings.hash_concurrency();
        let mut value = [0u8; Params::DEFAULT_OUTPUT_LEN];
        getrandom::fill(&mut value).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let dummy = phc(&params, &SaltString::generate(&mut OsRng), Output::new(&value)?)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let hashes = IntCounter::new("password_hashes_total", "argon2 password hashes computed")?;
        let refused = IntCounter::new(
            "password_hash_refusals_total",
            "requests refused with 503 because the password hashing queue was full",
        )?;
        registry.register(Box::new(hashes.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        Ok(Passwords {
            params,
            gate: Arc::new(Gate {
                capacity: concurrency + settings.password_hash_queue,
                state: Mutex::new(GateState { admitted: 0, spare: Vec::new() }),
            }),
            running: Arc::new(Semaphore::new(concurrency)),
            dummy: dummy.into(),
            hashes,
            refused,
        })
    }

    /// A place in the hashing queue, or 503 with `Retry-After` when it is full.
    pub fn admit(&self) -> Result<Ticket, HashError> {
        let mut state = self.gate.lock();
        if state.admitted >= self.gate.capacity {
            self.refused.inc();
            return Err(HashError::Overloaded { retry_after_secs: OVERLOAD_RETRY_SECS });
        }
        state.admitted += 1;
        Ok(Ticket { gate: self.gate.clone() })
    }

    /// Does `password` match the stored PHC hash? `None` (no such user) checks against the dummy hash: the
    /// same work, never a match.
    pub async fn check(
        &self,
        ticket: Ticket,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let dummy = self.dummy.clone();
        self.run(ticket, move |gate| {
            let stored = Stored::parse(stored.as_deref().unwrap_or(&dummy))?;
            let mut memory = gate.memory(stored.blocks)?;
            let matched = stored.matches(password.as_bytes(), &mut memory);
            gate.give_back(memory);
            matched
        })
        .await
    }

    /// Hashes a new password with the configured cost; 503 when the hashing queue is full.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let ticket = self.admit()?;
        let params = self.params.clone();
        self.run(ticket, move |gate| {
            let mut memory = gate.memory(params.block_count())?;
            let hash = hash_in(password.as_bytes(), &params, &mut memory);
            gate.give_back(memory);
            hash
        })
        .await
    }

    /// Waits for a running slot, then runs `job` on the blocking pool; the ticket goes after the job gave
    /// its memory back, so the last one out unmaps it.
    async fn run<T: Send + 'static>(
        &self,
        ticket: Ticket,
        job: impl FnOnce(&Gate) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.running.clone().acquire_owned().await.expect("the semaphore is never closed");
        self.hashes.inc();
        tokio::task::spawn_blocking(move || {
            let out = job(&ticket.gate);
            drop(permit);
            drop(ticket);
            out
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    fn passwords(concurrency: usize, queue: usize) -> Passwords {
        let settings = AuthSettings {
            argon2_memory_kib: 64,
            password_hash_concurrency: concurrency,
            password_hash_queue: queue,
            ..AuthSettings::default()
        };
        Passwords::new(&settings, &Registry::new()).unwrap()
    }

    #[tokio::test]
    async fn a_password_matches_its_own_hash_and_no_other() {
        let p = passwords(1, 0);
        let hash = p.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=2,p=1$"), "{hash}");
        assert!(p.check(p.admit().unwrap(), "correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!p.check(p.admit().unwrap(), "correct horsf".into(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_stay_interchangeable_with_the_argon2_crates_own() {
        let p = passwords(1, 0);
        let params = Params::new(128, 3, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"demo-password", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(p.check(p.admit().unwrap(), "demo-password".into(), Some(theirs)).await.unwrap());
        let ours = hash_blocking("demo-password", 64).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"demo-password", &parsed).is_ok());
    }

    #[tokio::test]
    async fn an_unknown_user_costs_one_hash_of_the_configured_cost_and_never_matches() {
        let p = passwords(1, 0);
        let fresh = p.hash("some password".into()).await.unwrap();
        let (dummy, fresh) = (PasswordHash::new(&p.dummy).unwrap(), PasswordHash::new(&fresh).unwrap());
        assert_eq!(Params::try_from(&dummy).unwrap(), Params::try_from(&fresh).unwrap());
        assert_eq!((dummy.algorithm, dummy.version), (fresh.algorithm, fresh.version));
        let before = p.hashes.get();
        assert!(!p.check(p.admit().unwrap(), "some password".into(), None).await.unwrap());
        assert_eq!(p.hashes.get(), before + 1);
    }

    #[test]
    fn the_gate_lets_in_the_running_and_the_queued_and_refuses_the_rest_until_one_leaves() {
        let p = passwords(2, 3);
        let mut tickets: Vec<Ticket> = (0..5).map(|_| p.admit().unwrap()).collect();
        let Err(HashError::Overloaded { retry_after_secs }) = p.admit() else {
            panic!("a sixth login is let in")
        };
        assert_eq!(retry_after_secs, 1);
        assert_eq!(p.refused.get(), 1);
        tickets.pop();
        assert!(p.admit().is_ok());
    }

    #[tokio::test]
    async fn hashing_memory_passes_to_the_next_hash_and_is_unmapped_when_none_waits() {
        let p = passwords(1, 1);
        let waiting = p.admit().unwrap();
        p.hash("first password".into()).await.unwrap();
        assert_eq!(p.gate.lock().spare.len(), 1, "kept for the login still admitted");
        p.check(waiting, "second password".into(), None).await.unwrap();
        let state = p.gate.lock();
        assert_eq!((state.admitted, state.spare.len()), (0, 0));
    }
}
