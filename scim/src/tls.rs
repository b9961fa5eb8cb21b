//! TLS wherever scimlab serves or calls: rustls with ring. A local authority for `scimlab up
//! --tls`, server configs for every mock, client configs (system roots, extra CAs, a client
//! certificate, or an explicit `insecure`), and the one-line reason a handshake failed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Pem { what: String, message: String },
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM text; none is an error naming `what`.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.into(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.into(),
            message: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        what: what.into(),
        message: format!("no usable PEM private key ({e})"),
    })
}

/// A server's certificate chain and key, cheap to clone.
#[derive(Clone)]
pub struct ServerTls(Arc<rustls::ServerConfig>);

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// From PEM texts; with `client_ca`, only clients with a certificate it signed get in.
    pub fn from_pem(cert: &str, key: &str, client_ca: Option<&str>) -> Result<Self, TlsError> {
        let chain = certificates(cert.as_bytes(), "the server certificate")?;
        let key = private_key(key.as_bytes(), "the server key")?;
        let builder = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certificates(ca.as_bytes(), "the client CA")? {
                    roots.add(c)?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    ring(),
                )
                .build()
                .map_err(|e| TlsError::Pem {
                    what: "the client CA".into(),
                    message: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls(Arc::new(config)))
    }

    /// From a certificate chain file and a key file (PEM).
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let text = |p: &Path| Ok::<_, TlsError>(String::from_utf8_lossy(&read(p)?).into_owned());
        Self::from_pem(&text(cert)?, &text(key)?, None).map_err(|e| match e {
            TlsError::Pem { what, message } => TlsError::Pem {
                what: format!("{what} ({} / {})", cert.display(), key.display()),
                message,
            },
            other => other,
        })
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.0.clone())
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then lets open connections
/// finish. A handshake that does not complete within 10 s is dropped, so a silent client
/// holds no more than its own connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: ServerTls,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let acceptor = tls.acceptor();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            let Ok(Ok(stream)) = handshake.await else {
                return;
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!("TLS connection ended: {e}");
            }
        });
    }
    graceful.shutdown().await;
}

const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The certificate authority `scimlab up --tls` signs its servers' certificates with; kept in a
/// folder so that a client trusting `ca.pem` goes on trusting the servers across restarts.
pub struct Authority {
    key: rcgen::KeyPair,
    /// The CA certificate, PEM.
    pub ca_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

const CA_NAME: &str = "scimlab local CA";

fn ca_params() -> Result<rcgen::CertificateParams, TlsError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, CA_NAME);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Authority {
    /// A new authority that lives in memory only.
    pub fn generate() -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::generate()?;
        let ca_pem = ca_params()?.self_signed(&key)?.pem();
        Ok(Authority { key, ca_pem })
    }

    /// The authority in `dir` (`ca.pem`, `ca-key.pem`), made there on first use.
    pub fn open(dir: &Path) -> Result<Self, TlsError> {
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        if cert_path.exists() && key_path.exists() {
            let key_pem = String::from_utf8_lossy(&read(&key_path)?).into_owned();
            let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Pem {
                what: key_path.display().to_string(),
                message: e.to_string(),
            })?;
            let ca_pem = String::from_utf8_lossy(&read(&cert_path)?).into_owned();
            certificates(ca_pem.as_bytes(), &cert_path.display().to_string())?;
            return Ok(Authority { key, ca_pem });
        }
        let authority = Self::generate()?;
        let write = |path: &Path, text: &str| {
            std::fs::create_dir_all(dir)
                .and_then(|()| write_private(path, text))
                .map_err(|source| TlsError::Write {
                    path: path.to_owned(),
                    source,
                })
        };
        write(&key_path, &authority.key.serialize_pem())?;
        write(&cert_path, &authority.ca_pem)?;
        Ok(authority)
    }

    /// A certificate for `names` (host names or IP addresses), signed by this authority.
    pub fn issue(&self, names: &[&str]) -> Result<Issued, TlsError> {
        self.issue_with(names, |_| {})
    }

    /// As `issue`, after `edit` has changed the certificate's parameters (validity, usages).
    pub fn issue_with(
        &self,
        names: &[&str],
        edit: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> Result<Issued, TlsError> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names)?;
        if let Some(first) = params.subject_alt_names.first() {
            let cn = match first {
                rcgen::SanType::DnsName(n) => n.to_string(),
                rcgen::SanType::IpAddress(ip) => ip.to_string(),
                _ => "scimlab".into(),
            };
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        edit(&mut params);
        let key = rcgen::KeyPair::generate()?;
        let issuer = rcgen::Issuer::new(ca_params()?, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server config for loopback (`127.0.0.1`, `localhost`, `::1`).
    pub fn loopback_server(&self) -> Result<ServerTls, TlsError> {
        let issued = self.issue(&["127.0.0.1", "localhost", "::1"])?;
        ServerTls::from_pem(&issued.cert_pem, &issued.key_pem, None)
    }
}

/// Writes a file only its owner can read (a key, a secret).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// How a client checks servers and presents itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM files of authorities trusted besides the system's.
    pub ca_certs: Vec<PathBuf>,
    /// A certificate chain and key (PEM files) for servers that ask for one (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Accept any server certificate: for a test server only, and said in every report.
    pub insecure: bool,
}

