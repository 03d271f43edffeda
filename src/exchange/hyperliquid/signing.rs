//! Signing of Hyperliquid L1 actions, as the official Python SDK does it
//! (`hyperliquid/utils/signing.py`):
//!
//! 1. the action's msgpack encoding (a map in the wire field order), then the nonce as 8
//!    big-endian bytes, then `0x00` without a vault or `0x01` and the vault's 20 bytes, then,
//!    with an expiry, `0x00` and the expiry as 8 big-endian bytes; its keccak-256 is the
//!    action hash;
//! 2. the EIP-712 "phantom agent" `Agent(string source,bytes32 connectionId)` with source `a`
//!    (mainnet) or `b` (testnet) and the action hash as connection id, in the domain
//!    `Exchange`, version `1`, chain id 1337, verifying contract zero;
//! 3. a recoverable secp256k1 signature of the EIP-712 digest (RFC 6979), `v` = 27 + recovery
//!    id.
//!
//! The cryptography is k256's (secp256k1, ECDSA) and sha3's (keccak-256); this module only
//! assembles the bytes the protocol hashes.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use serde::Serialize;
use sha3::{Digest, Keccak256};

/// Signing errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("the private key is not 32 bytes of hex")]
    BadKey,
    /// 32 bytes, but not a secp256k1 secret (zero, or not below the curve order).
    #[error("the private key is not a valid secp256k1 key (zero, or not below the curve order)")]
    InvalidKey,
    #[error("address `{0}` is not 20 bytes of hex")]
    BadAddress(String),
    #[error("the action cannot be encoded as msgpack: {0}")]
    Encode(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// keccak-256.
pub fn keccak(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let t = text.strip_prefix("0x").unwrap_or(text);
    if !t.len().is_multiple_of(2) {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
        .collect()
}

/// A 20-byte address from `0x…` hex.
///
/// # Errors
/// [`SignError::BadAddress`].
pub fn address_bytes(address: &str) -> Result<[u8; 20], SignError> {
    hex_bytes(address)
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or_else(|| SignError::BadAddress(address.to_string()))
}

/// The action hash: keccak-256 of the msgpack action, nonce, vault and expiry (see the module
/// documentation).
///
/// # Errors
/// [`SignError`] for an action msgpack cannot encode or a malformed vault address.
pub fn action_hash<A: Serialize>(
    action: &A,
    vault: Option<&str>,
    nonce: u64,
    expires_after: Option<u64>,
) -> Result<[u8; 32], SignError> {
    let mut data = rmp_serde::to_vec_named(action).map_err(|e| SignError::Encode(e.to_string()))?;
    data.extend_from_slice(&nonce.to_be_bytes());
    match vault {
        None => data.push(0),
        Some(v) => {
            data.push(1);
            data.extend_from_slice(&address_bytes(v)?);
        }
    }
    if let Some(e) = expires_after {
        data.push(0);
        data.extend_from_slice(&e.to_be_bytes());
    }
    Ok(keccak(&data))
}

/// The EIP-712 digest of the phantom agent for `connection_id` (an action hash).
pub fn phantom_agent_digest(connection_id: &[u8; 32], mainnet: bool) -> [u8; 32] {
    let domain_type = keccak(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
    );
    let mut chain = [0u8; 32];
    chain[24..].copy_from_slice(&1337u64.to_be_bytes());
    let mut domain = Vec::with_capacity(5 * 32);
    domain.extend_from_slice(&domain_type);
    domain.extend_from_slice(&keccak(b"Exchange"));
    domain.extend_from_slice(&keccak(b"1"));
    domain.extend_from_slice(&chain);
    domain.extend_from_slice(&[0u8; 32]);
    let domain_separator = keccak(&domain);
    let agent_type = keccak(b"Agent(string source,bytes32 connectionId)");
    let source: &[u8] = if mainnet { b"a" } else { b"b" };
    let mut agent = Vec::with_capacity(3 * 32);
    agent.extend_from_slice(&agent_type);
    agent.extend_from_slice(&keccak(source));
    agent.extend_from_slice(connection_id);
    let struct_hash = keccak(&agent);
    let mut msg = Vec::with_capacity(66);
    msg.extend_from_slice(&[0x19, 0x01]);
    msg.extend_from_slice(&domain_separator);
    msg.extend_from_slice(&struct_hash);
    keccak(&msg)
}

/// A signature as the exchange takes it: `r` and `s` as 32-byte big-endian numbers, `v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthSignature {
    pub r: [u8; 32],
    pub s: [u8; 32],
    pub v: u8,
}

impl EthSignature {
    /// `r` as the SDK prints it: `0x` and hex without leading zeros.
    pub fn r_hex(&self) -> String {
        int_hex(&self.r)
    }
    /// `s` as the SDK prints it.
    pub fn s_hex(&self) -> String {
        int_hex(&self.s)
    }
}

fn int_hex(b: &[u8; 32]) -> String {
    let full: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let t = full.trim_start_matches('0');
    format!("0x{}", if t.is_empty() { "0" } else { t })
}

/// A signer: a secp256k1 key. Its `Debug` never shows the key.
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from a `0x…` hex private key.
    ///
    /// # Errors
    /// [`SignError::BadKey`] (the message never contains the key).
    pub fn from_hex(key: &str) -> Result<Self, SignError> {
        let bytes = hex_bytes(key.trim())
            .filter(|b| b.len() == 32)
            .ok_or(SignError::BadKey)?;
        let key = SigningKey::from_slice(&bytes).map_err(|_| SignError::InvalidKey)?;
        Ok(Self { key })
    }

    /// The Ethereum address of the key, `0x` and 40 lower-case hex digits.
    pub fn address(&self) -> String {
        address_of(self.key.verifying_key())
    }

    /// Signs a 32-byte digest.
    ///
    /// # Errors
    /// [`SignError::Sign`] (does not happen for a valid key).
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<EthSignature, SignError> {
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(digest)
            .map_err(|e| SignError::Sign(e.to_string()))?;
        let bytes = sig.to_bytes();
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..]);
        Ok(EthSignature {
            r,
            s,
            v: 27 + recid.to_byte(),
        })
    }

    /// Signs a user-signed action (see [`user_signed_digest`]).
    ///
    /// # Errors
    /// As [`user_signed_digest`] and [`Signer::sign_digest`].
    pub fn sign_user_action(
        &self,
        primary_type: &str,
        fields: &[(&str, Field)],
    ) -> Result<EthSignature, SignError> {
        self.sign_digest(&user_signed_digest(
            primary_type,
            fields,
            SIGNATURE_CHAIN_ID,
        )?)
    }

    /// Signs an L1 action (see the module documentation).
    ///
    /// # Errors
    /// As [`action_hash`] and [`Signer::sign_digest`].
    pub fn sign_l1_action<A: Serialize>(
        &self,
        action: &A,
        vault: Option<&str>,
        nonce: u64,
        expires_after: Option<u64>,
        mainnet: bool,
    ) -> Result<EthSignature, SignError> {
        let h = action_hash(action, vault, nonce, expires_after)?;
        self.sign_digest(&phantom_agent_digest(&h, mainnet))
    }
}

