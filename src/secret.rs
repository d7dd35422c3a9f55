//! Encryption of the secrets kept in the database (passwords, OAuth tokens) under one per-install
//! key in `data/secret.key`, so that a copied or backed-up `dncs.db` alone reveals none of them.
//!
//! The key file holds the 32 key bytes as one line of standard base64 (padded), so that an
//! administrator can copy it between machines as text without a binary-safe tool. Sealed values
//! look like `v1.` + base64url-no-pad(24-byte nonce ‖ XChaCha20-Poly1305 ciphertext and tag); the
//! caller's `context` (e.g. `"cybozu_password:42"`) is the associated data, so a sealed value
//! copied into another column or row fails to open.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const VERSION_PREFIX: &str = "v1.";

/// The per-install key that seals and opens stored secrets.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

/// Why a key could not be loaded or a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot {doing} the secret key file {path}: {source}")]
    KeyFileIo {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the secret key file {path} holds {found} bytes where {KEY_LEN} are expected; it is left \
         as it is because every stored password and token depends on it: restore it from a backup, \
         or delete it and have every user enter their passwords and link Google again"
    )]
    KeyFileLength { path: PathBuf, found: usize },
    #[error(
        "the secret key file {path} is not base64 text; it is left as it is because every stored \
         password and token depends on it: restore it from a backup"
    )]
    KeyFileEncoding { path: PathBuf },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("a stored secret has an unknown format version (expected {VERSION_PREFIX}…)")]
    UnknownVersion,
    #[error("a stored secret is not valid base64")]
    BadEncoding,
    #[error("a stored secret is too short to hold a nonce and tag")]
    Truncated,
    #[error(
        "a stored secret cannot be decrypted: the key file differs from the one it was sealed \
         with, or the value was altered or moved"
    )]
    Undecryptable,
    #[error("a stored secret decrypted to text that is not UTF-8")]
    NotUtf8,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Reads the key file at `path`, creating it (and its folder) with a fresh random key on first use.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, SecretError> {
        let io_error = |doing, source| SecretError::KeyFileIo {
            doing,
            path: path.to_path_buf(),
            source,
        };
        // The key exists on every run but the first: read before trying to create it (the CGI
        // pays for each system call on every request).
        if let Some(key) = SecretKey::load(path)? {
            return Ok(key);
        }
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(folder).map_err(|e| io_error("create the folder of", e))?;
        }
        match create_new_owner_only(path) {
            Ok(mut file) => {
                let bytes = random_key_bytes()?;
                let line = format!("{}\n", STANDARD.encode(bytes));
                file.write_all(line.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io_error("write", e))?;
                Ok(SecretKey::from_bytes(&bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key_file(path),
            Err(e) => Err(io_error("create", e)),
        }
    }

    /// Reads the key file at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<SecretKey>, SecretError> {
        match read_key_file(path) {
            Err(SecretError::KeyFileIo { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            read => read.map(Some),
        }
    }

    /// A fresh random key that lives only in memory (tests, throwaway databases).
    pub fn generate() -> Result<SecretKey, SecretError> {
        Ok(SecretKey::from_bytes(&random_key_bytes()?))
    }

    fn from_bytes(bytes: &[u8; KEY_LEN]) -> SecretKey {
        SecretKey {
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }

    /// Encrypts `plaintext`, binding it to `context` (which column of which row it belongs to).
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // A 24-byte nonce is large enough to draw at random for every value without tracking counters.
        OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 refuses only plaintexts of 256 GiB or more");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!("{VERSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(blob))
    }

    /// Decrypts a value made by [`SecretKey::seal`] with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SecretError> {
        let encoded = sealed
            .strip_prefix(VERSION_PREFIX)
            .ok_or(SecretError::UnknownVersion)?;
        let blob = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SecretError::BadEncoding)?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Truncated);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plaintext = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::NotUtf8)
    }
}

