//! Console logins on 鼎城区's web listener with `require_login`, over real sockets on real
//! PostgreSQL: a page without a session leads to the login and back; five wrong passwords lock
//! an account (the right one is then refused too, in the words an unknown name gets) until
//! `hancha users unlock`, each attempt audited; the session cookie is HttpOnly and
//! SameSite=Strict and only its SHA-256 is stored; a township account sees its township only,
//! even by typing another's URL; logging out needs the form token and revokes the session; a
//! disabled account's session stops at once, an idle or old one ends; replicas count wrong
//! passwords together and share sessions; cookies are Secure over HTTPS; on loopback without
//! `require_login` a login is optional; `hancha users` makes, lists, disables and re-passwords
//! accounts.

mod common;

use std::net::SocketAddr;

use assert_cmd::Command;
use common::*;
use hancha::config::WebListener;
use hancha::store::Store;
use hancha::store::audit::OperatorAccess;
use hancha::web::logins::{hash_password, verify_password};
use hancha::web::tokens::digest as digest_of_session;

const PASSWORD: &str = "春天的花开了-2026";

/// 鼎城区's township offices with the web listener on loopback, logins required.
async fn offices_with_logins() -> (TownshipOffices, SocketAddr) {
    let mut offices = TownshipOffices::start().await;
    offices
        .cluster
        .restart_with_web(
            DINGCHENG,
            WebListener {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                require_login: Some(true),
                tls: None,
            },
        )
        .await;
    let address = offices.cluster.web_address(DINGCHENG);
    (offices, address)
}

fn store(offices: &TownshipOffices) -> &Store {
    offices.cluster.node(DINGCHENG).store()
}

/// An account made as `hancha users add` makes it.
async fn add_account(store: &Store, name: &str, township: Option<&str>) {
    let hash = tokio::task::spawn_blocking(|| hash_password(PASSWORD))
        .await
        .unwrap()
        .unwrap();
    store.add_console_account(name, township, &hash).await.unwrap();
}

/// `hancha users ARGS --config FILE` with `input` on standard input.
async fn users(config: &std::path::Path, arguments: &[&str], input: &str) -> std::process::Output {
    let mut command = Command::cargo_bin("hancha").expect("the hancha binary is built");
    command
        .arg("users")
        .args(arguments)
        .arg("--config")
        .arg(config)
        .env_remove("HANCHA_CONFIG")
        .write_stdin(input);
    output_of(command).await
}

/// `GET path` with the session cookie, if any.
async fn get(web: SocketAddr, path: &str, session: Option<&str>) -> HttpAnswer {
    let cookie = session.map(|secret| format!("hancha_session={secret}"));
    let headers: Vec<(&str, &str)> = cookie.iter().map(|cookie| ("Cookie", cookie.as_str())).collect();
    request_with_headers(web, "GET", path, &headers, None).await
}

/// `POST path` with a form body and the cookies given.
async fn post_form(web: SocketAddr, path: &str, cookies: &str, form: &str) -> HttpAnswer {
    request_with_headers(
        web,
        "POST",
        path,
        &[("Cookie", cookies)],
        Some(("application/x-www-form-urlencoded", form)),
    )
    .await
}

/// The value of the cookie `name` an answer sets.
fn set_cookie<'a>(answer: &'a HttpAnswer, name: &str) -> Option<&'a str> {
    answer
        .headers_named("set-cookie")
        .into_iter()
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
}

fn cookie_value<'a>(set_cookie: &'a str, name: &str) -> &'a str {
    set_cookie[name.len() + 1..].split(';').next().unwrap()
}

