//! 鼎城区 with its operator API in remote mode (mutual TLS with an operator CA), two inquiries
//! from 新化县 waiting for an answer by hand — one about a person of each of two 鼎城区
//! townships — and operator certificates minted for the test.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{Duration as TimeDelta, Utc};
use hancha::config::Limits;
use hancha::domain::division::{CountyCode, TownshipCode, townships_of};
use hancha::domain::resident_id::ResidentId;
use hancha::proto::operator::operator_client::OperatorClient;
use hancha::tls::County;
use hancha::tls::dev::TestPki;
use tonic::transport::Channel;
use uuid::Uuid;

use super::*;

/// A certificate and key on disk, as the CLI takes them.
pub type CertificateFiles = (PathBuf, PathBuf);

/// See the module documentation.
pub struct TownshipOffices {
    pub cluster: Cluster,
    /// 鼎城区's operator API (TLS).
    pub address: SocketAddr,
    /// The CA the node trusts for operators.
    pub operator_ca: TestPki,
    /// The county CA's certificate (what `--node-ca` names).
    pub node_ca: PathBuf,
    /// The two townships of 鼎城区 the persons live in.
    pub township_a: TownshipCode,
    pub township_b: TownshipCode,
    /// The persons (新化县's outflow, 鼎城区's inflow) living in township A and B.
    pub person_a: ResidentId,
    pub person_b: ResidentId,
    /// The inquiries from 新化县 about them, pending at 鼎城区.
    pub inquiry_a: Uuid,
    pub inquiry_b: Uuid,
}

impl TownshipOffices {
    /// Starts the cluster with the default test limits.
    pub async fn start() -> TownshipOffices {
        Self::start_with(Limits {
            retry_initial: std::time::Duration::from_millis(50),
            retry_max: std::time::Duration::from_millis(500),
            poll_interval: std::time::Duration::from_millis(100),
            ..Limits::default()
        })
        .await
    }

    /// Starts the cluster with `limits` on every node.
    pub async fn start_with(limits: Limits) -> TownshipOffices {
        let agreement = answered_by_hand(DINGCHENG, XINHUA, DINGCHENG);
        let mut cluster = Cluster::start_with(&[DINGCHENG, XINHUA], &[agreement], limits).await;
        let operator_ca = TestPki::with_common_name("hancha test operator CA").unwrap();
        let anchors = cluster.path().join("operator-ca.pem");
        std::fs::write(&anchors, operator_ca.ca_pem()).unwrap();
        cluster.restart_with_operator_anchors(DINGCHENG, anchors).await;
        let address = cluster.operator_address(DINGCHENG);

        let townships = townships_of(CountyCode::parse(DINGCHENG).unwrap());
        let (township_a, township_b) = (townships[0], townships[1]);
        let person_a = synthetic_id(XINHUA, 11);
        let person_b = synthetic_id(XINHUA, 12);
        let mut in_b = inflow_person(person_b.clone(), XINHUA, DINGCHENG);
        in_b.status.township = Some(township_b);
        cluster
            .node(DINGCHENG)
            .store()
            .upsert_persons(&[inflow_person(person_a.clone(), XINHUA, DINGCHENG), in_b])
            .await
            .unwrap();
        let drafts = [&person_a, &person_b]
            .into_iter()
            .map(|id| hancha::node::InquiryDraft {
                kind: hancha::domain::vocabulary::InquiryKind::OutflowStatus,
                priority: hancha::domain::vocabulary::Priority::Normal,
                subject: hancha::domain::message::Subject {
                    resident_id: id.clone(),
                    certificate_number: None,
                },
                message_id: None,
            })
            .collect();
        let (queued, _) = cluster
            .node(XINHUA)
            .send_inquiries(CountyCode::parse(DINGCHENG).unwrap(), drafts)
            .await
            .unwrap();
        let (inquiry_a, inquiry_b) = (queued[0].message_id, queued[1].message_id);
        let responder = cluster.node(DINGCHENG);
        for id in [inquiry_a, inquiry_b] {
            eventually("pending at 鼎城区", || async {
                responder.store().inquiry(id).await.unwrap()
            })
            .await;
        }
        TownshipOffices {
            node_ca: cluster.path().join("ca.pem"),
            cluster,
            address,
            operator_ca,
            township_a,
            township_b,
            person_a,
            person_b,
            inquiry_a,
            inquiry_b,
        }
    }

    /// Writes `(cert_pem, key_pem)` as `<name>.pem` / `<name>-key.pem` in the cluster's
    /// directory.
    pub fn write(&self, name: &str, (cert, key): (String, String)) -> CertificateFiles {
        let dir = self.cluster.path();
        let paths = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}-key.pem")),
        );
        std::fs::write(&paths.0, cert).unwrap();
        std::fs::write(&paths.1, key).unwrap();
        paths
    }

    /// A county-wide operator certificate from the operator CA.
    pub fn county_operator(&self, name: &str) -> CertificateFiles {
        let now = Utc::now();
        let pem = self
            .operator_ca
            .issue_operator(name, now - TimeDelta::hours(1), now + TimeDelta::days(1))
            .unwrap();
        self.write(name, pem)
    }

    /// An operator certificate naming `townships` (normally one) from the operator CA.
    pub fn township_operator(&self, name: &str, townships: &[&str]) -> CertificateFiles {
        let now = Utc::now();
        let pem = self
            .operator_ca
            .issue_township_operator(
                name,
                townships,
                now - TimeDelta::hours(1),
                now + TimeDelta::days(1),
            )
            .unwrap();
        self.write(name, pem)
    }

    /// An operator client over mutual TLS presenting `certificate`.
    pub async fn client(&self, certificate: &CertificateFiles) -> OperatorClient<Channel> {
        OperatorClient::new(self.channel(certificate).await)
    }

    /// A mutual-TLS channel to the operator API presenting `certificate`, for any client.
    pub async fn channel(&self, certificate: &CertificateFiles) -> Channel {
        let config = hancha::tls::operator_client_config(
            &certificate.0,
            &certificate.1,
            &self.node_ca,
            County::parse(DINGCHENG).unwrap(),
        )
        .unwrap();
        hancha::tls::connect(&self.address.to_string(), config)
            .await
            .expect("connect to the operator API")
    }

    /// The operator access records of 鼎城区, oldest first.
    pub async fn access_log(&self) -> Vec<hancha::store::audit::OperatorAccess> {
        let mut records: Vec<_> = self
            .cluster
            .node(DINGCHENG)
            .store()
            .recent_operator_access(10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|record| record.access)
            .collect();
        records.reverse();
        records
    }

    /// Every text in 鼎城区's audit log, one line per record, to look for ID numbers in (all
    /// but the agreement hash: 64 hex digits may hold a long run of decimal ones).
    pub async fn audit_text(&self) -> String {
        let pool = database(self.cluster.node(DINGCHENG).store()).await;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT concat_ws(' | ', peer_county, direction, message_id, kind, agreement_id, outcome, reason,
                              principal, principal_scope, action)
             FROM audit_log ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows.into_iter().map(|(row,)| row).collect::<Vec<_>>().join("\n")
    }
}
