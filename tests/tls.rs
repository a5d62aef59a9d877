//! HTTPS: skopeo push and pull over TLS, and the certificate reloaded without a restart.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn self_signed(dir: &std::path::Path, cn: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("tls.key.new"))
        .arg("-out")
        .arg(dir.join("tls.crt.new"))
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // swap both files in place (rename is atomic)
    std::fs::rename(dir.join("tls.key.new"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("tls.crt.new"), dir.join("tls.crt")).unwrap();
}

fn served_subject(port: u16) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -subject"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn skopeo_over_https_and_certificate_reload() {
    let certs = tempfile::tempdir().unwrap();
    self_signed(certs.path(), "first");
    let tls_port = free_port();
    let stack = Stack::start_tls(tls_port, certs.path());
    assert!(served_subject(tls_port).contains("first"));

    let src = tempfile::tempdir().unwrap();
    let digest = oci_image(src.path(), "v1", 9, &[50_000]);
    let dest = format!("docker://127.0.0.1:{tls_port}/demo/tls:v1");
    let (ok, out) = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("--dest-creds=x:{DEV}"),
        &format!("oci:{}:v1", src.path().display()),
        &dest,
    ]);
    assert!(ok, "{out}\n{}", stack.gateway_log());
    let back = tempfile::tempdir().unwrap();
    let (ok, out) = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("--src-creds=x:{DEV}"),
        &dest,
        &format!("oci:{}:v1", back.path().display()),
    ]);
    assert!(ok, "{out}");
    assert_eq!(oci_manifest_digest(back.path(), "v1"), digest);

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
