//! The HTTPS listener's certificate, reloaded without a restart: the resolver checks the
//! certificate and key files' modification times (at most once a second, on handshakes) and
//! swaps in the new pair when both parse; a broken pair keeps the previous one in service.
//! Optionally clients must present a certificate issued under a configured CA (mutual TLS).

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use pingora::listeners::tls::TlsSettings;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{
    ClientCertVerifier, ClientHello, CryptoProvider, ResolvesServerCert, RootCertStore,
    WebPkiClientVerifier,
};

/// Certificate and key files, reloaded when they change.
pub struct ReloadingCert {
    cert: String,
    key: String,
    current: RwLock<(Option<SystemTime>, Arc<CertifiedKey>)>,
    checked: Mutex<Instant>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReloadingCert({}, {})", self.cert, self.key)
    }
}

fn modified(path: &str) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(cert: &str, key: &str) -> Result<Arc<CertifiedKey>, String> {
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

impl ReloadingCert {
    pub fn new(cert: &str, key: &str) -> Result<ReloadingCert, String> {
        let ck = load(cert, key)?;
        Ok(ReloadingCert {
            cert: cert.to_string(),
            key: key.to_string(),
            current: RwLock::new((newest(cert, key), ck)),
            checked: Mutex::new(Instant::now()),
        })
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
        let stamp = newest(&self.cert, &self.key);
        let seen = self.current.read().map(|c| c.0).unwrap_or(None);
        if stamp == seen {
            return;
        }
        match load(&self.cert, &self.key) {
            Ok(ck) => {
                if let Ok(mut c) = self.current.write() {
                    *c = (stamp, ck);
                    tracing::info!(cert = %self.cert, "TLS certificate reloaded");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate changed but does not load; keeping the old one")
            }
        }
    }
}

fn newest(cert: &str, key: &str) -> Option<SystemTime> {
    modified(cert).max(modified(key))
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        self.current.read().ok().map(|c| c.1.clone())
    }
}

/// Verifier for client certificates that must chain to the CA bundle at `ca`.
fn client_verifier(ca: &str) -> Result<Arc<dyn ClientCertVerifier>, String> {
    pingora::tls::install_default_crypto_provider();
    let mut roots = RootCertStore::empty();
    pingora::tls::load_ca_file_into_store(ca, &mut roots).map_err(|e| format!("{ca}: {e}"))?;
    if roots.is_empty() {
        return Err(format!("{ca}: no certificate found"));
    }
    WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| format!("{ca}: {e}"))
}

/// TLS settings for the HTTPS listener; with `client_ca`, clients must present a certificate
/// issued under it (mutual TLS) or the handshake fails.
pub fn settings(cert: &str, key: &str, client_ca: Option<&str>) -> Result<TlsSettings, String> {
    let resolver = ReloadingCert::new(cert, key)?;
    let mut s = TlsSettings::intermediate(cert, key).map_err(|e| e.to_string())?;
    s.set_cert_resolver(Arc::new(resolver));
    if let Some(ca) = client_ca {
        s.set_client_cert_verifier(client_verifier(ca)?);
    }
    Ok(s)
}
