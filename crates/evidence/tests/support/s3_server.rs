//! A real S3-compatible server for tests: moto's standalone server, run by
//! `tests/s3_server.py` with `ANCHOR_PYTHON` (the venv `.ci/run` makes).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use anchor_evidence::store::S3Config;
use secrecy::SecretString;

/// moto's server on a free port; stopped when dropped.
pub(crate) struct S3Server {
    child: Child,
    pub(crate) endpoint: String,
}

impl S3Server {
    pub(crate) fn start() -> Self {
        let python = std::env::var("ANCHOR_PYTHON").unwrap_or_else(|_| "/var/tmp/anchor-pyvenv/bin/python".to_owned());
        let mut child = Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../crates/evidence/tests/s3_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{python} with moto[server] is needed (.ci/run installs it): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("moto did not start: {line:?}"));
        Self { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    pub(crate) fn bucket(&self, name: &str, secret: &str) -> S3Config {
        S3Config {
            endpoint: self.endpoint.clone(),
            bucket: name.to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: "anchor-test".to_owned(),
            secret_access_key: SecretString::from(secret.to_owned()),
            path_style: true,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
