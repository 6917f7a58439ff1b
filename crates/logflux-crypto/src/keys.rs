use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey, PublicEncryptingKey};
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// DER of the AlgorithmIdentifier `rsaEncryption` with NULL parameters.
const RSA_ALGORITHM_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// The tenant's RSA private key. Only clients hold it.
pub struct PrivateKey {
    key: PrivateDecryptingKey,
    /// PKCS#8 DER, kept for the MGF1-SHA1 unwrap path; zeroed on drop.
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(RSA-{}, ***)", self.bits())
    }
}

impl PrivateKey {
    /// Generates a key pair with a modulus of `bits` (2048, 3072 or 4096).
    pub fn generate(bits: usize) -> Result<Self, CryptoError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            other => {
                return Err(CryptoError::Key(format!(
                    "cannot generate a {other}-bit key; use 2048, 3072 or 4096"
                )));
            }
        };
        let key = PrivateDecryptingKey::generate(size)
            .map_err(|_| CryptoError::Key("key generation failed".into()))?;
        let der = AsDer::<Pkcs8V1Der>::as_der(&key)
            .map_err(|_| CryptoError::Key("cannot encode the generated key".into()))?;
        Self::from_pkcs8(der.as_ref())
    }

    /// Reads a PEM private key: `BEGIN PRIVATE KEY` (PKCS#8, what OpenSSL 3's `genrsa` writes)
    /// or `BEGIN RSA PRIVATE KEY` (PKCS#1, older OpenSSL).
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let block = parse_pem(text)?;
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8(block.contents()),
            "RSA PRIVATE KEY" => {
                let pkcs8 = Zeroizing::new(der_sequence(&[
                    &[0x02, 0x01, 0x00],
                    RSA_ALGORITHM_ID,
                    &der_tlv(0x04, block.contents()),
                ]));
                Self::from_pkcs8(&pkcs8)
            }
            "ENCRYPTED PRIVATE KEY" => Err(CryptoError::Key(
                "the private key is encrypted with a passphrase; write an unencrypted copy with \
                 `openssl pkey -in KEY -out KEY.plain` and keep it mode 0600"
                    .into(),
            )),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(CryptoError::Key(
                "this is a public key; a private key was expected".into(),
            )),
            other => Err(CryptoError::Key(format!(
                "PEM block {other:?} is not an RSA private key"
            ))),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        let key = PrivateDecryptingKey::from_pkcs8(der).map_err(|e| rejected("private", &e))?;
        if key.key_size_bits() < MIN_RSA_BITS {
            return Err(CryptoError::Key(format!(
                "RSA-{} is too small; use at least {MIN_RSA_BITS} bits (4096 recommended)",
                key.key_size_bits()
            )));
        }
        Ok(PrivateKey {
            key,
            pkcs8: Zeroizing::new(der.to_vec()),
        })
    }

    /// The PKCS#8 PEM encoding (`BEGIN PRIVATE KEY`).
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem_lf(&pem::Pem::new("PRIVATE KEY", self.pkcs8.to_vec())))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let der =
            AsDer::<PublicKeyX509Der>::as_der(&self.key.public_key()).expect("a valid key encodes");
        PublicKey::from_spki(der.as_ref()).expect("a valid key's public key parses")
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    pub(crate) fn inner(&self) -> &PrivateDecryptingKey {
        &self.key
    }

    pub(crate) fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }
}

/// The tenant's RSA public key, as the server hands it out and agents pin it.
#[derive(Clone)]
pub struct PublicKey {
    key: PublicEncryptingKey,
    spki: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(RSA-{}, {})", self.bits(), self.fingerprint())
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Reads a PEM public key: `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo, what
    /// `openssl rsa -pubout` writes) or `BEGIN RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let block = parse_pem(text)?;
        match block.tag() {
            "PUBLIC KEY" => Self::from_spki(block.contents()),
            "RSA PUBLIC KEY" => {
                let mut bits = Vec::with_capacity(block.contents().len() + 1);
                bits.push(0); // no unused bits
                bits.extend_from_slice(block.contents());
                Self::from_spki(&der_sequence(&[RSA_ALGORITHM_ID, &der_tlv(0x03, &bits)]))
            }
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => Err(CryptoError::Key(
                "this is a private key; give the public key (openssl rsa -in KEY -pubout)".into(),
            )),
            other => Err(CryptoError::Key(format!(
                "PEM block {other:?} is not an RSA public key"
            ))),
        }
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki(der: &[u8]) -> Result<Self, CryptoError> {
        let key = PublicEncryptingKey::from_der(der).map_err(|e| rejected("public", &e))?;
        if key.key_size_bits() < MIN_RSA_BITS {
            return Err(CryptoError::Key(format!(
                "RSA-{} is too small; use at least {MIN_RSA_BITS} bits (4096 recommended)",
                key.key_size_bits()
            )));
        }
        // Re-encode, so equal keys compare equal whatever encoding they came in.
        let spki = AsDer::<PublicKeyX509Der>::as_der(&key)
            .map_err(|_| CryptoError::Key("cannot encode the public key".into()))?
            .as_ref()
            .to_vec();
        Ok(PublicKey { key, spki })
    }