/// The system's trusted roots, read once.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

impl ClientTls {
    /// Trusting also the authority in this PEM file.
    pub fn trusting(ca: impl Into<PathBuf>) -> Self {
        ClientTls {
            ca_certs: vec![ca.into()],
            ..Default::default()
        }
    }

    pub fn config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(ring())))
        } else {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(system_roots().iter().cloned());
            for path in &self.ca_certs {
                for cert in certificates(&read(path)?, &path.display().to_string())? {
                    roots.add(cert).map_err(|e| TlsError::Pem {
                        what: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                }
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match &self.identity {
            Some((cert, key)) => {
                let chain = certificates(&read(cert)?, &cert.display().to_string())?;
                let key = private_key(&read(key)?, &key.display().to_string())?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// A reqwest client builder that uses this config (proxies from the environment). Build
    /// every client here: reqwest on rustls-with-ring has no TLS provider of its own, and
    /// `reqwest::Client::new()` panics.
    pub fn builder(&self) -> Result<reqwest::ClientBuilder, TlsError> {
        Ok(reqwest::Client::builder().tls_backend_preconfigured(self.config()?))
    }

    /// A client with this config and reqwest's defaults.
    pub fn client(&self) -> Result<reqwest::Client, TlsError> {
        Ok(self.builder()?.build()?)
    }
}

/// TLS for one server and the servers it calls (a connector's product, an IdP's apps).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// `None`: plain HTTP.
    pub server: Option<ServerTls>,
    pub client: ClientTls,
}

/// The TLS flags of a server binary: serve HTTPS with a certificate, trust extra authorities
/// for the calls it makes.
#[cfg(feature = "cli")]
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Trust this authority (PEM) too when calling HTTPS servers; repeatable.
    #[arg(long = "ca-cert")]
    pub ca_certs: Vec<PathBuf>,
}

#[cfg(feature = "cli")]
impl TlsArgs {
    pub fn tls(&self) -> Result<Tls, TlsError> {
        let server = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls::from_files(cert, key)?),
            _ => None,
        };
        let client = ClientTls {
            ca_certs: self.ca_certs.clone(),
            ..Default::default()
        };
        client.config()?;
        Ok(Tls { server, client })
    }
}

/// `--insecure`: every certificate passes, signatures are still checked for form.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a connection failed, when TLS is why: one line saying which certificate problem, or
/// `None` when the error chain holds no TLS error.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        // io::Error hides the error it wraps from `source()` (and hyper wraps one io::Error
        // in another): look inside.
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn describe(error: &rustls::Error) -> String {
    use rustls::Error as E;
    let refused = "the server's certificate was refused";
    match error {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => format!(
                "{refused}: it is signed by an authority this client does not trust \
                 (give that CA with --ca-cert FILE)"
            ),
            CertificateError::NotValidForName => {
                format!("{refused}: it is not valid for this host name")
            }
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => format!(
                "{refused}: it is not valid for host {expected:?} (it names {})",
                presented.join(", ")
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("{refused}: it has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("{refused}: it is not valid yet")
            }
            CertificateError::Revoked => format!("{refused}: it has been revoked"),
            other => format!("{refused}: {other:?}"),
        },
        E::AlertReceived(alert) => format!(
            "the server ended the TLS handshake ({alert:?}); if it wants a client certificate, \
             give --client-cert and --client-cert-key"
        ),
        E::InvalidMessage(_) => "the server did not answer in TLS (is it plain http://?)".into(),
        other => format!("TLS failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_in_a_folder_is_the_same_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = Authority::open(dir.path()).unwrap();
        let again = Authority::open(dir.path()).unwrap();
        assert_eq!(first.ca_pem, again.ca_pem);
        assert_eq!(first.key.serialize_pem(), again.key.serialize_pem());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the CA key is readable by others");
        }
        // A certificate issued after the reopen is accepted by a client trusting the first CA.
        again.loopback_server().unwrap();
        let client = ClientTls::trusting(dir.path().join("ca.pem")).config();
        assert!(client.is_ok());
    }

    #[test]
    fn bad_pem_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = ClientTls::trusting(&ca).config().unwrap_err().to_string();
        assert!(
            e.contains("ca.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let missing = ClientTls::trusting(dir.path().join("nope.pem")).config();
        assert!(missing.unwrap_err().to_string().contains("nope.pem"));
    }
}
