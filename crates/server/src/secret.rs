//! New API key secrets: `pqk_` and 64 hex digits from 256 bits of the operating system's
//! randomness. Only [`prismq_domain::ports::KeyHash`] of a secret is ever stored.

use std::fmt::Write as _;

use rand::RngCore;

use prismq_domain::ports::keys::SECRET_PREFIX;

/// A fresh secret.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().fold(String::from(SECRET_PREFIX), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ports::PresentedKey;

    #[test]
    fn secrets_are_well_formed_and_differ() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(PresentedKey::parse(&a).is_ok(), "{a}");
    }
}