fn random_key_bytes() -> Result<[u8; KEY_LEN], SecretError> {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::getrandom(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A random token of `bytes` bytes from the OS RNG as base64url without padding (cookie- and
/// URL-safe): session ids, CSRF tokens, OAuth state ids.
pub fn random_token(bytes: usize) -> Result<String, SecretError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::getrandom(&mut buffer).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

#[cfg(unix)]
fn create_new_owner_only(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

// On Windows the file inherits the data folder's ACL: keeping that folder readable only by the
// web server's account and administrators is the installer's job.
#[cfg(not(unix))]
fn create_new_owner_only(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Reads an existing key file. Another process may have just created it and not yet written
/// its one line, so a short file is read again for a moment before it counts as damaged.
fn read_key_file(path: &Path) -> Result<SecretKey, SecretError> {
    const ATTEMPTS: u32 = 20;
    let encoded_len = STANDARD.encode([0u8; KEY_LEN]).len();
    let mut attempt = 0;
    loop {
        let text = fs::read(path).map_err(|source| SecretError::KeyFileIo {
            doing: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let trimmed = text.trim_ascii();
        attempt += 1;
        if trimmed.len() < encoded_len && attempt < ATTEMPTS {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let bytes = STANDARD
            .decode(trimmed)
            .map_err(|_| SecretError::KeyFileEncoding {
                path: path.to_path_buf(),
            })?;
        let bytes: [u8; KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| SecretError::KeyFileLength {
                    path: path.to_path_buf(),
                    found: bytes.len(),
                })?;
        return Ok(SecretKey::from_bytes(&bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::generate().expect("OS RNG")
    }

    #[test]
    fn round_trip() {
        let key = key();
        let sealed = key.seal("cybozu_password:42", "pa$$wörd");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("pa$$"));
        assert_eq!(key.open("cybozu_password:42", &sealed).unwrap(), "pa$$wörd");
    }

    #[test]
    fn same_plaintext_seals_differently_each_time() {
        let key = key();
        assert_ne!(key.seal("c", "same"), key.seal("c", "same"));
    }

    #[test]
    fn wrong_context_fails() {
        let key = key();
        let sealed = key.seal("cybozu_password:42", "secret");
        assert!(matches!(
            key.open("cybozu_password:43", &sealed),
            Err(SecretError::Undecryptable)
        ));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = key().seal("c", "secret");
        assert!(matches!(
            key().open("c", &sealed),
            Err(SecretError::Undecryptable)
        ));
    }

    #[test]
    fn tampering_fails() {
        let key = key();
        let sealed = key.seal("c", "secret");
        let mut blob = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        let tampered = format!("v1.{}", URL_SAFE_NO_PAD.encode(&blob));
        assert!(matches!(
            key.open("c", &tampered),
            Err(SecretError::Undecryptable)
        ));
    }

    #[test]
    fn malformed_values_give_typed_errors() {
        let key = key();
        let sealed = key.seal("c", "secret");
        assert!(matches!(
            key.open("c", &sealed.replacen("v1.", "v2.", 1)),
            Err(SecretError::UnknownVersion)
        ));
        assert!(matches!(
            key.open("c", "plaintext"),
            Err(SecretError::UnknownVersion)
        ));
        assert!(matches!(
            key.open("c", "v1.not base64!"),
            Err(SecretError::BadEncoding)
        ));
        assert!(matches!(
            key.open("c", &sealed[..23]),
            Err(SecretError::Truncated)
        ));
        assert!(matches!(
            key.open("c", ""),
            Err(SecretError::UnknownVersion)
        ));
    }

    #[test]
    fn debug_does_not_show_the_key() {
        assert_eq!(format!("{:?}", key()), "SecretKey(..)");
    }

    #[test]
    fn two_loads_give_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("secret.key");
        let first = SecretKey::load_or_create(&path).unwrap();
        let second = SecretKey::load_or_create(&path).unwrap();
        let sealed = first.seal("c", "secret");
        assert_eq!(second.open("c", &sealed).unwrap(), "secret");
    }

    #[test]
    fn load_finds_no_key_where_there_is_none_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("secret.key");
        assert!(SecretKey::load(&path).unwrap().is_none());
        assert!(!path.parent().unwrap().exists());
        let created = SecretKey::load_or_create(&path).unwrap();
        let loaded = SecretKey::load(&path)
            .unwrap()
            .expect("the key just created");
        assert_eq!(
            loaded.open("c", &created.seal("c", "secret")).unwrap(),
            "secret"
        );
    }

    #[test]
    fn key_file_is_one_line_of_base64() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        SecretKey::load_or_create(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(STANDARD.decode(text.trim_end()).unwrap().len(), KEY_LEN);
    }

    #[test]
    fn key_file_written_with_crlf_by_an_editor_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let original = SecretKey::load_or_create(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{}\r\n", text.trim_end())).unwrap();
        let reloaded = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(reloaded.open("c", &original.seal("c", "x")).unwrap(), "x");
    }

    #[cfg(unix)]
    #[test]
    fn new_key_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        SecretKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn wrong_length_key_file_is_an_error_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let short = format!("{}\n", STANDARD.encode([7u8; 16]));
        fs::write(&path, &short).unwrap();
        let err = SecretKey::load_or_create(&path).unwrap_err();
        assert!(
            matches!(err, SecretError::KeyFileLength { found: 16, .. }),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), short);
    }

    #[test]
    fn non_base64_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        fs::write(&path, "#".repeat(60)).unwrap();
        assert!(matches!(
            SecretKey::load_or_create(&path),
            Err(SecretError::KeyFileEncoding { .. })
        ));
    }

    #[test]
    fn concurrent_first_loads_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let keys: Vec<SecretKey> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| SecretKey::load_or_create(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let sealed = keys[0].seal("c", "secret");
        for key in &keys {
            assert_eq!(key.open("c", &sealed).unwrap(), "secret");
        }
    }
}