/// A field of a user-signed action, as EIP-712 encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    String(String),
    Address(String),
    Uint64(u64),
    Bool(bool),
    Bytes32([u8; 32]),
}

impl Field {
    fn type_name(&self) -> &'static str {
        match self {
            Field::String(_) => "string",
            Field::Address(_) => "address",
            Field::Uint64(_) => "uint64",
            Field::Bool(_) => "bool",
            Field::Bytes32(_) => "bytes32",
        }
    }

    fn encode(&self) -> Result<[u8; 32], SignError> {
        let mut w = [0u8; 32];
        match self {
            Field::String(s) => return Ok(keccak(s.as_bytes())),
            Field::Address(a) => w[12..].copy_from_slice(&address_bytes(a)?),
            Field::Uint64(n) => w[24..].copy_from_slice(&n.to_be_bytes()),
            Field::Bool(b) => w[31] = u8::from(*b),
            Field::Bytes32(b) => w = *b,
        }
        Ok(w)
    }
}

/// The chain id user-signed actions are signed on (`signatureChainId` `0x66eee`, as the SDK).
pub const SIGNATURE_CHAIN_ID: u64 = 0x66eee;

/// The EIP-712 digest of a user-signed action (`HyperliquidSignTransaction` domain, version 1,
/// `chain_id`): `primary_type` is e.g. `HyperliquidTransaction:ApproveAgent`, `fields` the
/// named fields in their type order (the first is `hyperliquidChain`).
///
/// # Errors
/// [`SignError::BadAddress`] for an address field that is not 20 bytes of hex.
pub fn user_signed_digest(
    primary_type: &str,
    fields: &[(&str, Field)],
    chain_id: u64,
) -> Result<[u8; 32], SignError> {
    let mut chain = [0u8; 32];
    chain[24..].copy_from_slice(&chain_id.to_be_bytes());
    let mut domain = Vec::with_capacity(5 * 32);
    domain.extend_from_slice(&keccak(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
    ));
    domain.extend_from_slice(&keccak(b"HyperliquidSignTransaction"));
    domain.extend_from_slice(&keccak(b"1"));
    domain.extend_from_slice(&chain);
    domain.extend_from_slice(&[0u8; 32]);
    let members: Vec<String> = fields
        .iter()
        .map(|(n, f)| format!("{} {n}", f.type_name()))
        .collect();
    let type_string = format!("{primary_type}({})", members.join(","));
    let mut data = Vec::with_capacity((fields.len() + 1) * 32);
    data.extend_from_slice(&keccak(type_string.as_bytes()));
    for (_, f) in fields {
        data.extend_from_slice(&f.encode()?);
    }
    let mut msg = Vec::with_capacity(66);
    msg.extend_from_slice(&[0x19, 0x01]);
    msg.extend_from_slice(&keccak(&domain));
    msg.extend_from_slice(&keccak(&data));
    Ok(keccak(&msg))
}

