//! The cluster CA: an ECDSA P-256 certificate authority made at `cluster init`, which signs the
//! certificate the cluster API (5001) and the registry (5002) serve. Joining hosts pin it by the
//! SHA-256 of its DER encoding, carried in the join token.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot make a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("`{0}` is neither an IP address nor a DNS name usable in a certificate")]
    BadName(String),
    #[error("the certificate file holds no PEM certificate")]
    NoCertificate,
}

/// A PEM certificate and its PEM (PKCS#8) private key.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

fn year_now() -> i32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

/// A new cluster CA valid for 20 years.
pub fn create_ca(cluster_id: &str) -> Result<Pair, CaError> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.remove(DnType::CommonName);
    p.distinguished_name.push(DnType::CommonName, format!("containerctl cluster CA {cluster_id}"));
    p.distinguished_name.push(DnType::OrganizationName, "containerctl");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let y = year_now();
    p.not_before = rcgen::date_time_ymd(y - 1, 1, 1);
    p.not_after = rcgen::date_time_ymd(y + 20, 1, 1);
    let cert = p.self_signed(&key)?;
    Ok(Pair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// A server certificate for `names` (IP addresses or DNS names), signed by `ca`, valid 5 years.
pub fn issue_server(ca: &Pair, names: &[String]) -> Result<Pair, CaError> {
    issue(ca, names, &[ExtendedKeyUsagePurpose::ServerAuth])
}

/// A member's certificate for its address: it serves the member's side of moves and presents
/// it as a client to other members (mutual TLS), so it is good for both.
pub fn issue_member(ca: &Pair, addr: &str) -> Result<Pair, CaError> {
    issue(ca, &[addr.to_owned()], &[ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth])
}

fn issue(ca: &Pair, names: &[String], usages: &[ExtendedKeyUsagePurpose]) -> Result<Pair, CaError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.remove(DnType::CommonName);
    p.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
    for n in names {
        let san = match n.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if valid_dns_name(n) => {
                SanType::DnsName(n.clone().try_into().map_err(|_| CaError::BadName(n.clone()))?)
            }
            Err(_) => return Err(CaError::BadName(n.clone())),
        };
        p.subject_alt_names.push(san);
    }
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = usages.to_vec();
    p.use_authority_key_identifier_extension = true;
    let y = year_now();
    p.not_before = rcgen::date_time_ymd(y - 1, 1, 1);
    p.not_after = rcgen::date_time_ymd(y + 5, 1, 1);
    let cert = p.signed_by(&key, &issuer)?;
    Ok(Pair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

pub fn valid_dns_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The DER bytes of the first certificate in `pem`.
pub fn first_der(pem: &str) -> Result<Vec<u8>, CaError> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
        .ok_or(CaError::NoCertificate)
}

/// `sha256:HEX` of a certificate's DER encoding: what join tokens pin.
pub fn digest_der(der: &[u8]) -> String {
    format!("sha256:{}", crate::digest::sha256_hex(der))
}

/// [`digest_der`] of the first certificate in `pem`.
pub fn digest_pem(pem: &str) -> Result<String, CaError> {
    first_der(pem).map(|d| digest_der(&d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_certificate_chains_to_the_ca_and_digest_is_stable() {
        let ca = create_ca("c-test").expect("ca");
        let d1 = digest_pem(&ca.cert_pem).expect("digest");
        assert!(d1.starts_with("sha256:") && d1.len() == 7 + 64, "{d1}");
        assert_eq!(d1, digest_pem(&ca.cert_pem).expect("digest"));
        let srv = issue_server(&ca, &["10.1.2.3".into(), "host-a".into()]).expect("server");
        assert_ne!(digest_pem(&srv.cert_pem).expect("digest"), d1);
        // Verified by the same verifier the join uses.
        let roots = super::super::tls::roots_from_pem(&ca.cert_pem).expect("roots");
        let leaf = rustls_pki_types::CertificateDer::from(first_der(&srv.cert_pem).expect("der"));
        super::super::tls::verify_with_roots(roots.clone(), &leaf, "10.1.2.3").expect("verifies by IP");
        super::super::tls::verify_with_roots(roots.clone(), &leaf, "host-a").expect("verifies by name");
        assert!(super::super::tls::verify_with_roots(roots, &leaf, "10.9.9.9").is_err());
        let other = create_ca("c-other").expect("ca");
        let other_roots = super::super::tls::roots_from_pem(&other.cert_pem).expect("roots");
        assert!(super::super::tls::verify_with_roots(other_roots, &leaf, "10.1.2.3").is_err());
    }

    #[test]
    fn bad_names_are_refused() {
        let ca = create_ca("c").expect("ca");
        assert!(matches!(issue_server(&ca, &["bad name!".into()]), Err(CaError::BadName(_))));
    }
}
