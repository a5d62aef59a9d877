//! The HTTPS listener's certificate, reloaded without a restart: the resolver checks the
//! certificate and key files' modification times (at most once a second, on handshakes) and
//! swaps in the new pair when both parse; a broken pair keeps the previous one in service.
//! Optionally clients must present a certificate issued under a configured CA bundle (mutual
//! TLS), reloaded the same way.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use pingora::listeners::tls::TlsSettings;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{
    CertificateDer, ClientCertVerified, ClientCertVerifier, ClientHello, CryptoProvider,
    DigitallySignedStruct, HandshakeSignatureValid, ResolvesServerCert, RootCertStore, RusTlsError,
    SignatureScheme, UnixTime, WebPkiClientVerifier,
};
use rustls::DistinguishedName;

/// A value loaded from files, loaded again when one of them changes: their modification
/// times are checked at most once a second, when the value is used. A reload that fails keeps
/// the previous value in service.
struct Reloading<T> {
    files: Vec<String>,
    what: &'static str,
    load: fn(&[String]) -> Result<T, String>,
    current: RwLock<(Option<SystemTime>, T)>,
    checked: Mutex<Instant>,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reloading({}: {:?})", self.what, self.files)
    }
}

fn newest(files: &[String]) -> Option<SystemTime> {
    files
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max()
}

impl<T: Clone> Reloading<T> {
    fn new(
        files: &[&str],
        what: &'static str,
        load: fn(&[String]) -> Result<T, String>,
    ) -> Result<Reloading<T>, String> {
        let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        let value = load(&files)?;
        Ok(Reloading {
            current: RwLock::new((newest(&files), value)),
            files,
            what,
            load,
            checked: Mutex::new(Instant::now()),
        })
    }

    /// The current value, reloaded first if the files changed.
    fn get(&self) -> T {
        self.maybe_reload();
        // a poisoned lock still holds a complete value: swaps are single assignments
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.1.clone()
    }

    fn maybe_reload(&self) {
        {
            let Ok(mut checked) = self.checked.lock() else {
                return;
            };
            if checked.elapsed() < Duration::from_secs(1) {
                return;
            }
            *checked = Instant::now();
        }
        let stamp = newest(&self.files);
        let seen = self.current.read().map(|c| c.0).unwrap_or(None);
        if stamp == seen {
            return;
        }
        match (self.load)(&self.files) {
            Ok(v) => {
                if let Ok(mut c) = self.current.write() {
                    *c = (stamp, v);
                    tracing::info!(files = ?self.files, "{} reloaded", self.what);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "{} changed but does not load; keeping the old one", self.what)
            }
        }
    }
}

/// The listener's certificate and key (`[cert, key]`).
fn load_cert(files: &[String]) -> Result<Arc<CertifiedKey>, String> {
    let (cert, key) = (&files[0], &files[1]);
    pingora::tls::install_default_crypto_provider();
    let (certs, key_der) = pingora::tls::load_certs_and_key_files(cert, key)
        .map_err(|e| format!("{cert} / {key}: {e}"))?
        .ok_or_else(|| format!("{cert} / {key}: no certificate or no private key found"))?;
    let provider = CryptoProvider::get_default().ok_or("no TLS crypto provider")?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("{key}: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// The HTTPS listener's certificate, reloaded when its files change.
#[derive(Debug)]
pub struct ReloadingCert(Reloading<Arc<CertifiedKey>>);

impl ReloadingCert {
    pub fn new(cert: &str, key: &str) -> Result<ReloadingCert, String> {
        Reloading::new(&[cert, key], "TLS certificate", load_cert).map(ReloadingCert)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

/// A verifier for client certificates that must chain to the CA bundle `[ca]`. Each one loaded
/// is kept for the life of the process (CA bundles change rarely and are small), so that the
/// root hints can be lent out while a newer bundle replaces it.
fn load_client_ca(files: &[String]) -> Result<&'static Arc<dyn ClientCertVerifier>, String> {
    let ca = &files[0];
    pingora::tls::install_default_crypto_provider();
    let mut roots = RootCertStore::empty();
    pingora::tls::load_ca_file_into_store(ca, &mut roots).map_err(|e| format!("{ca}: {e}"))?;
    if roots.is_empty() {
        return Err(format!("{ca}: no certificate found"));
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| format!("{ca}: {e}"))?;
    Ok(Box::leak(Box::new(verifier)))
}

/// Client certificates must chain to a CA bundle, reloaded when the file changes.
#[derive(Debug)]
pub struct ReloadingClientCa(Reloading<&'static Arc<dyn ClientCertVerifier>>);

impl ReloadingClientCa {
    pub fn new(ca: &str) -> Result<ReloadingClientCa, String> {
        Reloading::new(&[ca], "client CA bundle", load_client_ca).map(ReloadingClientCa)
    }

    fn current(&self) -> &'static dyn ClientCertVerifier {
        self.0.get().as_ref()
    }
}

impl ClientCertVerifier for ReloadingClientCa {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.current().root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, RusTlsError> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RusTlsError> {
        self.current().verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RusTlsError> {
        self.current().verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// TLS settings for the HTTPS listener; with `client_ca`, clients must present a certificate
/// issued under it (mutual TLS) or the handshake fails.
pub fn settings(cert: &str, key: &str, client_ca: Option<&str>) -> Result<TlsSettings, String> {
    let resolver = ReloadingCert::new(cert, key)?;
    let mut s = TlsSettings::intermediate(cert, key).map_err(|e| e.to_string())?;
    s.set_cert_resolver(Arc::new(resolver));
    if let Some(ca) = client_ca {
        s.set_client_cert_verifier(Arc::new(ReloadingClientCa::new(ca)?));
    }
    Ok(s)
}