/// The `_csrf` value of the first form in a page.
fn form_token(body: &str) -> String {
    let start = body.find(r#"name="_csrf" value=""#).expect("a form token") + r#"name="_csrf" value=""#.len();
    body[start..].split('"').next().unwrap().to_string()
}

/// Fills in and posts the login form as a browser does (its token, its cookie), with `next`.
async fn log_in(web: SocketAddr, name: &str, password: &str, next: &str) -> HttpAnswer {
    let form = get(web, "/login", None).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let form_cookie = set_cookie(&form, "hancha_login_form").expect("the login form's cookie");
    let cookie = format!(
        "hancha_login_form={}",
        cookie_value(form_cookie, "hancha_login_form")
    );
    let body = format!(
        "_csrf={}&next={}&name={}&password={}",
        form_token(&form.body),
        urlencoding::encode(next),
        urlencoding::encode(name),
        urlencoding::encode(password)
    );
    post_form(web, "/login", &cookie, &body).await
}

/// The session secret of a successful login.
fn session_of(answer: &HttpAnswer) -> String {
    assert_eq!(answer.status, 303, "{}", answer.body);
    let cookie = set_cookie(answer, "hancha_session").expect("a session cookie");
    cookie_value(cookie, "hancha_session").to_string()
}

/// The console logins audited, oldest first.
async fn logins(offices: &TownshipOffices) -> Vec<OperatorAccess> {
    offices
        .access_log()
        .await
        .into_iter()
        .filter(|access| access.action.starts_with("console_"))
        .collect()
}

/// The refusal a login page shows.
fn refusal_shown(answer: &HttpAnswer) -> String {
    let start = answer
        .body
        .find(r#"id="login-refused""#)
        .expect("a refusal on the page");
    let from = answer.body[start..].find('>').unwrap() + start + 1;
    answer.body[from..].split('<').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_session_a_page_leads_to_the_login_and_back_with_a_strict_httponly_cookie() {
    let (offices, web) = offices_with_logins().await;
    add_account(store(&offices), "wang.fang", None).await;

    let asked = get(web, "/queue?view=awaiting", None).await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    assert_eq!(
        asked.header("location"),
        Some("/login?next=%2Fqueue%3Fview%3Dawaiting")
    );
    // another site as `next` is ignored
    let elsewhere = log_in(web, "wang.fang", PASSWORD, "//evil.example/").await;
    assert_eq!(elsewhere.header("location"), Some("/queue"));

    let answer = log_in(web, "wang.fang", PASSWORD, "/queue?view=awaiting").await;
    let secret = session_of(&answer);
    assert_eq!(answer.header("location"), Some("/queue?view=awaiting"));
    let cookie = set_cookie(&answer, "hancha_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback: {cookie}");

    let page = get(web, "/queue", Some(&secret)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("wang.fang"), "the account's name on the page");
    assert!(page.body.contains(&offices.inquiry_a.to_string()));
    assert!(page.body.contains(&offices.inquiry_b.to_string()), "county-wide");

    // only the secret's SHA-256 is stored
    let pool = database(store(&offices)).await;
    let stored: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT secret_sha256, account FROM console_sessions ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        stored.iter().any(|(sha, account)| account == "wang.fang"
            && sha.as_slice() == digest_of_session(&secret).as_slice())
    );
    let hash: (String,) = sqlx::query_as("SELECT password_hash FROM console_accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(hash.0.starts_with("$argon2id$"), "{}", hash.0);

    let audited = logins(&offices).await;
    assert!(
        audited.iter().any(|access| access.principal == "wang.fang"
            && access.scope == "county:430703"
            && access.action == "console_login"
            && access.outcome == "logged_in"),
        "{audited:?}"
    );
    // and what the account does is audited under its name
    let opened = get(web, &format!("/inquiries/{}", offices.inquiry_a), Some(&secret)).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(
        offices
            .access_log()
            .await
            .iter()
            .any(|access| access.principal == "wang.fang" && access.action == "show_inquiry"),
        "the inquiry read under the account's name"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_form_without_its_token_is_refused() {
    let (offices, web) = offices_with_logins().await;
    add_account(store(&offices), "wang.fang", None).await;
    let body = format!("name=wang.fang&password={}", urlencoding::encode(PASSWORD));
    let forged = post_form(web, "/login", "hancha_login_form=abc", &body).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(set_cookie(&forged, "hancha_session").is_none());
    let mismatched = post_form(
        web,
        "/login",
        "hancha_login_form=abc",
        &format!("{body}&_csrf=abd"),
    )
    .await;
    assert_eq!(mismatched.status, 403);
    assert!(set_cookie(&mismatched, "hancha_session").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn five_wrong_passwords_lock_the_account_until_hancha_users_unlock_each_attempt_audited() {
    let (offices, web) = offices_with_logins().await;
    add_account(store(&offices), "li.na", None).await;

    let unknown = log_in(web, "no.such.clerk", PASSWORD, "").await;
    assert_eq!(unknown.status, 401, "{}", unknown.body);
    let unknown_words = refusal_shown(&unknown);
    for attempt in 1..=5 {
        let wrong = log_in(web, "li.na", "not the password", "").await;
        assert_eq!(wrong.status, 401, "attempt {attempt}: {}", wrong.body);
        assert!(set_cookie(&wrong, "hancha_session").is_none());
        assert_eq!(
            refusal_shown(&wrong),
            unknown_words,
            "nothing tells the name exists"
        );
    }
    let locked = log_in(web, "li.na", PASSWORD, "").await;
    assert_eq!(locked.status, 401, "the right password is refused while locked");
    assert!(set_cookie(&locked, "hancha_session").is_none());
    assert_eq!(refusal_shown(&locked), unknown_words);

    let audited = logins(&offices).await;
    let refused: Vec<&OperatorAccess> = audited
        .iter()
        .filter(|access| access.principal == "li.na" && access.outcome == "refused")
        .collect();
    assert_eq!(refused.len(), 6, "{audited:?}");
    assert!(refused.iter().all(|access| access.scope == "county:430703"));
    let reasons: Vec<&str> = refused.iter().map(|a| a.reason.as_deref().unwrap()).collect();
    assert!(
        reasons[..4]
            .iter()
            .all(|r| r.starts_with("UNAUTHENTICATED: wrong password (")),
        "{reasons:?}"
    );
    assert!(
        reasons[4].contains("5 in a row: the account is locked until"),
        "{reasons:?}"
    );
    assert!(reasons[5].contains("the account is locked until"), "{reasons:?}");
    // the unknown name: refused as unidentified, the name typed never recorded
    assert!(audited.iter().any(|access| access.principal == "unidentified"
        && access.action == "console_login"
        && access.outcome == "refused"));
    assert!(!offices.audit_text().await.contains("no.such.clerk"));

    let config = offices.cluster.config_file(DINGCHENG);
    let listed = users(&config, &["list"], "").await;
    assert!(
        lossy(&listed.stdout).contains("LOCKED until"),
        "{}",
        lossy(&listed.stdout)
    );
    let unlocked = users(&config, &["unlock", "li.na"], "").await;
    assert!(unlocked.status.success(), "{}", lossy(&unlocked.stderr));
    let again = log_in(web, "li.na", PASSWORD, "").await;
    let secret = session_of(&again);
    assert_eq!(get(web, "/queue", Some(&secret)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_township_account_sees_only_its_township_even_by_typing_the_url_of_another() {
    let (offices, web) = offices_with_logins().await;
    let township_a = offices.township_a.to_string();
    add_account(store(&offices), "clerk-a", Some(&township_a)).await;
    let secret = session_of(&log_in(web, "clerk-a", PASSWORD, "").await);

    let queue = get(web, "/queue", Some(&secret)).await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert!(queue.body.contains(&offices.inquiry_a.to_string()));
    assert!(
        !queue.body.contains(&offices.inquiry_b.to_string()),
        "another township's inquiry listed"
    );

    let own = get(web, &format!("/inquiries/{}", offices.inquiry_a), Some(&secret)).await;
    assert_eq!(own.status, 200, "{}", own.body);
    let theirs = get(web, &format!("/inquiries/{}", offices.inquiry_b), Some(&secret)).await;
    assert_eq!(theirs.status, 404, "refused as the API refuses: {}", theirs.body);
    assert!(!theirs.body.contains(offices.person_b.as_str()));
    // a listing of the other township, asked for in the query string
    let other = get(
        web,
        &format!("/queue?township={}", offices.township_b),
        Some(&secret),
    )
    .await;
    assert_eq!(other.status, 403, "{}", other.body);

    let scope = format!("township:{township_a}");
    let log = offices.access_log().await;
    assert!(log.iter().any(|access| access.principal == "clerk-a"
        && access.scope == scope
        && access.action == "console_login"
        && access.outcome == "logged_in"));
    assert!(
        log.iter().any(|access| access.principal == "clerk-a"
            && access.scope == scope
            && access.action == "show_inquiry"
            && access.outcome == "refused"
            && access.message_id == Some(offices.inquiry_b)),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logging_out_needs_the_form_token_and_revokes_the_session() {
    let (offices, web) = offices_with_logins().await;
    add_account(store(&offices), "zhao.lei", None).await;
    let secret = session_of(&log_in(web, "zhao.lei", PASSWORD, "").await);
    let session = format!("hancha_session={secret}");

    let page = get(web, "/queue", Some(&secret)).await;
    let token = form_token(&page.body);
    let without = post_form(web, "/logout", &session, "").await;
    assert_eq!(without.status, 403, "{}", without.body);
    let wrong = post_form(web, "/logout", &session, "_csrf=0123").await;
    assert_eq!(wrong.status, 403);
    assert_eq!(
        get(web, "/queue", Some(&secret)).await.status,
        200,
        "the session still works"
    );

    let out = post_form(web, "/logout", &session, &format!("_csrf={token}")).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.header("location"), Some("/login"));
    let forget = set_cookie(&out, "hancha_session").expect("the cookie forgotten");
    assert!(forget.contains("Max-Age=0"), "{forget}");
    let pool = database(store(&offices)).await;
    let (revoked,): (bool,) =
        sqlx::query_as("SELECT revoked_at IS NOT NULL FROM console_sessions WHERE secret_sha256 = $1")
            .bind(digest_of_session(&secret).as_slice())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(revoked);
    let after = get(web, "/queue", Some(&secret)).await;
    assert_eq!(after.status, 303, "the old cookie no longer works");
    assert!(
        logins(&offices)
            .await
            .iter()
            .any(|access| access.principal == "zhao.lei"
                && access.action == "console_logout"
                && access.outcome == "logged_out")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_accounts_session_stops_at_once_and_idle_or_old_sessions_end() {
    let (offices, web) = offices_with_logins().await;
    add_account(store(&offices), "chen.jing", None).await;
    add_account(store(&offices), "sun.li", None).await;
    let secret = session_of(&log_in(web, "chen.jing", PASSWORD, "").await);
    assert_eq!(get(web, "/queue", Some(&secret)).await.status, 200);

    let config = offices.cluster.config_file(DINGCHENG);
    let disabled = users(&config, &["disable", "chen.jing"], "").await;
    assert!(disabled.status.success(), "{}", lossy(&disabled.stderr));
    assert_eq!(get(web, "/queue", Some(&secret)).await.status, 303);
    assert_eq!(log_in(web, "chen.jing", PASSWORD, "").await.status, 401);
    assert!(
        logins(&offices)
            .await
            .iter()
            .any(|access| access.principal == "chen.jing"
                && access.reason.as_deref() == Some("UNAUTHENTICATED: the console account is disabled"))
    );

    // 30 minutes without use, or 12 hours since the login, end a session
    let pool = database(store(&offices)).await;
    for ending in [
        "last_seen_at = now() - interval '31 minutes'",
        "expires_at = now() - interval '1 second'",
    ] {
        let secret = session_of(&log_in(web, "sun.li", PASSWORD, "").await);
        assert_eq!(get(web, "/queue", Some(&secret)).await.status, 200);
        sqlx::query(&format!(
            "UPDATE console_sessions SET {ending} WHERE secret_sha256 = $1"
        ))
        .bind(digest_of_session(&secret).as_slice())
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(get(web, "/queue", Some(&secret)).await.status, 303, "{ending}");
    }
    let (lifetime,): (f64,) = sqlx::query_as(
        "SELECT extract(epoch FROM max(expires_at - created_at))::float8 FROM console_sessions",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((lifetime - 12.0 * 3600.0).abs() < 5.0, "{lifetime}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hancha_users_makes_lists_disables_and_sets_passwords_and_refuses_what_would_not_log_in() {
    let offices = TownshipOffices::start().await;
    let config = offices.cluster.config_file(DINGCHENG);
    let township_a = offices.township_a.to_string();

    let made = users(
        &config,
        &["add", "zhou.min", "--role", "county"],
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert!(made.status.success(), "{}", lossy(&made.stderr));
    assert!(lossy(&made.stdout).contains("account zhou.min made (county 430703)"));
    let township = users(
        &config,
        &["add", "clerk-a", "--role", "township", "--township", &township_a],
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert!(township.status.success(), "{}", lossy(&township.stderr));

    // refusals: a name taken, a short password, an ID number as name, another county's
    // township, a township role without its code
    for (arguments, input, says) in [
        (vec!["add", "zhou.min", "--role", "county"], PASSWORD, "exists"),
        (
            vec!["add", "wu.gang", "--role", "county"],
            "short",
            "at least 10 characters",
        ),
        (
            vec!["add", "11010519491231002X", "--role", "county"],
            PASSWORD,
            "ID number",
        ),
        (
            vec!["add", "wu.gang", "--role", "township", "--township", "431322101"],
            PASSWORD,
            "another county",
        ),
        (
            vec!["add", "wu.gang", "--role", "township"],
            PASSWORD,
            "--township CODE",
        ),
    ] {
        let refused = users(&config, &arguments, &format!("{input}\n")).await;
        assert!(!refused.status.success(), "{arguments:?}");
        assert!(
            lossy(&refused.stderr).contains(says),
            "{arguments:?}: {}",
            lossy(&refused.stderr)
        );
    }

    let listed = users(&config, &["list", "--json"], "").await;
    let text = lossy(&listed.stdout);
    let accounts: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(accounts.len(), 2, "{text}");
    assert_eq!(accounts[0]["name"], "clerk-a");
    assert_eq!(accounts[0]["scope"], format!("township:{township_a}"));
    assert_eq!(accounts[1]["scope"], "county:430703");
    assert!(!text.contains("argon2"), "no hash listed: {text}");

    let new_password = "another-password-42";
    let changed = users(&config, &["password", "zhou.min"], &format!("{new_password}\n")).await;
    assert!(changed.status.success(), "{}", lossy(&changed.stderr));
    let stored = store(&offices)
        .console_login_of("zhou.min")
        .await
        .unwrap()
        .unwrap();
    let hash = stored.password_hash.clone();
    let (old_ok, new_ok) = tokio::task::spawn_blocking(move || {
        (
            verify_password(&hash, PASSWORD),
            verify_password(&hash, new_password),
        )
    })
    .await
    .unwrap();
    assert!(!old_ok && new_ok);

    let disabled = users(&config, &["disable", "zhou.min"], "").await;
    assert!(disabled.status.success());
    let again = users(&config, &["disable", "zhou.min"], "").await;
    assert!(lossy(&again.stdout).contains("disabled already"));
    let nobody = users(&config, &["unlock", "nobody"], "").await;
    assert_eq!(nobody.status.code(), Some(1));
    assert!(lossy(&users(&config, &["list"], "").await.stdout).contains("DISABLED"));

    let help = users(&config, &["--help"], "").await;
    let help = lossy(&help.stdout);
    for command in ["add", "list", "disable", "unlock", "password"] {
        assert!(help.contains(command), "{help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_https_the_console_cookies_are_secure() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;

    let mut offices = TownshipOffices::start().await;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (
        offices.cluster.path().join("web.pem"),
        offices.cluster.path().join("web-key.pem"),
    );
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    offices
        .cluster
        .restart_with_web(
            DINGCHENG,
            WebListener {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                require_login: Some(true),
                tls: Some(hancha::config::WebTls { cert, key }),
            },
        )
        .await;
    let web = offices.cluster.web_address(DINGCHENG);

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(certified.cert.pem().as_bytes()).unwrap())
        .unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(web).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the TLS handshake with the web listener");
    let form = request_on(tls, "GET", "/login", None, None).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let cookie = set_cookie(&form, "hancha_login_form").expect("the login form's cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_count_wrong_passwords_together_and_share_sessions() {
    let (offices, web) = offices_with_logins().await;
    add_account(store(&offices), "he.ping", None).await;
    let replica = offices.cluster.start_replica(DINGCHENG).await;
    let other = replica.web_addr.expect("the replica's web listener");

    // wrong passwords at once on both replicas: every one counted, the fifth locks
    let attempts = (0..6).map(|attempt| {
        let to = if attempt % 2 == 0 { web } else { other };
        tokio::spawn(async move { log_in(to, "he.ping", "not the password", "").await.status })
    });
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap(), 401);
    }
    for node in [web, other] {
        let locked = log_in(node, "he.ping", PASSWORD, "").await;
        assert_eq!(locked.status, 401, "locked on every replica");
    }
    let (failed, locked): (i32, bool) = sqlx::query_as(
        "SELECT failed_attempts, locked_until > now() FROM console_accounts WHERE name = 'he.ping'",
    )
    .fetch_one(&database(store(&offices)).await)
    .await
    .unwrap();
    // five locked it (counting afresh), the sixth came during the lock and was not counted
    assert_eq!((failed, locked), (0, true));

    store(&offices).unlock_console_account("he.ping").await.unwrap();
    let secret = session_of(&log_in(web, "he.ping", PASSWORD, "").await);
    let page = get(other, "/queue", Some(&secret)).await;
    assert_eq!(
        page.status, 200,
        "a session opened on one replica works on the other"
    );
    assert!(page.body.contains("he.ping"));
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_loopback_without_require_login_a_login_is_optional_and_acts_under_the_account() {
    let mut offices = TownshipOffices::start().await;
    offices
        .cluster
        .restart_with_web(
            DINGCHENG,
            WebListener {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                require_login: None,
                tls: None,
            },
        )
        .await;
    let web = offices.cluster.web_address(DINGCHENG);
    let township_a = offices.township_a.to_string();
    add_account(store(&offices), "clerk-a", Some(&township_a)).await;

    let open = get(web, "/queue", None).await;
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(open.body.contains("loopback") && open.body.contains(&offices.inquiry_b.to_string()));
    let login = get(web, "/login", None).await;
    assert!(login.body.contains(r#"id="login-optional""#));

    let secret = session_of(&log_in(web, "clerk-a", PASSWORD, "").await);
    let mine = get(web, "/queue", Some(&secret)).await;
    assert!(mine.body.contains("clerk-a"));
    assert!(
        !mine.body.contains(&offices.inquiry_b.to_string()),
        "held to its township"
    );
}