    /// The PEM encoding (`BEGIN PUBLIC KEY`).
    pub fn to_pem(&self) -> String {
        pem_lf(&pem::Pem::new("PUBLIC KEY", self.spki.clone()))
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// `SHA256:` and the hex SHA-256 of the SubjectPublicKeyInfo DER — the same digest as
    /// `openssl pkey -pubin -outform DER | sha256sum`.
    pub fn fingerprint(&self) -> Fingerprint {
        let d = digest::digest(&digest::SHA256, &self.spki);
        Fingerprint(d.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    pub(crate) fn inner(&self) -> &PublicEncryptingKey {
        &self.key
    }
}

/// A public key's fingerprint: SHA-256 of its SubjectPublicKeyInfo DER.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = CryptoError;

    /// Accepts `SHA256:<64 hex>`, or the 64 hex digits alone (as `sha256sum` prints them),
    /// with or without colons between bytes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let hex_part = s
            .strip_prefix("SHA256:")
            .or_else(|| s.strip_prefix("sha256:"))
            .unwrap_or(s);
        let clean: String = hex_part.chars().filter(|&c| c != ':').collect();
        let bytes = hex::decode(&clean)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        bytes.map(Fingerprint).ok_or_else(|| {
            CryptoError::Key(format!(
                "fingerprint must be SHA256: followed by 64 hex digits, got {:?}",
                s.chars().take(80).collect::<String>()
            ))
        })
    }
}

/// PEM with LF line endings, as OpenSSL writes it.
fn pem_lf(block: &pem::Pem) -> String {
    pem::encode_config(
        block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn rejected(which: &str, e: &aws_lc_rs::error::KeyRejected) -> CryptoError {
    match e.description_() {
        "TooSmall" => CryptoError::Key(format!(
            "the RSA key is too small; use at least {MIN_RSA_BITS} bits (4096 recommended)"
        )),
        "TooLarge" => CryptoError::Key("the RSA key is larger than 8192 bits".into()),
        other => CryptoError::Key(format!("not an RSA {which} key ({other})")),
    }
}

fn parse_pem(text: &str) -> Result<pem::Pem, CryptoError> {
    pem::parse(text.trim_start_matches('\u{feff}'))
        .map_err(|e| CryptoError::Key(format!("not PEM ({e})")))
}

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    der_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

fn der_sequence(parts: &[&[u8]]) -> Vec<u8> {
    der_tlv(0x30, &parts.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        let mut v = Vec::new();
        der_len(5, &mut v);
        der_len(0x80, &mut v);
        der_len(0x1234, &mut v);
        assert_eq!(v, [0x05, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn fingerprint_parses_every_spelling() {
        let hex64 = "ab".repeat(32);
        let want = Fingerprint([0xab; 32]);
        assert_eq!(
            format!("SHA256:{hex64}").parse::<Fingerprint>().unwrap(),
            want
        );
        assert_eq!(hex64.parse::<Fingerprint>().unwrap(), want);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(
            format!("SHA256:{colons}").parse::<Fingerprint>().unwrap(),
            want
        );
        assert!("SHA256:abc".parse::<Fingerprint>().is_err());
        assert_eq!(want.to_string(), format!("SHA256:{hex64}"));
    }

    #[test]
    fn wrong_pem_kinds_say_what_was_given() {
        let e =
            PrivateKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .unwrap_err();
        assert!(e.to_string().contains("this is a public key"), "{e}");
        let e = PrivateKey::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("encrypted with a passphrase"), "{e}");
        let e = PrivateKey::from_pem("hello").unwrap_err();
        assert!(e.to_string().contains("not PEM"), "{e}");
        let e =
            PublicKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .unwrap_err();
        assert!(e.to_string().contains("\"CERTIFICATE\""), "{e}");
        let e =
            PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .unwrap_err();
        assert!(e.to_string().starts_with("not a usable RSA key"), "{e}");
    }

    #[test]
    fn debug_never_prints_key_material() {
        let k = PrivateKey::generate(2048).unwrap();
        let dbg = format!("{k:?}");
        assert_eq!(dbg, "PrivateKey(RSA-2048, ***)");
        let pem = k.to_pem();
        let reread = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(reread.public_key(), k.public_key());
        assert!(format!("{:?}", k.public_key()).contains("SHA256:"));
    }

    #[test]
    fn only_supported_sizes_generate() {
        assert!(PrivateKey::generate(1024).is_err());
        assert!(PrivateKey::generate(5000).is_err());
    }
}
