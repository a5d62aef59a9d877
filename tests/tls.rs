//! HTTPS: skopeo push and pull over TLS, the certificate reloaded without a restart, client
//! certificates (mutual TLS) and an upstream registry serving HTTPS under a private CA.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate `<name>.crt` + `<name>.key` in `dir` (for 127.0.0.1); with the
/// openssl defaults it may sign others (a CA).
fn self_signed_as(dir: &Path, name: &str, cn: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={cn}"),
    );
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &crt,
        ],
        dir,
    );
}

/// A private CA in `dir` (`ca.crt`, `ca.key`).
fn make_ca(dir: &Path) {
    self_signed_as(dir, "ca", "portcullis test CA");
}

/// `<name>.crt` and `<name>.key` issued by the CA in `dir`, with the given v3 extensions.
fn issue(dir: &Path, name: &str, cn: &str, extensions: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
        dir,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
        dir,
    );
}

const SERVER_EXT: &str = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT: &str = "extendedKeyUsage=clientAuth\n";

fn self_signed(dir: &Path, cn: &str) {
    self_signed_as(dir, "tls.new", cn);
    // swap both files in place (rename is atomic)
    std::fs::rename(dir.join("tls.new.key"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("tls.new.crt"), dir.join("tls.crt")).unwrap();
}

fn served_subject(port: u16) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -subject"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// skopeo push of a fresh one-layer image to `dest` and pull back; `dest_tls` / `src_tls` are
/// the TLS flags of each direction. Asserts both worked and the digest came back unchanged.
fn push_and_pull(stack: &Stack, dest: &str, dest_tls: &[&str], src_tls: &[&str], seed: u64) {
    let src = tempfile::tempdir().unwrap();
    let digest = oci_image(src.path(), "v1", seed, &[50_000]);
    let creds = format!("x:{DEV}");
    let local = format!("oci:{}:v1", src.path().display());
    let mut args = vec!["copy", "--dest-creds", &creds];
    args.extend_from_slice(dest_tls);
    args.extend([local.as_str(), dest]);
    let (ok, out) = skopeo(&args);
    assert!(ok, "{out}\n{}", stack.gateway_log());
    let back = tempfile::tempdir().unwrap();
    let local = format!("oci:{}:v1", back.path().display());
    let mut args = vec!["copy", "--src-creds", &creds];
    args.extend_from_slice(src_tls);
    args.extend([dest, local.as_str()]);
    let (ok, out) = skopeo(&args);
    assert!(ok, "{out}");
    assert_eq!(oci_manifest_digest(back.path(), "v1"), digest);
}

#[test]
fn skopeo_over_https_and_certificate_reload() {
    let certs = tempfile::tempdir().unwrap();
    self_signed(certs.path(), "first");
    let tls_port = free_port();
    let stack = Stack::start_tls(tls_port, certs.path());
    assert!(served_subject(tls_port).contains("first"));

    let dest = format!("docker://127.0.0.1:{tls_port}/demo/tls:v1");
    push_and_pull(
        &stack,
        &dest,
        &["--dest-tls-verify=false"],
        &["--src-tls-verify=false"],
        9,
    );

    // a new certificate is served without a restart
    std::thread::sleep(Duration::from_millis(1100));
    self_signed(certs.path(), "second");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if served_subject(tls_port).contains("second") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// curl over HTTPS trusting `ca`; Some(status) or None when the connection or handshake failed.
fn curl_status(url: &str, ca: &Path, client: Option<(&Path, &Path)>) -> Option<u16> {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(ca);
    if let Some((cert, key)) = client {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = c.arg(url).output().expect("curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).parse().ok())
        .flatten()
}

#[test]
fn client_certificates_and_an_upstream_under_a_private_ca() {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    make_ca(p);
    issue(p, "tls", "gateway", SERVER_EXT);
    issue(p, "registry", "registry", SERVER_EXT);
    issue(p, "client", "ci-robot", CLIENT_EXT);
    // a client certificate from somebody else's CA
    let other = tempfile::tempdir().unwrap();
    make_ca(other.path());
    issue(other.path(), "client", "intruder", CLIENT_EXT);

    let tls_port = free_port();
    let ca = p.join("ca.crt");
    // the bundle client certificates must chain to (the same CA, in a file of its own)
    let clients_ca = p.join("clients-ca.crt");
    std::fs::copy(&ca, &clients_ca).unwrap();
    let mut stack = Stack::start_opts(Opts {
        gateway_extra: format!(
            "{}tls_client_ca = \"{}\"\n",
            tls_listener(tls_port, p),
            clients_ca.display()
        ),
        registry_tls: Some((p.join("registry.crt"), p.join("registry.key"))),
        upstream_extra: format!("ca_file = \"{}\"\n", ca.display()),
        ..Opts::default()
    });
    let https = |path: &str| format!("https://127.0.0.1:{tls_port}{path}");
    let client = (p.join("client.crt").clone(), p.join("client.key").clone());
    let mine = Some((client.0.as_path(), client.1.as_path()));
    let theirs = (
        other.path().join("client.crt"),
        other.path().join("client.key"),
    );

    // the HTTPS listener wants a certificate from the configured CA
    assert_eq!(curl_status(&https("/healthz"), &ca, mine), Some(200));
    assert_eq!(curl_status(&https("/healthz"), &ca, None), None);
    assert_eq!(
        curl_status(&https("/healthz"), &ca, Some((&theirs.0, &theirs.1))),
        None
    );
    // the upstream (HTTPS, private CA) is reachable; plain HTTP on loopback stays as it was
    assert_eq!(curl_status(&https("/readyz"), &ca, mine), Some(200));
    assert_eq!(probe::get_status(&stack.url("/v2/")), Some(401));

    // skopeo with a client certificate: push and pull, verifying the gateway against the CA
    let certs = tempfile::tempdir().unwrap();
    // skopeo's cert dir: *.crt are trusted CAs, *.cert + *.key the client certificate
    let give_client_cert = |dir: &Path| {
        for (from, to) in [("client.crt", "client.cert"), ("client.key", "client.key")] {
            std::fs::copy(p.join(from), dir.join(to)).unwrap();
        }
    };
    std::fs::copy(p.join("ca.crt"), certs.path().join("ca.crt")).unwrap();
    give_client_cert(certs.path());
    let cert_dir = certs.path().to_str().unwrap();
    let dest = format!("docker://127.0.0.1:{tls_port}/demo/mtls:v1");
    push_and_pull(
        &stack,
        &dest,
        &["--dest-cert-dir", cert_dir],
        &["--src-cert-dir", cert_dir],
        11,
    );

    let creds = format!("--creds=x:{DEV}");
    let inspect = || skopeo(&["inspect", "--cert-dir", cert_dir, &creds, &dest]);

    // without a client certificate skopeo gets no further than the handshake
    std::fs::remove_file(certs.path().join("client.cert")).unwrap();
    std::fs::remove_file(certs.path().join("client.key")).unwrap();
    let (ok, out) = inspect();
    assert!(!ok, "{out}");

    // the client CA bundle is replaced by the other CA: picked up without a restart
    std::thread::sleep(Duration::from_millis(1100));
    let staged = p.join("clients-ca.new");
    std::fs::copy(other.path().join("ca.crt"), &staged).unwrap();
    std::fs::rename(&staged, &clients_ca).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while curl_status(&https("/healthz"), &ca, Some((&theirs.0, &theirs.1))) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the new client CA was not picked up"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(curl_status(&https("/healthz"), &ca, mine), None);
    std::fs::copy(&ca, &staged).unwrap();
    std::fs::rename(&staged, &clients_ca).unwrap();

    // without upstream.ca_file the upstream's certificate is not trusted: fail closed
    let cfg = stack.dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(&format!("ca_file = \"{}\"", ca.display()), ""),
    )
    .unwrap();
    stack.restart_gateway();
    give_client_cert(certs.path());
    assert_eq!(curl_status(&https("/readyz"), &ca, mine), Some(503));
    let (ok, out) = inspect();
    assert!(!ok, "{out}");
}