/// `Mainnet` or `Testnet`: the `hyperliquidChain` of user-signed actions.
pub fn hyperliquid_chain(mainnet: bool) -> &'static str {
    if mainnet {
        "Mainnet"
    } else {
        "Testnet"
    }
}

/// The fields of `approveAgent` (an agent wallet allowed to sign for the account).
pub fn approve_agent_fields(
    mainnet: bool,
    agent: &str,
    name: &str,
    nonce: u64,
) -> Vec<(&'static str, Field)> {
    vec![
        (
            "hyperliquidChain",
            Field::String(hyperliquid_chain(mainnet).into()),
        ),
        ("agentAddress", Field::Address(agent.into())),
        ("agentName", Field::String(name.into())),
        ("nonce", Field::Uint64(nonce)),
    ]
}

/// The primary type of `approveAgent`.
pub const APPROVE_AGENT: &str = "HyperliquidTransaction:ApproveAgent";

/// The address of a public key: the last 20 bytes of the keccak of its uncompressed point.
fn address_of(key: &VerifyingKey) -> String {
    let point = key.to_encoded_point(false);
    let h = keccak(&point.as_bytes()[1..]);
    let hex: String = h[12..].iter().map(|x| format!("{x:02x}")).collect();
    format!("0x{hex}")
}

/// The address that signed `digest` with `sig` (what the exchange checks).
///
/// # Errors
/// [`SignError::Sign`] for a signature that recovers no key.
pub fn recover(digest: &[u8; 32], sig: &EthSignature) -> Result<String, SignError> {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&sig.r);
    bytes[32..].copy_from_slice(&sig.s);
    let s = Signature::from_slice(&bytes).map_err(|e| SignError::Sign(e.to_string()))?;
    let id = RecoveryId::from_byte(sig.v.wrapping_sub(27))
        .ok_or_else(|| SignError::Sign(format!("v = {} is not 27 or 28", sig.v)))?;
    let key = VerifyingKey::recover_from_prehash(digest, &s, id)
        .map_err(|e| SignError::Sign(e.to_string()))?;
    Ok(address_of(&key))
}

