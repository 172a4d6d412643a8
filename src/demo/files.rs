//! The development certificates and the two agreements, built into the binary so that
//! `hancha demo` works from any directory, and written to a scratch directory at start because
//! a node reads them from files like any other.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{DINGCHENG, SHAODONG, XINHUA};

/// The development county CA: every node trusts it (its key is public: development only).
const CA: &str = include_str!("../../certs-dev/ca.pem");

/// The development county CA's key, with which the demo renews a node certificate.
const CA_KEY: &str = include_str!("../../certs-dev/ca-key.pem");

/// Each county's development certificate and key.
const IDENTITIES: [(&str, &str, &str); 3] = [
    (
        DINGCHENG,
        include_str!("../../certs-dev/430703.pem"),
        include_str!("../../certs-dev/430703-key.pem"),
    ),
    (
        SHAODONG,
        include_str!("../../certs-dev/430582.pem"),
        include_str!("../../certs-dev/430582-key.pem"),
    ),
    (
        XINHUA,
        include_str!("../../certs-dev/431322.pem"),
        include_str!("../../certs-dev/431322-key.pem"),
    ),
];

/// The agreements as both counties signed them: file name, parties, text.
const AGREEMENTS: [(&str, [&str; 2], &str); 2] = [
    (
        "430703-431322.toml",
        [DINGCHENG, XINHUA],
        include_str!("../../examples/agreements/430703-431322.toml"),
    ),
    (
        "430703-430582.toml",
        [DINGCHENG, SHAODONG],
        include_str!("../../examples/agreements/430703-430582.toml"),
    ),
];

/// `text` (an agreement between `parties`) with its signatures replaced by both parties'
/// signatures with the development keys: what two counties do after amending an agreement.
pub fn signed_with_development_keys(text: &str, parties: [&str; 2]) -> anyhow::Result<String> {
    let mut signed = crate::node::strip_signatures(text);
    for party in parties {
        let identity = development_identity(party)?;
        signed = crate::node::sign_agreement(&signed, &identity, chrono::Utc::now())?;
    }
    Ok(signed)
}

/// `county`'s development identity: the certificate and key its node starts with.
pub fn development_identity(county: &str) -> anyhow::Result<crate::tls::NodeIdentity> {
    let Some((_, certificate, key)) = IDENTITIES.iter().find(|(code, _, _)| *code == county) else {
        anyhow::bail!("no development key for {county}");
    };
    Ok(crate::tls::NodeIdentity::from_pem(certificate, key)?)
}

/// A new certificate and key `(cert_pem, key_pem)` for `county` from the development county CA,
/// valid from an hour ago for `days`.
pub fn renewed_certificate(county: &str, days: u64) -> anyhow::Result<(String, String)> {
    let now = chrono::Utc::now();
    Ok(crate::tls::dev::issue_dev_county(
        CA,
        CA_KEY,
        county,
        now - chrono::Duration::hours(1),
        now + chrono::Days::new(days),
    )?)
}

/// Where one county's files were written.
#[derive(Clone, Debug)]
pub struct NodeFiles {
    /// The node's certificate.
    pub certificate: PathBuf,
    /// Its private key.
    pub private_key: PathBuf,
    /// The CA peers must chain to.
    pub trust_anchors: PathBuf,
    /// A directory holding only the agreements this county is party to, so that no node is
    /// handed an agreement it must ignore.
    pub agreements_dir: PathBuf,
}

/// A scratch directory with every county's files; removed by [`Scratch::remove`].
#[derive(Debug)]
pub struct Scratch {
    /// The directory itself, under the system's temporary directory.
    root: PathBuf,
}

impl Scratch {
    /// Creates the directory and writes the certificates and agreements into it.
    pub fn write() -> anyhow::Result<Scratch> {
        let root = std::env::temp_dir().join(format!(
            "hancha-demo-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
        let scratch = Scratch { root };
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        };
        write(&scratch.root.join("ca.pem"), CA)?;
        for (county, certificate, key) in IDENTITIES {
            let files = scratch.files(county);
            std::fs::create_dir_all(&files.agreements_dir)
                .with_context(|| format!("creating {}", files.agreements_dir.display()))?;
            write(&files.certificate, certificate)?;
            write(&files.private_key, key)?;
            for (name, parties, text) in AGREEMENTS {
                if parties.contains(&county) {
                    write(&files.agreements_dir.join(name), text)?;
                }
            }
        }
        Ok(scratch)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `county`'s files are.
    pub fn files(&self, county: &str) -> NodeFiles {
        let dir = self.root.join(county);
        NodeFiles {
            certificate: dir.join("node.pem"),
            private_key: dir.join("node-key.pem"),
            trust_anchors: self.root.join("ca.pem"),
            agreements_dir: dir.join("agreements"),
        }
    }

    /// Deletes the directory and everything in it, saying so if it cannot.
    pub fn remove(self) {
        if let Err(error) = std::fs::remove_dir_all(&self.root) {
            eprintln!("demo: could not remove {}: {error}", self.root.display());
        }
    }
}

impl Drop for Scratch {
    /// Whatever happened, the files do not outlive the demo (a no-op after [`Scratch::remove`]).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
