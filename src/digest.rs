//! Secrets and digests: random identifiers and secrets from the kernel, SHA-256 in hex, and a
//! comparison that does not leak where two secrets differ. A leaf: it uses nothing of the project.

use std::io::Read;

use sha2::{Digest, Sha256};

/// Hex of `n` random bytes from the kernel.
///
/// # Panics
/// When /dev/urandom cannot be read: there is no safe fallback for secrets.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_ok();
    assert!(ok, "/dev/urandom must be readable: there is no safe fallback for secrets");
    hex(&buf)
}

/// Lowercase hex of the SHA-256 of `bytes`, without a `sha256:` prefix.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of HMAC-SHA256 (RFC 2104) under `key` of the concatenation of `parts`: a digest
/// of a secret that only a holder of `key` can compute or check, so it is no oracle for guessing
/// the secret.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new().chain_update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    hex(&Sha256::new().chain_update(k.map(|b| b ^ 0x5c)).chain_update(inner.finalize()).finalize())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality whose time depends only on the lengths, not on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_known_value() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn random_hex_has_two_digits_a_byte_and_differs() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(16));
    }

    #[test]
    fn hmac_sha256_has_the_rfc_4231_values() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first.
        assert_eq!(
            hmac_sha256_hex(&[0xaa; 131], &[b"Test Using Larger Than Block-Size Key - Hash Key First"]),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