#[cfg(test)]
mod tests {
    //! The published vectors of the official Python SDK (`tests/signing_test.py` in
    //! hyperliquid-dex/hyperliquid-python-sdk).
    use super::*;

    const KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";

    #[derive(Serialize)]
    struct Dummy {
        #[serde(rename = "type")]
        kind: &'static str,
        num: u64,
    }

    /// `{"type": "dummy", "num": float_to_int_for_hashing(1000)}`.
    fn dummy() -> Dummy {
        Dummy {
            kind: "dummy",
            num: 1000 * 100_000_000,
        }
    }

    fn check(sig: &EthSignature, r: &str, s: &str, v: u8) {
        assert_eq!(sig.r_hex(), r);
        assert_eq!(sig.s_hex(), s);
        assert_eq!(sig.v, v);
    }

    #[test]
    fn l1_action_signing_matches() {
        let w = Signer::from_hex(KEY).unwrap();
        let m = w.sign_l1_action(&dummy(), None, 0, None, true).unwrap();
        check(
            &m,
            "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
            "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8",
            27,
        );
        let t = w.sign_l1_action(&dummy(), None, 0, None, false).unwrap();
        check(
            &t,
            "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
            "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613",
            28,
        );
        // The exchange recovers the signer from the same digest.
        let h = action_hash(&dummy(), None, 0, None).unwrap();
        assert_eq!(
            recover(&phantom_agent_digest(&h, true), &m).unwrap(),
            w.address()
        );
    }

    #[test]
    fn l1_action_signing_matches_with_vault() {
        let w = Signer::from_hex(KEY).unwrap();
        let vault = Some("0x1719884eb866cb12b2287399b15f7db5e7d775ea");
        let m = w.sign_l1_action(&dummy(), vault, 0, None, true).unwrap();
        check(
            &m,
            "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
            "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c",
            28,
        );
        let t = w.sign_l1_action(&dummy(), vault, 0, None, false).unwrap();
        check(
            &t,
            "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
            "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60",
            27,
        );
    }

    #[test]
    fn a_key_that_is_not_hex_is_refused_without_echoing_it() {
        let e = Signer::from_hex("0xnot-a-key-but-secret").unwrap_err();
        assert_eq!(e.to_string(), "the private key is not 32 bytes of hex");
        assert_eq!(Signer::from_hex("0xabcd").unwrap_err(), SignError::BadKey);
        // 32 bytes that are no key: zero, and the curve order n itself (issue 30: an all-zero
        // key was called "not 32 bytes of hex").
        let zero = format!("0x{}", "00".repeat(32));
        assert_eq!(Signer::from_hex(&zero).unwrap_err(), SignError::InvalidKey);
        let n = "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141";
        assert_eq!(Signer::from_hex(n).unwrap_err(), SignError::InvalidKey);
        assert!(SignError::InvalidKey
            .to_string()
            .contains("not a valid secp256k1 key"));
        let w = Signer::from_hex(KEY).unwrap();
        assert!(!format!("{w:?}").contains("0123456789"));
    }

    use super::super::wire::{Action, Cloid, OrderTypeWire, OrderWire, Tif, Tpsl};

    fn order(t: OrderTypeWire, cloid: Option<&str>) -> Action {
        Action::orders(vec![OrderWire {
            a: 1,
            b: true,
            p: "100".into(),
            s: "100".into(),
            r: false,
            t,
            c: cloid.map(|c| Cloid::parse(c).unwrap().to_hex()),
        }])
    }

