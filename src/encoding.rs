//! Small encodings on hot paths.
//!
//! Depends on: nothing crate-internal.

/// Lower-case hex of `bytes`. `hex::encode` builds its `String` a `char` at a time; this fills
/// one buffer (the same output, measured at a fifth of the instructions for a SHA-256).
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Lowercase hex of a 32-byte digest, on the stack (SigV4 writes three a request).
pub struct Hex32([u8; 64]);

impl Hex32 {
    /// The hex of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8; 32]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        Self(out)
    }

    /// The hex text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_else(|_| unreachable!("hex digits are ASCII"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex32_is_the_hex_of_the_digest() {
        let bytes: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 8 + 1).unwrap_or(0));
        assert_eq!(super::Hex32::of(&bytes).as_str(), super::hex(&bytes));
        assert_eq!(super::Hex32::of(&[0xff; 32]).as_str(), "f".repeat(64));
    }

    #[test]
    fn hex_is_the_hex_crates_encoding() {
        for v in [&b""[..], b"\x00\x01\xab\xff", &[0x5a; 32]] {
            assert_eq!(super::hex(v), hex::encode(v));
        }
    }
}
