//! `hancha reminders` against a real node: the 催办通知书 go to exactly the inflow women the
//! registry shows without a valid certificate, once per person and period, and what is written
//! reads right through the DOM of the page and in the township office's CSV.
//!
//! (How a page looks when printed: tests/reminder_rendering.rs.)
//!
//! The registry (鼎城区 430703; T1 玉霞街道, T2 红云街道):
//!
//! | who | flow | township | sex, age | certificate | reminded |
//! |---|---|---|---|---|---|
//! | A | inflow | T1 | woman 30 | none | yes: not held |
//! | B | inflow | T1 | woman 30 | valid until next year | no |
//! | C | inflow | T1 | woman 30 | `valid`, but its date was yesterday | yes: expired |
//! | D | inflow | T1 | man 30 | none | no |
//! | E | inflow | T1 | woman 55 | none | no |
//! | F | inflow | T2 | woman 25 | revoked | yes |
//! | G | inflow | none | woman 40 | nothing recorded | yes (county-wide runs only) |
//! | O | outflow | T1 | woman 30 | none | no: she lives elsewhere |

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{Days, Months, NaiveDate};
use common::*;
use hancha::domain::division::{CountyCode, TownshipCode, townships_of};
use hancha::domain::person::Person;
use hancha::domain::report::ReportPeriod;
use hancha::domain::resident_id::{ResidentId, today_in_china};
use hancha::domain::vocabulary::CertificateStatus;
use scraper::{Html, Selector};

/// The registry of the module documentation, on a running 鼎城区 node.
struct Fixture {
    cluster: Cluster,
    /// A, C, F, G: who must be reminded, with their names.
    reminded: BTreeMap<String, ResidentId>,
    /// The current quarter.
    period: ReportPeriod,
    townships: [TownshipCode; 2],
    /// Scratch space for output directories.
    scratch: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
        let today = today_in_china();
        let all = townships_of(CountyCode::parse(DINGCHENG).unwrap());
        let (t1, t2) = (all[0], all[1]);
        let aged = |years: u32| today.checked_sub_months(Months::new(12 * years)).unwrap() - Days::new(40);
        let mut sequence = 0;
        let mut id = |address: &str, born: NaiveDate, female: bool| {
            sequence += 2;
            let sequence = if female { sequence } else { sequence + 1 };
            resident_id(&format!("{address}{}{sequence:03}", born.format("%Y%m%d")))
        };
        let person = |id: &ResidentId,
                      name: &str,
                      township: Option<TownshipCode>,
                      status: Option<CertificateStatus>,
                      until: Option<NaiveDate>| {
            let mut person = inflow_person(id.clone(), XINHUA, DINGCHENG);
            person.name = name.to_string();
            person.status.township = township;
            person.status.certificate_status = status;
            person.status.certificate_valid_until = until;
            person
        };
        let none = Some(CertificateStatus::None);
        let valid = Some(CertificateStatus::Valid);
        let next_year = today.checked_add_months(Months::new(12));
        // A's name would be markup if it were not escaped.
        let (a, b, c) = (
            id(XINHUA, aged(30), true),
            id(XINHUA, aged(30), true),
            id(XINHUA, aged(30), true),
        );
        let (d, e, f) = (
            id(XINHUA, aged(30), false),
            id(XINHUA, aged(55), true),
            id(XINHUA, aged(25), true),
        );
        let (g, o) = (id(XINHUA, aged(40), true), id(DINGCHENG, aged(30), true));
        let mut outflow = outflow_person(o.clone(), DINGCHENG, XINHUA);
        outflow.name = "欧阳红".into();
        outflow.status.township = Some(t1);
        outflow.status.certificate_status = none;
        let registry: Vec<Person> = vec![
            person(&a, "李<b>娜</b> & 张", Some(t1), none, None),
            person(&b, "王芳", Some(t1), valid, next_year),
            person(&c, "陈静", Some(t1), valid, today.pred_opt()),
            person(&d, "刘伟", Some(t1), none, None),
            person(&e, "赵敏", Some(t1), none, None),
            person(&f, "孙丽", Some(t2), Some(CertificateStatus::Revoked), None),
            person(&g, "周梅", None, None, None),
            outflow,
        ];
        cluster
            .node(DINGCHENG)
            .store()
            .upsert_persons(&registry)
            .await
            .unwrap();
        let reminded = [("李<b>娜</b> & 张", a), ("陈静", c), ("孙丽", f), ("周梅", g)]
            .into_iter()
            .map(|(name, id)| (name.to_string(), id))
            .collect();
        Fixture {
            cluster,
            reminded,
            period: ReportPeriod::current_quarter(today),
            townships: [t1, t2],
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `hancha reminders --node <鼎城区's operator API> <args>`.
    async fn reminders(&self, args: &[&str]) -> Output {
        let address = self.cluster.operator_address(DINGCHENG).to_string();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_hancha"))
                .arg("reminders")
                .arg("--node")
                .arg(address)
                .args(args)
                .env_remove("HANCHA_NODE")
                .env("NO_COLOR", "1")
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run hancha reminders")
        })
        .await
        .unwrap()
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    async fn recorded(&self) -> i64 {
        count(self.cluster.node(DINGCHENG), "SELECT count(*) FROM reminders").await
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(output)
}

/// The files in `dir` by extension.
fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    found.sort();
    found
}