    #[test]
    fn phantom_agent_creation_matches_production() {
        let a = Action::orders(vec![OrderWire {
            a: 4,
            b: true,
            p: "1670.1".into(),
            s: "0.0147".into(),
            r: false,
            t: OrderTypeWire::limit(Tif::Ioc),
            c: None,
        }]);
        let h = action_hash(&a, None, 1677777606040, None).unwrap();
        let hex: String = h.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(
            hex,
            "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"
        );
    }

    #[test]
    fn l1_action_signing_order_matches() {
        let w = Signer::from_hex(KEY).unwrap();
        let a = order(OrderTypeWire::limit(Tif::Gtc), None);
        check(
            &w.sign_l1_action(&a, None, 0, None, true).unwrap(),
            "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
            "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e",
            28,
        );
        check(
            &w.sign_l1_action(&a, None, 0, None, false).unwrap(),
            "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
            "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5",
            27,
        );
    }

    #[test]
    fn l1_action_signing_order_with_cloid_matches() {
        let w = Signer::from_hex(KEY).unwrap();
        let a = order(
            OrderTypeWire::limit(Tif::Gtc),
            Some("0x00000000000000000000000000000001"),
        );
        check(
            &w.sign_l1_action(&a, None, 0, None, true).unwrap(),
            "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
            "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da",
            27,
        );
        check(
            &w.sign_l1_action(&a, None, 0, None, false).unwrap(),
            "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
            "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988",
            28,
        );
    }

    #[test]
    fn l1_action_signing_tpsl_order_matches() {
        let w = Signer::from_hex(KEY).unwrap();
        let a = order(OrderTypeWire::trigger("103".into(), true, Tpsl::Sl), None);
        check(
            &w.sign_l1_action(&a, None, 0, None, true).unwrap(),
            "0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
            "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405",
            27,
        );
        check(
            &w.sign_l1_action(&a, None, 0, None, false).unwrap(),
            "0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
            "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac",
            28,
        );
    }

    #[test]
    fn schedule_cancel_matches() {
        let w = Signer::from_hex(KEY).unwrap();
        let none = Action::ScheduleCancel { time: None };
        check(
            &w.sign_l1_action(&none, None, 0, None, true).unwrap(),
            "0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
            "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0",
            27,
        );
        let at = Action::ScheduleCancel {
            time: Some(123456789),
        };
        check(
            &w.sign_l1_action(&at, None, 0, None, false).unwrap(),
            "0x4e4f2dbd4107c69783e251b7e1057d9f2b9d11cee213441ccfa2be63516dc5bc",
            "0x706c656b23428c8ba356d68db207e11139ede1670481a9e01ae2dfcdb0e1a678",
            27,
        );
    }

    fn transfer(chain: &str) -> Vec<(&'static str, Field)> {
        vec![
            ("hyperliquidChain", Field::String(chain.into())),
            (
                "destination",
                Field::String("0x5e9ee1089755c3435139848e47e6635505d5a13a".into()),
            ),
            ("amount", Field::String("1".into())),
            ("time", Field::Uint64(1687816341423)),
        ]
    }

    #[test]
    fn user_signed_actions_match() {
        let w = Signer::from_hex(KEY).unwrap();
        check(
            &w.sign_user_action("HyperliquidTransaction:UsdSend", &transfer("Testnet"))
                .unwrap(),
            "0x637b37dd731507cdd24f46532ca8ba6eec616952c56218baeff04144e4a77073",
            "0x11a6a24900e6e314136d2592e2f8d502cd89b7c15b198e1bee043c9589f9fad7",
            27,
        );
        check(
            &w.sign_user_action("HyperliquidTransaction:Withdraw", &transfer("Testnet"))
                .unwrap(),
            "0x8363524c799e90ce9bc41022f7c39b4e9bdba786e5f9c72b20e43e1462c37cf9",
            "0x58b1411a775938b83e29182e8ef74975f9054c8e97ebf5ec2dc8d51bfc893881",
            28,
        );
    }
}
