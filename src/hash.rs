//! SHA-256 and HMAC-SHA256, computed in software.
//!
//! Why not `ring` (which rustls builds anyway) or a CPU-accelerated SHA-256: on first use they find
//! out what the processor offers with `cpuid` instructions, which a virtual machine traps to its
//! hypervisor one by one (4–7 µs apiece measured on the project's VM; ring runs three), and ring
//! brings in code and tables that a CGI process otherwise never touches (18 page faults more per
//! request). A CGI process hashes one session cookie and exits; in software that takes about a
//! microsecond. What this product hashes is small: cookies, OAuth states, event ids, and the
//! fields of one event for its fingerprint.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    keyed(key, message).finalize().into_bytes().into()
}

/// Whether `tag` is the whole HMAC-SHA256 of `message` under `key`, compared in constant time.
pub fn hmac_sha256_verify(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    keyed(key, message).verify_slice(tag).is_ok()
}

fn keyed(key: &[u8], message: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this constructor cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(message);
    mac
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_fips_examples() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Two blocks: the padding spills over.
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: a short key.
        let tag = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block is hashed first.
        let tag = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&tag),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn verify_takes_only_the_whole_tag_of_the_same_key_and_message() {
        let tag = hmac_sha256(b"key", b"message");
        assert!(hmac_sha256_verify(b"key", b"message", &tag));
        assert!(!hmac_sha256_verify(b"key", b"message", &tag[..16]));
        assert!(!hmac_sha256_verify(b"key", b"message", &[]));
        assert!(!hmac_sha256_verify(b"key", b"massage", &tag));
        assert!(!hmac_sha256_verify(b"other", b"message", &tag));
        let mut flipped = tag;
        flipped[31] ^= 1;
        assert!(!hmac_sha256_verify(b"key", b"message", &flipped));
    }
}