/// What a page says, read through its DOM: the text of the element with each id, and more.
struct Page {
    title: String,
    heading: String,
    fields: BTreeMap<&'static str, String>,
    scripts: usize,
    bring: Vec<String>,
}

fn read_page(path: &Path) -> Page {
    let document = Html::parse_document(&std::fs::read_to_string(path).unwrap());
    let text = |selector: &str| -> String {
        let selector = Selector::parse(selector).unwrap();
        document
            .select(&selector)
            .next()
            .map(|element| element.text().collect::<String>())
            .unwrap_or_else(|| panic!("{selector:?} in {}", path.display()))
    };
    let mut fields = BTreeMap::new();
    for id in [
        "reference",
        "name",
        "missing",
        "origin",
        "deadline",
        "office",
        "issued-on",
    ] {
        fields.insert(id, text(&format!("#{id}")));
    }
    Page {
        title: text("title"),
        heading: text("h1"),
        fields,
        scripts: document.select(&Selector::parse("script").unwrap()).count(),
        bring: document
            .select(&Selector::parse("#bring li").unwrap())
            .map(|li| li.text().collect())
            .collect(),
    }
}

fn chinese_date(day: NaiveDate) -> String {
    day.format("%Y年%-m月%-d日").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_inflow_woman_without_a_valid_certificate_gets_one_reminder_per_period() {
    let fixture = Fixture::start().await;
    let out = fixture.dir("county");
    let text = succeeded(&fixture.reminders(&["--out", out.to_str().unwrap()]).await);
    assert!(text.contains("issued now        4"), "{text}");
    assert_eq!(fixture.recorded().await, 4);

    // The directory and every file are for their owner only.
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out), 0o700);
    let pages = files(&out, "html");
    assert_eq!(pages.len(), 4, "{pages:?}");
    let lists = files(&out, "csv");
    assert_eq!(lists.len(), 1);
    for file in pages.iter().chain(&lists) {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }

    // Each page, read through its DOM, names its person and says what to do by when.
    let deadline = chinese_date(today_in_china() + Days::new(30));
    let mut named = BTreeMap::new();
    for path in &pages {
        let page = read_page(path);
        assert_eq!(page.heading, "催办通知书");
        assert_eq!(page.scripts, 0);
        let reference = &page.fields["reference"];
        assert!(page.title.ends_with(reference.as_str()));
        assert_eq!(path.file_stem().unwrap().to_str().unwrap(), reference);
        assert!(
            reference.starts_with(&format!("{DINGCHENG}-{}-", fixture.period)),
            "{reference}"
        );
        assert_eq!(page.fields["deadline"], deadline);
        assert_eq!(page.fields["origin"], "湖南省娄底市新化县");
        assert!(
            page.bring.len() >= 2 && page.bring[0].contains("新化县") && page.bring[0].contains("婚育证明")
        );
        assert!(page.bring[1].contains("居民身份证"), "{:?}", page.bring);
        named.insert(page.fields["name"].clone(), page);
    }
    let names: Vec<&String> = named.keys().collect();
    let expected: Vec<&String> = fixture.reminded.keys().collect();
    assert_eq!(names, expected, "the markup in A's name is text, not markup");
    assert_eq!(named["陈静"].fields["missing"], "所持婚育证明已过有效期");
    assert_eq!(named["李<b>娜</b> & 张"].fields["missing"], "尚未提交婚育证明");
    assert_eq!(named["孙丽"].fields["missing"], "所持婚育证明已被注销");
    assert_eq!(named["陈静"].fields["office"], "湖南省常德市鼎城区玉霞街道");
    assert_eq!(named["孙丽"].fields["office"], "湖南省常德市鼎城区红云街道");
    assert_eq!(
        named["周梅"].fields["office"],
        "湖南省常德市鼎城区流动人口服务窗口"
    );

    // The office's list: BOM, one row per reminder, full ID numbers kept for Excel.
    let bytes = std::fs::read(&lists[0]).unwrap();
    assert!(
        bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "UTF-8 with a byte-order mark"
    );
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..3], ["编号", "姓名", "公民身份号码"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let id = &fixture.reminded[&row[1]];
        assert_eq!(&row[2], format!("=\"{id}\""));
        assert_eq!(&row[6], "湖南省娄底市新化县");
        assert_eq!(&row[8], (today_in_china() + Days::new(30)).to_string());
        assert!(out.join(&row[9]).is_file(), "{}", &row[9]);
    }

    // Issued: audited with counts, and no name or ID number in the audit log.
    let audit = fixture
        .cluster
        .node(DINGCHENG)
        .store()
        .recent_operator_access(5)
        .await
        .unwrap();
    let issued = audit
        .iter()
        .find(|record| record.access.action == "issue_reminders")
        .expect("the issue is audited");
    let reason = issued.access.reason.clone().unwrap_or_default();
    assert!(reason.contains("issued 4"), "{reason}");
    let log = count(
        fixture.cluster.node(DINGCHENG),
        &format!(
            "SELECT count(*) FROM audit_log WHERE concat_ws(' ', reason, kind, outcome) ~ '{}|陈静|孙丽'",
            fixture.reminded["孙丽"]
        ),
    )
    .await;
    assert_eq!(log, 0, "no name or ID number in the audit log");

    // Again in the same period: nothing new, nothing written, and it says so.
    let again = succeeded(&fixture.reminders(&["--out", out.to_str().unwrap()]).await);
    assert!(again.contains("issued now        0"), "{again}");
    assert!(again.contains("already issued    4"), "{again}");
    assert!(again.contains("nothing new"), "{again}");
    assert_eq!(fixture.recorded().await, 4);
    assert_eq!(files(&out, "html").len(), 4);
    assert_eq!(files(&out, "csv").len(), 1);

    // --reissue writes the same reminders again, issuing nothing.
    let reprint = fixture.dir("reprint");
    let text = succeeded(
        &fixture
            .reminders(&["--reissue", "--out", reprint.to_str().unwrap()])
            .await,
    );
    assert!(text.contains("issued now        0"), "{text}");
    let reprinted: Vec<String> = files(&reprint, "html")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let first: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(reprinted, first, "the same references");
    assert_eq!(fixture.recorded().await, 4);

    // Another period is another round of reminders.
    let previous = fixture.period.previous().label();
    let earlier = fixture.dir("previous");
    let text = succeeded(
        &fixture
            .reminders(&["--period", &previous, "--out", earlier.to_str().unwrap()])
            .await,
    );
    assert!(text.contains("issued now        4"), "{text}");
    assert_eq!(fixture.recorded().await, 8);

    // A year or a month would overlap the quarters: refused, nothing issued.
    let year = fixture.dir("year");
    let year_label = fixture.period.label()[..4].to_string();
    let refused = fixture
        .reminders(&["--period", &year_label, "--out", year.to_str().unwrap()])
        .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("per quarter"), "{stderr}");
    assert_eq!(fixture.recorded().await, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_gets_its_own_reminders_and_the_county_the_rest() {
    let fixture = Fixture::start().await;
    let [t1, t2] = fixture.townships.map(|t| t.as_str().to_string());
    let out = fixture.dir("t2");
    let text = succeeded(
        &fixture
            .reminders(&["--township", &t2, "--out", out.to_str().unwrap()])
            .await,
    );
    assert!(text.contains("issued now        1"), "{text}");
    let pages = files(&out, "html");
    assert_eq!(pages.len(), 1);
    assert_eq!(read_page(&pages[0]).fields["name"], "孙丽");

    let out = fixture.dir("t1");
    let text = succeeded(
        &fixture
            .reminders(&["--township", &t1, "--out", out.to_str().unwrap()])
            .await,
    );
    assert!(text.contains("issued now        2"), "{text}");
    let mut names: Vec<String> = files(&out, "html")
        .iter()
        .map(|p| read_page(p).fields["name"].clone())
        .collect();
    names.sort();
    assert_eq!(names, ["李<b>娜</b> & 张", "陈静"]);

    // The county-wide run finds only G left: she has no township.
    let out = fixture.dir("county");
    let text = succeeded(&fixture.reminders(&["--out", out.to_str().unwrap()]).await);
    assert!(text.contains("issued now        1"), "{text}");
    assert!(text.contains("already issued    3"), "{text}");
    let pages = files(&out, "html");
    assert_eq!(read_page(&pages[0]).fields["name"], "周梅");
    assert_eq!(fixture.recorded().await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_issued_into_a_directory_others_can_read_or_for_another_countys_township() {
    let fixture = Fixture::start().await;
    let open = fixture.dir("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = fixture.reminders(&["--out", open.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("chmod 700") && stderr.contains("nothing was issued"),
        "{stderr}"
    );
    assert_eq!(fixture.recorded().await, 0);
    assert!(files(&open, "html").is_empty());

    let xinhua_township = townships_of(CountyCode::parse(XINHUA).unwrap())[0];
    let out = fixture.dir("elsewhere");
    let output = fixture
        .reminders(&[
            "--township",
            xinhua_township.as_str(),
            "--out",
            out.to_str().unwrap(),
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("township"), "{stderr}");
    assert_eq!(fixture.recorded().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_office_issues_its_own_townships_reminders_only() {
    use hancha::proto::operator as pb;
    let offices = TownshipOffices::start().await;
    // Both persons lose their certificates: each township has one woman to remind.
    let lapsed: Vec<Person> = [
        (&offices.person_a, offices.township_a),
        (&offices.person_b, offices.township_b),
    ]
    .into_iter()
    .map(|(id, township)| {
        let mut person = inflow_person(id.clone(), XINHUA, DINGCHENG);
        person.status.township = Some(township);
        person.status.certificate_status = Some(CertificateStatus::Expired);
        person
    })
    .collect();
    let node = offices.cluster.node(DINGCHENG);
    node.store().upsert_persons(&lapsed).await.unwrap();
    let township_a = offices.township_a.to_string();
    let clerk = offices.township_operator("yuxia-clerk", &[&township_a]);
    let mut client = offices.client(&clerk).await;

    let own = client
        .issue_reminders(pb::IssueRemindersRequest::default())
        .await
        .expect("its own township's reminders")
        .into_inner();
    assert_eq!(own.issued, 1);
    let ids: Vec<&str> = own.reminders.iter().map(|r| r.resident_id.as_str()).collect();
    assert_eq!(ids, [offices.person_a.as_str()]);
    assert_eq!(own.reminders[0].issued_by, "yuxia-clerk");
    assert_eq!(own.reminders[0].township, township_a);

    let other = client
        .issue_reminders(pb::IssueRemindersRequest {
            township: offices.township_b.to_string(),
            ..Default::default()
        })
        .await
        .expect_err("another township's reminders");
    assert_eq!(other.code(), tonic::Code::PermissionDenied, "{other:?}");
    assert_eq!(
        count(node, "SELECT count(*) FROM reminders").await,
        1,
        "nothing issued for the other township"
    );
    let audit = offices.audit_text().await;
    assert!(audit.contains("issue_reminders"), "{audit}");
    assert!(!audit.contains(offices.person_a.as_str()) && !audit.contains(offices.person_b.as_str()));
}
