//! Volcengine request signing (HMAC-SHA256, "V4" style), as documented in Volcengine's
//! public signing guide (<https://www.volcengine.com/docs/6369/67269>) and used by VikingDB
//! (<https://www.volcengine.com/docs/84313/1254485>).
//!
//! 1. Canonical request: `METHOD \n URI \n QUERY \n HEADERS \n SIGNED_HEADERS \n SHA256(body)`,
//!    where URI and query are RFC 3986 percent-encoded (query sorted by key), `HEADERS` is one
//!    `name:value\n` line per signed header (lowercase names, sorted, trimmed values).
//! 2. String to sign: `HMAC-SHA256 \n X-Date \n SCOPE \n hex(SHA256(canonical request))` with
//!    the credential scope `YYYYMMDD/region/service/request`.
//! 3. Signing key: `HMAC(HMAC(HMAC(HMAC(secret, date), region), service), "request")`.
//! 4. `Authorization: HMAC-SHA256 Credential=AK/SCOPE, SignedHeaders=..., Signature=hex`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name in the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "HMAC-SHA256";

/// What a request signature covers.
#[derive(Debug)]
pub struct SignInput<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Absolute path, not yet encoded (`/api/vikingdb/data/upsert`).
    pub path: &'a str,
    /// Query parameters, not yet encoded, in any order.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign (any case); `host` and `x-date` must be among them.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body (see [`sha256_hex`]).
    pub payload_hash: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the value of `X-Date`.
    pub x_date: &'a str,
    /// Region, e.g. `cn-beijing`.
    pub region: &'a str,
    /// Service, `vikingdb` for VikingDB.
    pub service: &'a str,
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 percent-encoding: unreserved characters stay, everything else is `%XX` (upper
/// case); `/` stays when `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string: encoded pairs sorted by key (then value), joined by `&`.
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signed header names (`host;x-date`) and the canonical header block.
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    h.sort();
    let block: String = h.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let names = h
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (names, block)
}

/// The credential scope `YYYYMMDD/region/service/request`.
pub fn credential_scope(x_date: &str, region: &str, service: &str) -> String {
    let date = x_date.get(..8).unwrap_or(x_date);
    format!("{date}/{region}/{service}/request")
}

/// The hex signature of a request.
pub fn signature(input: &SignInput<'_>, secret_key: &str) -> String {
    let (signed, block) = canonical_headers(input.headers);
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        uri_encode(input.path, true),
        canonical_query(input.query),
        block,
        signed,
        input.payload_hash
    );
    let scope = credential_scope(input.x_date, input.region, input.service);
    let to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        input.x_date,
        sha256_hex(canonical.as_bytes())
    );
    let date = input.x_date.get(..8).unwrap_or(input.x_date);
    let k_date = hmac(secret_key.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, input.region.as_bytes());
    let k_service = hmac(&k_region, input.service.as_bytes());
    let k_signing = hmac(&k_service, b"request");
    hex::encode(hmac(&k_signing, to_sign.as_bytes()))
}

/// The `Authorization` header value.
pub fn authorization(input: &SignInput<'_>, access_key: &str, secret_key: &str) -> String {
    let (signed, _) = canonical_headers(input.headers);
    format!(
        "{ALGORITHM} Credential={access_key}/{}, SignedHeaders={signed}, Signature={}",
        credential_scope(input.x_date, input.region, input.service),
        signature(input, secret_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Volcengine's public signing document.
    #[test]
    fn known_answer_from_volcengine_signing_document() {
        let input = SignInput {
            method: "GET",
            path: "/",
            query: &[
                ("Action", "ListUsers"),
                ("Version", "2018-01-01"),
                ("Limit", "10"),
                ("Offset", "0"),
            ],
            headers: &[
                ("Host", "iam.volcengineapi.com"),
                ("X-Date", "20240619T071306Z"),
            ],
            payload_hash: &sha256_hex(b""),
            x_date: "20240619T071306Z",
            region: "cn-beijing",
            service: "iam",
        };
        let secret = "WkRZeE1EQmxPVGhsWWpWak5HVmtNbUUxTXpZeU9UVXlOMlE1TmpZeVlqTQ==";
        assert_eq!(
            signature(&input, secret),
            "e31c4558bcfe08a286001f59cedbf0791ffd0b2362f10e55ee2627467bcdde93"
        );
        let auth = authorization(
            &input,
            "AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg",
            secret,
        );
        assert_eq!(
            auth,
            "HMAC-SHA256 Credential=AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg/20240619/cn-beijing/iam/request, SignedHeaders=host;x-date, Signature=e31c4558bcfe08a286001f59cedbf0791ffd0b2362f10e55ee2627467bcdde93"
        );
    }

    #[test]
    fn encoding_follows_rfc3986() {
        assert_eq!(uri_encode("a b/c~d*", false), "a%20b%2Fc~d%2A");
        assert_eq!(uri_encode("/api/x y", true), "/api/x%20y");
        assert_eq!(canonical_query(&[("b", "2"), ("a", "1 2")]), "a=1%202&b=2");
    }
}
